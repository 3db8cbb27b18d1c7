//! Archives on disk: opening one for writing ([`open`], [`OpenArchive`]), its lock
//! ([`lock`]), its ledger ([`ledger`], and the read-only [`ledger_view`]), the zip manifest
//! ([`manifest`]), the traits every format implements ([`writer::Sink`] to store,
//! [`reader::ArchiveSource`] to read back), the staging of a message before it is placed
//! ([`staging`]), and one folder per format holding its reader and writer together:
//! [`maildir`], [`mbox`], [`zip`], [`eml`], [`thunderbird`].
//!
//! To change how one format is written or read, open its folder.
//!
//! May use: [`crate::core`]; never the engines or the command line (`tests/layers.rs` checks
//! it). The layer below, [`crate::protocol`], is allowed but only a test uses it (mailbox
//! names decoded as an IMAP server sends them).

pub mod eml;
pub mod ledger;
pub mod ledger_view;
pub mod lock;
pub mod maildir;
pub mod manifest;
pub mod mbox;
pub mod reader;
pub mod staging;
mod store;
pub mod thunderbird;
pub mod writer;
pub mod zip;

pub use store::{
    batch_tails, check_mbox_known, check_owner, is_new, note_source_port, open, same_source_port,
    OpenArchive, OLDER_LEDGER_KEY, STATE_DIR,
};
