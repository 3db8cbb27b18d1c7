//! mailkeep against a real Cyrus IMAP 3.6 (Debian 12's cyrus-imapd and cyrus-pop3d, run from
//! the private root of scripts/lib/install-deps.sh by scripts/lib/cyrus.sh): the checks of
//! tests/support/server_suite.rs, one `#[test]` each.

mod support;

use support::real_server::Kind;
use support::server_suite as suite;

const KIND: Kind = Kind::Cyrus;
/// Kill points (ledger events) of: IMAP backup, IMAP-to-IMAP migration, POP3 backup with delete.
const PINS: (u64, u64, u64) = (4, 2, 2);

#[test]
fn imap_backup_into_maildir_is_byte_exact_and_a_rerun_moves_nothing() {
    suite::imap_backup(KIND, "maildir");
}

#[test]
fn imap_backup_into_mbox_is_byte_exact_and_a_rerun_moves_nothing() {
    suite::imap_backup(KIND, "mbox");
}

#[test]
fn restore_into_an_empty_account_keeps_bytes_flags_and_dates() {
    suite::restore_round_trip(KIND);
}

#[test]
fn migrate_imap_to_imap_keeps_bytes_flags_and_dates() {
    suite::migrate_imap_to_imap(KIND);
}

#[test]
fn migrate_pop3_to_imap_keeps_bytes_and_arrival_dates() {
    suite::migrate_pop3_to_imap(KIND);
}

#[test]
fn pop3_backup_is_byte_exact_by_uidl() {
    suite::pop3_backup(KIND);
}

#[test]
fn imap_backup_killed_at_every_event_converges() {
    assert_eq!(
        suite::kill_imap_backup(KIND),
        PINS.0,
        "ledger events of this path changed: update the pin if intended"
    );
}

#[test]
fn migrate_imap_to_imap_killed_at_every_event_converges() {
    assert_eq!(
        suite::kill_migrate_imap(KIND),
        PINS.1,
        "ledger events of this path changed: update the pin if intended"
    );
}

#[test]
fn pop3_backup_with_delete_killed_at_every_event_converges() {
    assert_eq!(
        suite::kill_pop3_backup_delete(KIND),
        PINS.2,
        "ledger events of this path changed: update the pin if intended"
    );
}
