//! The ledger of a Maildir or mbox archive, read without writing a byte beside it: its
//! `messages` rows ([`LedgerRow`], also what a zip's manifest is turned into), the mbox lengths
//! ([`MboxFileRow`]), and how far its records can be trusted ([`ledger_trust`]).
//!
//! Uses [`crate::archive::ledger_view`] to open the file; shared by every other part of
//! `verify`.

use std::path::Path;

use crate::core::error::{Error, Result};

/// One `messages` row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub account: String,
    pub mailbox: String,
    pub identity: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Size the server reported (octets), when known.
    pub wire_size: Option<u64>,
    pub sha256: String,
    /// Maildir `<folder>/cur/<base>`, mbox `<file>:<offset>:<length>`.
    pub location: String,
}

/// One `mbox_files` row: the committed length and, during an append, the pending one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxFileRow {
    pub file: String,
    pub committed: u64,
    pub pending: Option<u64>,
}

/// What the ledger at `path` records. Nothing is written next to it: without a `-wal` file
/// the database is opened `immutable` (no `-shm`, no lock); with one (a run died, or one is
/// running), the two files are copied to a private temporary folder and read there, so the
/// journal's committed transactions are seen.
///
/// Errors: [`Error::Archive`] when the file cannot be read as a ledger.
pub(super) fn read_ledger(path: &Path) -> Result<(Vec<LedgerRow>, Vec<MboxFileRow>)> {
    let err = |e: rusqlite::Error| Error::archive(path, format!("ledger: {e}"));
    let ledger = crate::archive::ledger_view::UntouchedLedger::open(path)?;
    let conn = &ledger.conn;
    let mut st = conn
        .prepare(
            "SELECT account, mailbox, identity, size, wire_size, sha256, location
             FROM messages ORDER BY id",
        )
        .map_err(err)?;
    let rows = st
        .query_map([], |r| {
            Ok(LedgerRow {
                account: r.get(0)?,
                mailbox: r.get(1)?,
                identity: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                wire_size: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                sha256: r.get(5)?,
                location: r.get(6)?,
            })
        })
        .map_err(err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(err)?;
    let files = match conn.prepare("SELECT file, committed_len, pending_len FROM mbox_files") {
        Ok(mut st) => st
            .query_map([], |r| {
                Ok(MboxFileRow {
                    file: r.get(0)?,
                    committed: r.get::<_, i64>(1)? as u64,
                    pending: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                })
            })
            .map_err(err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(err)?,
        Err(e) if e.to_string().contains("no such table") => Vec::new(),
        Err(e) => return Err(err(e)),
    };
    Ok((rows, files))
}

/// The ledger's schema version (1 when it does not say) and how many of its records are
/// unverified ([`crate::archive::ledger::Record::verified`]; none in a version 1 ledger).
///
/// Errors: [`Error::Archive`] when the file cannot be read as a ledger.
pub(super) fn ledger_trust(path: &Path) -> Result<(i64, u64)> {
    let err = |e: rusqlite::Error| Error::archive(path, format!("ledger: {e}"));
    let ledger = crate::archive::ledger_view::UntouchedLedger::open(path)?;
    let conn = &ledger.conn;
    let schema: Option<String> = match conn.query_row(
        "SELECT value FROM meta WHERE key='schema_version'",
        [],
        |r| r.get(0),
    ) {
        Ok(v) => Some(v),
        Err(rusqlite::Error::QueryReturnedNoRows) => None,
        Err(e) if e.to_string().contains("no such table") => None,
        Err(e) => return Err(err(e)),
    };
    let schema = match schema {
        None => 1,
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            Error::archive(
                path,
                format!(
                    "ledger schema version {:?} is not one mailkeep ever wrote: the ledger is damaged",
                    crate::core::endpoint::escape_controls(&v)
                ),
            )
        })?,
    };
    let has_column: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name='verified'",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    let unverified: i64 = if has_column > 0 {
        conn.query_row("SELECT COUNT(*) FROM messages WHERE verified=0", [], |r| {
            r.get(0)
        })
        .map_err(err)?
    } else {
        0
    };
    Ok((schema, unverified as u64))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every file in `dir` with its bytes.
    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn ledgers_are_read_without_writing_beside_them() {
        use crate::archive::ledger::{Ledger, Record};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let rec = |id: &str| Record {
            account: "pop3:a@h".into(),
            mailbox: "INBOX".into(),
            uidl: Some(id.into()),
            uidvalidity: None,
            uid: None,
            identity: format!("pop3:a@h UIDL {id}"),
            size: 10,
            wire_size: Some(12),
            sha256: "00".into(),
            internal_date: 1_700_000_000,
            flags: String::new(),
            location: format!("cur/{id}"),
            stored_at: 1_700_000_100,
            verified: true,
        };
        let mut ledger = Ledger::open(&path).unwrap();
        ledger
            .record_batch(
                &[rec("1"), rec("2")],
                &[crate::archive::writer::TailMark {
                    file: "INBOX.mbox".into(),
                    len: 40,
                }],
            )
            .unwrap();
        // Open (a run that is running or died): the commits are in the -wal file.
        assert!(dir.path().join("ledger.sqlite-wal").exists());
        let before = files(dir.path());
        let (rows, lengths) = read_ledger(&path).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.identity.as_str()).collect::<Vec<_>>(),
            ["pop3:a@h UIDL 1", "pop3:a@h UIDL 2"]
        );
        assert_eq!(rows[0].wire_size, Some(12));
        assert_eq!(
            lengths,
            vec![MboxFileRow {
                file: "INBOX.mbox".into(),
                committed: 40,
                pending: None
            }]
        );
        assert_eq!(files(dir.path()), before);
        // Closed cleanly: read `immutable`, nothing created.
        drop(ledger);
        assert!(!dir.path().join("ledger.sqlite-wal").exists());
        let before = files(dir.path());
        assert_eq!(read_ledger(&path).unwrap().0.len(), 2);
        assert_eq!(files(dir.path()), before);
        // Not a ledger.
        std::fs::write(&path, b"not sqlite").unwrap();
        assert!(matches!(read_ledger(&path), Err(Error::Archive { .. })));
    }
}
