//! The wire: TLS connections ([`net`]), the IMAP client ([`imap`]) and the POP3 client
//! ([`pop3`]). A client speaks its protocol and hands back what the server said; it never
//! touches an archive, the ledger or a report.
//!
//! May use: [`crate::core`] only (`tests/layers.rs` checks it).

pub mod imap;
pub mod net;
pub mod pop3;
