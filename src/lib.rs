//! mailkeep: back up POP3 and IMAP mail into open archives (Maildir, mbox), without ever losing
//! or duplicating a message. See README.md for the user's view and DESIGN.md in the shared
//! material for the architecture; `main.rs` is only glue around [`run`].

pub mod endpoint;
pub mod error;
pub mod mbox;
pub mod message;
pub mod net;
pub mod pop3;
pub mod sink;
