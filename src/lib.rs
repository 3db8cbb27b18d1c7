//! mailkeep: back up POP3 and IMAP mail into open archives (Maildir, mbox), without ever losing
//! or duplicating a message. See README.md for the user's view and DESIGN.md in the shared
//! material for the architecture; `main.rs` is only glue around [`run`].
//!
//! The code is in layers, one folder each, every layer using only those below it
//! (`tests/layers.rs` checks it): [`core`] (the vocabulary: errors, dates, messages, endpoints),
//! [`protocol`] (IMAP, POP3, TLS), [`archive`] (the formats on disk, one folder each, with the
//! ledger), [`engine`] (backup, restore, migrate, convert, prune, inspect), [`cli`] (the
//! command line, its plans, the run file and its scheduler, the rendering of reports).

pub mod archive;
pub mod cli;
pub mod core;
pub mod engine;
#[doc(hidden)]
pub mod fuzz_api;
pub mod protocol;

pub use cli::dispatch::run;
