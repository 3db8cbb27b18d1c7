//! mailkeep against a real Cyrus IMAP 3.6 (Debian 12's cyrus-imapd and cyrus-pop3d, run from
//! the private root of scripts/lib/install-deps.sh by scripts/lib/cyrus.sh): the checks of
//! tests/support/server_suite.rs, one `#[test]` each.

mod support;

// The suite's checks, one `#[test]` each; pins: the kill points (ledger events) of IMAP backup,
// IMAP-to-IMAP migration and POP3 backup with delete.
real_server_tests!(Cyrus, pins: (4, 2, 2));
