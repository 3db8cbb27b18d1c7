//! The ledger: SQLite state kept with the archive (`mailkeep/ledger.sqlite`), recording what
//! was copied from where to where. The only writer of state (DESIGN.md); sinks and sources
//! never touch it.
//!
//! Order is important. A message is recorded only after its sink has made it durable, and a
//! server-side deletion is recorded only after the server confirmed it. mbox appends are
//! bracketed: the file's length is recorded as *pending* before appending, and the new
//! committed length replaces it in the same transaction that records the messages; a pending
//! length found at start-up is a crashed run's tail, which the sink cuts back.
//!
//! Between a batch's appends and its commit, each message appended to an mbox is noted as
//! *placed* (a commit without fsync: it survives the death of the process, not a power cut).
//! At start-up, placed messages whose bytes verify in the mbox tail are recorded instead of
//! being fetched again; the tail after the last one that verifies is cut back.
//!
//! Trust levels (DESIGN.md invariant 2, docs/archive-formats.md, "What a record proves"): a record proves only
//! what was checked. [`Record::verified`] is true when the stored bytes were hashed as the
//! source sent them, false when a file already in the archive was adopted without comparing
//! (a lost or older ledger, a killed run's Maildir file found by its name, a `convert`).
//! Nothing is deleted on a server on the strength of an unverified record: the destructive
//! steps (prune, `--delete-after-backup`, `--keep-days`) fetch the server's message and compare
//! first, and promote the record ([`Ledger::set_verified`]) when the bytes match. Upload
//! records prove only that the target held the copy when it was recorded: restore and
//! `--delete-after-migrate` look each recorded UID up on the target before relying on it.
//! Schema version 2 added the column; version 1 records count as verified, and a ledger of a
//! newer version is refused.
//!
//! Test switch (issue 7, "kill at every step"): when the environment variable
//! `MAILKEEP_TEST_KILL_AFTER_EVENTS=N` is set, the process exits abruptly (exit status 137, no
//! cleanup) right before the ledger's (N+1)-th commit, i.e. after N committed events. Events
//! are counted per process, over every ledger it opens (a `migrate --via` run writes the
//! archive's ledger, then the uploads ledger), so each N is a distinct kill point. With
//! `MAILKEEP_TEST_EVENT_COUNT_FILE=PATH` each commit also appends one line to PATH, so a test
//! can count the events of a clean run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::archive::writer::TailMark;
use crate::core::error::{Error, Result};

/// What the ledger knows of a mailbox from the last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownMailbox {
    pub uidvalidity: u32,
    pub uidnext: Option<u32>,
    pub highestmodseq: Option<u64>,
    pub messages: Option<u32>,
}

/// What the server says of a mailbox now (STATUS, RFC 3501 6.3.10; HIGHESTMODSEQ, RFC 7162).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxNow {
    pub uidvalidity: u32,
    pub uidnext: Option<u32>,
    pub highestmodseq: Option<u64>,
    pub messages: u32,
}

/// Ledger schema version, stored in `meta.schema_version`.
pub const SCHEMA_VERSION: i64 = 2;

/// Before an upload row is written: the earlier rows of the same source message in the same
/// target mailbox go (a copy found or appended again because the recorded one is no longer
/// there, e.g. a server that gave the mailbox's messages new UIDs under the same UIDVALIDITY
/// after a killed session): one row per source message and target mailbox. `?4` NULL (no
/// source identity) matches nothing. Uses the `uploads_key` index.
const SUPERSEDE_UPLOAD: &str =
    "DELETE FROM uploads WHERE account=?1 AND mailbox=?2 AND sha256=?3 AND source=?4";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uidvalidity INTEGER,
    uid INTEGER,
    uidl TEXT,
    identity TEXT NOT NULL,
    size INTEGER NOT NULL,
    wire_size INTEGER,
    sha256 TEXT NOT NULL,
    internal_date INTEGER NOT NULL,
    flags TEXT NOT NULL,
    location TEXT NOT NULL,
    stored_at INTEGER NOT NULL,
    deleted_at INTEGER,
    verified INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_identity ON messages(identity);
CREATE INDEX IF NOT EXISTS messages_account ON messages(account, mailbox);
CREATE INDEX IF NOT EXISTS messages_sha256 ON messages(sha256);
CREATE TABLE IF NOT EXISTS mbox_files(
    file TEXT PRIMARY KEY,
    committed_len INTEGER NOT NULL,
    pending_len INTEGER
);
CREATE TABLE IF NOT EXISTS mailboxes(
    account TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER,
    highestmodseq INTEGER,
    messages INTEGER,
    PRIMARY KEY(account, mailbox)
);
CREATE TABLE IF NOT EXISTS placed(
    identity TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes(
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    account TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads(
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    uidvalidity INTEGER,
    uid INTEGER,
    origin TEXT NOT NULL,
    how TEXT NOT NULL,
    at INTEGER NOT NULL,
    source TEXT
);
CREATE INDEX IF NOT EXISTS uploads_key ON uploads(account, mailbox, sha256);
";

/// One stored message, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The account's ledger key (`pop3:alice@host`).
    pub account: String,
    /// The mailbox in the archive (`INBOX`).
    pub mailbox: String,
    /// POP3 UIDL (RFC 1939 7), or `None` for IMAP.
    pub uidl: Option<String>,
    /// IMAP UIDVALIDITY and UID (RFC 3501 2.3.1.1), or `None` for POP3.
    pub uidvalidity: Option<u32>,
    pub uid: Option<u32>,
    /// The stable source identity (unique in the ledger), e.g. `pop3:alice@host UIDL 0001`.
    pub identity: String,
    /// Stored size in bytes (LF line ends).
    pub size: u64,
    /// Size the server reported, in octets (CRLF line ends), when known.
    pub wire_size: Option<u64>,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// INTERNALDATE, seconds since the UNIX epoch.
    pub internal_date: i64,
    /// Flags and keywords, IMAP spelling, space-separated.
    pub flags: String,
    /// Where the sink put it (see [`crate::archive::writer::Stored::location`]).
    pub location: String,
    /// When it was recorded, seconds since the UNIX epoch.
    pub stored_at: i64,
    /// The trust level (DESIGN.md invariant 2, docs/archive-formats.md, "What a record proves"): `true` when the
    /// stored bytes were hashed as they came from the source (the SHA-256 is the source's
    /// message), `false` when a file already in the archive was adopted without comparing it
    /// with the source (a lost or older ledger, an interrupted run's file found by its name).
    /// Nothing is ever deleted on a server on the strength of an unverified record: prune and
    /// `--delete-after-backup` first fetch the server's copy and compare (and promote the
    /// record when it matches). Schema version 2; records of version 1 count as verified.
    #[serde(default = "verified_default")]
    pub verified: bool,
}

fn verified_default() -> bool {
    true
}

/// One message restored to an IMAP server (`restore`, DESIGN.md invariant 4), or found there
/// already. Kept in the restore state file, not in the archive (a restore never writes to the
/// archive it reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The target account's ledger key (`imap:alice@host`).
    pub account: String,
    /// The target mailbox's wire name (modified UTF-7, server delimiter).
    pub mailbox: String,
    /// Lower-case hex SHA-256 of the message's stored form (LF line ends).
    pub sha256: String,
    /// The mailbox's UIDVALIDITY and the message's UID: from APPENDUID (RFC 4315) when the
    /// server sent one that names the mailbox's UIDVALIDITY, or from the listing for a message
    /// found on the target; `None` when unknown.
    pub uidvalidity: Option<u32>,
    pub uid: Option<u32>,
    /// Where the message came from in the archive (a path, or `path:offset`).
    pub origin: String,
    /// `appended`, or `found` (already on the target, matched by Message-ID and size or by
    /// content).
    pub how: String,
    /// When, seconds since the UNIX epoch.
    pub at: i64,
    /// The message's identity at its origin ([`crate::archive::reader::ArchivedMessage::source_id`]),
    /// when known.
    pub source: Option<String>,
}

/// One recorded upload as [`Ledger::upload_rows`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    /// Lower-case hex SHA-256 of the message's stored form.
    pub sha256: String,
    /// The target mailbox's UIDVALIDITY and the message's UID, when known.
    pub uidvalidity: Option<u32>,
    pub uid: Option<u32>,
    /// The message's identity at its origin, when known.
    pub source: Option<String>,
}

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    commits: u64,
    kill_after: Option<u64>,
    /// Test switch `MAILKEEP_TEST_EVENT_COUNT_FILE` (module docs).
    count_file: Option<PathBuf>,
    /// [`Ledger::track_generation`]: the archive's copy of the commit count.
    generation_file: Option<PathBuf>,
}

/// Ledger events committed by this process, over all its ledgers (only counted while a test
/// switch is set; module docs).
static PROCESS_EVENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Held around a commit while a test switch is set (see [`Ledger::commit`]).
static EVENT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    // SQLite says only "disk I/O error" or "database or disk is full" when a write fails; the
    // usual causes are a full disk or a file-size limit, so say so and what to do. Nothing
    // is lost: the failed transaction is rolled back, and what was stored but not recorded is
    // found again by the next run.
    let full = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure
            )
    );
    if full {
        return Error::archive(
            path,
            format!(
                "ledger: {e} (is the disk full, or a file-size limit reached?): free some space, then run it again"
            ),
        );
    }
    Error::archive(path, format!("ledger: {e}"))
}

/// Adds one to `meta.generation` in `tx`; returns the new value.
fn bump_generation(tx: &rusqlite::Transaction) -> rusqlite::Result<u64> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES('generation', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [],
    )?;
    tx.query_row(
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key='generation'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|v| v as u64)
}

/// Writes `g` to `file` (a temporary file renamed over it; never through a link).
fn write_generation(file: &Path, g: u64) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = file.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(format!("{g}\n").as_bytes()));
    if written.is_ok() {
        let _ = std::fs::rename(&tmp, file);
    } else {
        let _ = std::fs::remove_file(&tmp);
    }
}

impl Ledger {
    /// Opens (creating when missing) the ledger at `path`, mode 0600, WAL journal with
    /// `synchronous=FULL` so that a returned commit is durable.
    ///
    /// Errors: [`Error::Archive`] when the file cannot be opened or is not a mailkeep ledger,
    /// or when its schema is newer than this mailkeep.
    pub fn open(path: &Path) -> Result<Ledger> {
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::archive_io(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| db_err(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_err(path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db_err(path, e))?;
        conn.execute_batch(SCHEMA).map_err(|e| db_err(path, e))?;
        // The uploads table of mailkeep before `source` existed.
        let has_source: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('uploads') WHERE name='source'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| db_err(path, e))?
            > 0;
        if !has_source {
            conn.execute_batch("ALTER TABLE uploads ADD COLUMN source TEXT")
                .map_err(|e| db_err(path, e))?;
        }
        // Schema version 1 had no trust level: its records were all made from fetched bytes
        // by the versions that wrote it, and count as verified.
        let has_verified: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name='verified'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| db_err(path, e))?
            > 0;
        if !has_verified {
            conn.execute_batch(
                "ALTER TABLE messages ADD COLUMN verified INTEGER NOT NULL DEFAULT 1",
            )
            .map_err(|e| db_err(path, e))?;
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS uploads_source ON uploads(account, source)")
            .map_err(|e| db_err(path, e))?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(path, e))?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| db_err(path, e))?;
            }
            Some(Ok(v)) if v == SCHEMA_VERSION => {}
            Some(Ok(v)) if (1..SCHEMA_VERSION).contains(&v) => {
                // Upgraded above (columns added); say so, so an older mailkeep refuses it
                // instead of ignoring what it does not know (the trust level).
                conn.execute(
                    "UPDATE meta SET value=?1 WHERE key='schema_version'",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| db_err(path, e))?;
            }
            Some(Ok(v)) if v > SCHEMA_VERSION => {
                return Err(Error::archive(
                    path,
                    format!("ledger schema version {v} is newer than this mailkeep understands ({SCHEMA_VERSION}): upgrade mailkeep"),
                ))
            }
            Some(_) => {
                return Err(Error::archive(
                    path,
                    format!(
                        "ledger schema version {:?} is not one mailkeep ever wrote: the ledger is damaged",
                        crate::core::endpoint::escape_controls(version.as_deref().unwrap_or_default())
                    ),
                ))
            }
        }
        let kill_after = std::env::var("MAILKEEP_TEST_KILL_AFTER_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok());
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
            commits: 0,
            kill_after,
            count_file: std::env::var_os("MAILKEEP_TEST_EVENT_COUNT_FILE").map(PathBuf::from),
            generation_file: None,
        })
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        db_err(&self.path, e)
    }

    /// Runs `f` in one transaction and commits it: one ledger event.
    fn commit<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T> {
        // Test switches: while one is set, commits of the process are taken one at a time,
        // so that "after N events" is exact when several threads commit (`--jobs`: one ledger
        // connection per worker); without the lock two workers could both pass the check at
        // N-1 and the count skip N.
        let _serial = (self.kill_after.is_some() || self.count_file.is_some())
            .then(|| EVENT_LOCK.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(n) = self.kill_after {
            // The process-wide event count (several ledgers may be open, one after the other:
            // `migrate --via`). Die like a kill -9 would, without unwinding or flushing anything.
            if PROCESS_EVENTS.load(std::sync::atomic::Ordering::SeqCst) == n {
                unsafe { libc::_exit(137) };
            }
        }
        let tx = self.conn.transaction().map_err(|e| db_err(&self.path, e))?;
        let out = f(&tx).map_err(|e| db_err(&self.path, e))?;
        let generation = match self.generation_file {
            Some(_) => Some(bump_generation(&tx).map_err(|e| db_err(&self.path, e))?),
            None => None,
        };
        tx.commit().map_err(|e| db_err(&self.path, e))?;
        self.commits += 1;
        if let (Some(file), Some(g)) = (&self.generation_file, generation) {
            // After the commit, never before: the file never runs ahead of the ledger, so a
            // file ahead of the ledger means the ledger was put back from an older copy. No
            // fsync: a file behind after a power cut only means nothing is detected.
            write_generation(file, g);
        }
        if self.kill_after.is_some() || self.count_file.is_some() {
            PROCESS_EVENTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if let Some(file) = &self.count_file {
            use std::io::Write;
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut f| f.write_all(b"event\n"));
        }
        Ok(out)
    }

    /// Keeps the archive's copy of the ledger's commit count in `file` (`mailkeep/generation`),
    /// written after every commit. A ledger whose count is below the file's was put back from
    /// an older copy ([`Ledger::generations`]): what it does not record may have happened
    /// (messages archived, deletions on the server).
    pub fn track_generation(&mut self, file: PathBuf) {
        self.generation_file = Some(file);
    }

    /// (the ledger's commit count, the archive's copy of it in the generation file), each 0
    /// when missing.
    ///
    /// Errors: those of the ledger.
    pub fn generations(&self) -> Result<(u64, u64)> {
        let ledger = self
            .meta("generation")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let file = self
            .generation_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        Ok((ledger, file))
    }

    /// Number of commits this process made (ledger events).
    pub fn events(&self) -> u64 {
        self.commits
    }

    /// The archive kind recorded at creation, if any.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key=?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a `meta` value that states a fact about the archive, not about a message (the port
    /// an account was backed up from, when the ledger was found older than the archive):
    /// durable when it returns, but not a ledger event (the test switches do not count it).
    pub fn note_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Sets a `meta` value (one event).
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.commit(|tx| {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                params![key, value],
            )
            .map(|_| ())
        })
    }

    /// The identities recorded for `account`, each with the size the server reported for it
    /// (octets), in one query, for planning.
    pub fn identities(&self, account: &str) -> Result<HashMap<String, Option<u64>>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT identity, wire_size FROM messages WHERE account=?1")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![account], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// The accounts (ledger keys) this archive holds messages of, sorted.
    pub fn accounts(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT DISTINCT account FROM messages ORDER BY account")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// For each identity of `account`: (stored_at, deleted_at) in seconds since the epoch.
    pub fn stored_times(&self, account: &str) -> Result<HashMap<String, (i64, Option<i64>)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT identity, stored_at, deleted_at FROM messages WHERE account=?1")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![account], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// What the last run saw of an IMAP mailbox (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ,
    /// MESSAGES), if it was backed up before.
    pub fn mailbox_state(&self, account: &str, mailbox: &str) -> Result<Option<KnownMailbox>> {
        self.conn
            .query_row(
                "SELECT uidvalidity, uidnext, highestmodseq, messages FROM mailboxes WHERE account=?1 AND mailbox=?2",
                params![account, mailbox],
                |r| {
                    Ok(KnownMailbox {
                        uidvalidity: r.get(0)?,
                        uidnext: r.get(1)?,
                        highestmodseq: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                        messages: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records what this run saw of a mailbox, after everything in it was recorded (one event).
    pub fn set_mailbox_state(
        &mut self,
        account: &str,
        mailbox: &str,
        now: &MailboxNow,
    ) -> Result<()> {
        self.commit(|tx| {
            tx.execute(
                "INSERT INTO mailboxes(account, mailbox, uidvalidity, uidnext, highestmodseq, messages)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(account, mailbox) DO UPDATE SET uidvalidity=excluded.uidvalidity,
                    uidnext=excluded.uidnext, highestmodseq=excluded.highestmodseq, messages=excluded.messages",
                params![account, mailbox, now.uidvalidity, now.uidnext, now.highestmodseq.map(|v| v as i64), now.messages],
            )
            .map(|_| ())
        })
    }

    /// Every record of one account, in recording order.
    pub fn account_records(&self, account: &str) -> Result<Vec<Record>> {
        self.select_records("WHERE account=?1 ORDER BY id", params![account])
    }

    /// The records of one account's mailbox (IMAP), for planning.
    pub fn mailbox_records(&self, account: &str, mailbox: &str) -> Result<Vec<Record>> {
        self.select_records("WHERE account=?1 AND mailbox=?2", params![account, mailbox])
    }

    /// The locations recorded for one account's mailbox under `uidvalidity` (IMAP), for a
    /// cheap look at whether the archived files are all still there.
    pub fn mailbox_locations(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT location FROM messages WHERE account=?1 AND mailbox=?2 AND uidvalidity=?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![account, mailbox, uidvalidity], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// The first record holding content `sha256` in this archive, if any (for `--dedup` and
    /// for matching after a UIDVALIDITY change).
    pub fn record_by_sha256(&self, sha256: &str) -> Result<Option<Record>> {
        Ok(self
            .select_records("WHERE sha256=?1 ORDER BY id LIMIT 1", params![sha256])?
            .into_iter()
            .next())
    }

    /// Applies flag changes and re-keyings (after a UIDVALIDITY change) in one transaction
    /// (one event). `set_flags`: (identity, flags, new location); `rekey`: (old identity, new
    /// identity, UIDVALIDITY, UID, flags, new location).
    pub fn update_records(
        &mut self,
        set_flags: &[(String, String, String)],
        rekey: &[(String, String, u32, u32, String, String)],
    ) -> Result<()> {
        if set_flags.is_empty() && rekey.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut up = tx.prepare_cached("UPDATE messages SET flags=?2, location=?3 WHERE identity=?1")?;
            for (id, flags, loc) in set_flags {
                up.execute(params![id, flags, loc])?;
            }
            let mut rk = tx.prepare_cached(
                "UPDATE messages SET identity=?2, uidvalidity=?3, uid=?4, flags=?5, location=?6 WHERE identity=?1",
            )?;
            for (old, new, v, u, flags, loc) in rekey {
                rk.execute(params![old, new, v, u, flags, loc])?;
            }
            Ok(())
        })
    }

    /// True when more than one record points at `location` (a file shared by mailboxes with
    /// `--dedup`): it must not be renamed or removed for one of them.
    pub fn location_shared(&self, location: &str) -> Result<bool> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE location=?1",
                params![location],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 1)
    }

    /// Forgets records whose messages were removed from the archive (`--mirror`; one event).
    pub fn remove_records(&mut self, identities: &[String]) -> Result<()> {
        if identities.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut del = tx.prepare_cached("DELETE FROM messages WHERE identity=?1")?;
            for id in identities {
                del.execute(params![id])?;
            }
            Ok(())
        })
    }

    /// Every mbox file's (committed length, pending length).
    pub fn mbox_files(&self) -> Result<Vec<(String, u64, Option<u64>)>> {
        let mut st = self
            .conn
            .prepare("SELECT file, committed_len, pending_len FROM mbox_files ORDER BY file")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Records that `mark.file` is about to be appended to from `mark.len` (one event).
    pub fn set_pending(&mut self, mark: &TailMark) -> Result<()> {
        self.commit(|tx| {
            tx.execute(
                "INSERT INTO mbox_files(file, committed_len, pending_len) VALUES(?1, ?2, ?2)
                 ON CONFLICT(file) DO UPDATE SET pending_len=excluded.pending_len",
                params![mark.file, mark.len as i64],
            )
            .map(|_| ())
        })
    }

    /// Clears a pending mark after the sink repaired the tail (one event).
    pub fn clear_pending(&mut self, file: &str) -> Result<()> {
        self.commit(|tx| {
            tx.execute(
                "UPDATE mbox_files SET pending_len=NULL, committed_len=MIN(committed_len, COALESCE(pending_len, committed_len)) WHERE file=?1",
                params![file],
            )
            .map(|_| ())
        })
    }

    /// Records a batch of durable messages and the mbox files' new committed lengths, clearing
    /// their pending marks, in one transaction (one event). Does nothing for an empty batch.
    pub fn record_batch(&mut self, records: &[Record], tails: &[TailMark]) -> Result<()> {
        if records.is_empty() && tails.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut ins = tx.prepare_cached(
                "INSERT INTO messages(account, mailbox, uidvalidity, uid, uidl, identity, size, wire_size,
                     sha256, internal_date, flags, location, stored_at, verified)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(identity) DO UPDATE SET size=excluded.size, wire_size=excluded.wire_size,
                    sha256=excluded.sha256, internal_date=excluded.internal_date, flags=excluded.flags,
                    location=excluded.location, stored_at=excluded.stored_at, deleted_at=NULL,
                    verified=excluded.verified",
            )?;
            for r in records {
                ins.execute(params![
                    r.account,
                    r.mailbox,
                    r.uidvalidity,
                    r.uid,
                    r.uidl,
                    r.identity,
                    r.size as i64,
                    r.wire_size.map(|v| v as i64),
                    r.sha256,
                    r.internal_date,
                    r.flags,
                    r.location,
                    r.stored_at,
                    r.verified
                ])?;
            }
            let mut up = tx.prepare_cached(
                "INSERT INTO mbox_files(file, committed_len, pending_len) VALUES(?1, ?2, NULL)
                 ON CONFLICT(file) DO UPDATE SET committed_len=excluded.committed_len, pending_len=NULL",
            )?;
            for t in tails {
                up.execute(params![t.file, t.len as i64])?;
            }
            let mut unplace = tx.prepare_cached("DELETE FROM placed WHERE identity=?1")?;
            for r in records {
                unplace.execute(params![r.identity])?;
            }
            Ok(())
        })
    }

    /// Notes a message appended to an mbox but not yet durable (one event, without fsync).
    pub fn record_placed(&mut self, record: &Record) -> Result<()> {
        let json = serde_json::to_string(record).expect("a record serialises");
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.err(e))?;
        let r = self.commit(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO placed(identity, record) VALUES(?1, ?2)",
                params![record.identity, json],
            )
            .map(|_| ())
        });
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        r
    }

    /// Forgets every placed note (after start-up recovery has dealt with them; one event when
    /// there were any).
    pub fn clear_placed(&mut self) -> Result<()> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM placed", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Ok(());
        }
        self.commit(|tx| tx.execute("DELETE FROM placed", []).map(|_| ()))
    }

    /// The messages noted as placed and not yet recorded.
    pub fn placed(&self) -> Result<Vec<Record>> {
        let mut st = self
            .conn
            .prepare("SELECT record FROM placed")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for json in rows {
            let json = json.map_err(|e| self.err(e))?;
            let rec: Record = serde_json::from_str(&json).map_err(|e| {
                Error::archive(&self.path, format!("ledger: bad placed record: {e}"))
            })?;
            out.push(rec);
        }
        Ok(out)
    }

    /// Promotes records to verified (one event): their archived bytes were compared with the
    /// source's message and found equal (see [`Record::verified`]).
    pub fn set_verified(&mut self, identities: &[String]) -> Result<()> {
        if identities.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut st = tx.prepare_cached("UPDATE messages SET verified=1 WHERE identity=?1")?;
            for id in identities {
                st.execute(params![id])?;
            }
            Ok(())
        })
    }

    /// Gives POP3 records new identities (one event): `(old identity, new identity, UIDL)`.
    /// For a server that changed a message's UIDL (RFC 1939 7 says it must not): the message
    /// read again under its new UIDL has the recorded bytes, so its record is renamed instead of
    /// archiving a second copy.
    pub fn rekey_pop3(&mut self, rekeys: &[(String, String, String)]) -> Result<()> {
        if rekeys.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut st =
                tx.prepare_cached("UPDATE messages SET identity=?2, uidl=?3 WHERE identity=?1")?;
            for (old, new, uidl) in rekeys {
                st.execute(params![old, new, uidl])?;
            }
            Ok(())
        })
    }

    /// Records that the server confirmed the deletion of these identities at `at` (one event).
    pub fn mark_deleted(&mut self, identities: &[String], at: i64) -> Result<()> {
        if identities.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut up =
                tx.prepare_cached("UPDATE messages SET deleted_at=?2 WHERE identity=?1")?;
            for id in identities {
                up.execute(params![id, at])?;
            }
            Ok(())
        })
    }

    /// Takes back recorded deletions of these identities: `prune` records a deletion just
    /// before it asks the server, and takes it back when the server did not delete (one event).
    pub fn clear_deleted(&mut self, identities: &[String]) -> Result<()> {
        if identities.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut up =
                tx.prepare_cached("UPDATE messages SET deleted_at=NULL WHERE identity=?1")?;
            for id in identities {
                up.execute(params![id])?;
            }
            Ok(())
        })
    }

    /// Adds a note (a one-time warning such as "server has no UIDL") unless the same text was
    /// already noted for `account`; returns true when it is new (one event when new).
    pub fn note_once(&mut self, account: &str, text: &str, at: i64) -> Result<bool> {
        let seen: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM notes WHERE account=?1 AND text=?2",
                params![account, text],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if seen.is_some() {
            return Ok(false);
        }
        self.commit(|tx| {
            tx.execute(
                "INSERT INTO notes(at, account, text) VALUES(?1, ?2, ?3)",
                params![at, account, text],
            )
            .map(|_| ())
        })?;
        Ok(true)
    }

    /// Opens an existing ledger read-only (for `restore --dry-run`, which writes nothing).
    /// Tables that do not exist yet read as empty.
    ///
    /// Errors: [`Error::Archive`] when the file cannot be opened.
    pub fn open_read_only(path: &Path) -> Result<Ledger> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| db_err(path, e))?;
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
            commits: 0,
            kill_after: None,
            count_file: None,
            generation_file: None,
        })
    }

    /// Every upload recorded to `account`'s `mailbox` (wire name), for checking against what
    /// the target holds now. Empty when the table does not exist (a read-only ledger of an
    /// older mailkeep).
    pub fn upload_rows(&self, account: &str, mailbox: &str) -> Result<Vec<UploadRow>> {
        let mut st = match self.conn.prepare_cached(
            "SELECT sha256, uidvalidity, uid, source FROM uploads WHERE account=?1 AND mailbox=?2 \
             ORDER BY id",
        ) {
            Ok(st) => st,
            Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let rows = st
            .query_map(params![account, mailbox], |r| {
                Ok(UploadRow {
                    sha256: r.get(0)?,
                    uidvalidity: r.get(1)?,
                    uid: r.get(2)?,
                    source: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Every source identity recorded as uploaded to `account` (any mailbox): what `migrate
    /// --delete-after-migrate` may delete at the source.
    pub fn uploaded_sources(&self, account: &str) -> Result<std::collections::HashSet<String>> {
        let mut st = match self.conn.prepare_cached(
            "SELECT DISTINCT source FROM uploads WHERE account=?1 AND source IS NOT NULL",
        ) {
            Ok(st) => st,
            Err(e) if e.to_string().contains("no such") => {
                return Ok(std::collections::HashSet::new())
            }
            Err(e) => return Err(self.err(e)),
        };
        let rows = st
            .query_map(params![account], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Records one upload (one event, durable when it returns).
    pub fn record_upload(&mut self, u: &Upload) -> Result<()> {
        self.commit(|tx| {
            tx.execute(SUPERSEDE_UPLOAD, params![u.account, u.mailbox, u.sha256, u.source])?;
            tx.execute(
                "INSERT INTO uploads(account, mailbox, sha256, uidvalidity, uid, origin, how, at, source)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    u.account,
                    u.mailbox,
                    u.sha256,
                    u.uidvalidity,
                    u.uid,
                    u.origin,
                    u.how,
                    u.at,
                    u.source
                ],
            )
            .map(|_| ())
        })
    }

    /// Records several uploads in one transaction (one event, durable when it returns): a
    /// pipelined batch of APPENDs the server confirmed, and messages found on the target.
    /// Nothing is committed for an empty slice.
    pub fn record_uploads(&mut self, uploads: &[Upload]) -> Result<()> {
        if uploads.is_empty() {
            return Ok(());
        }
        self.commit(|tx| {
            let mut supersede = tx.prepare_cached(SUPERSEDE_UPLOAD)?;
            let mut st = tx.prepare_cached(
                "INSERT INTO uploads(account, mailbox, sha256, uidvalidity, uid, origin, how, at, source)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for u in uploads {
                supersede.execute(params![u.account, u.mailbox, u.sha256, u.source])?;
                st.execute(params![
                    u.account,
                    u.mailbox,
                    u.sha256,
                    u.uidvalidity,
                    u.uid,
                    u.origin,
                    u.how,
                    u.at,
                    u.source
                ])?;
            }
            Ok(())
        })
    }

    /// All records, ordered by id (for verification and tests).
    pub fn records(&self) -> Result<Vec<Record>> {
        self.select_records("ORDER BY id", [])
    }

    fn select_records(&self, filter: &str, p: impl rusqlite::Params) -> Result<Vec<Record>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT account, mailbox, uidl, uidvalidity, uid, identity, size, wire_size, sha256,
                        internal_date, flags, location, stored_at, verified FROM messages {filter}"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(p, |r| {
                Ok(Record {
                    account: r.get(0)?,
                    mailbox: r.get(1)?,
                    uidl: r.get(2)?,
                    uidvalidity: r.get(3)?,
                    uid: r.get(4)?,
                    identity: r.get(5)?,
                    size: r.get::<_, i64>(6)? as u64,
                    wire_size: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                    sha256: r.get(8)?,
                    internal_date: r.get(9)?,
                    flags: r.get(10)?,
                    location: r.get(11)?,
                    stored_at: r.get(12)?,
                    verified: r.get(13)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record {
        Record {
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
        }
    }

    #[test]
    fn record_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.sqlite");
        let mut l = Ledger::open(&p).unwrap();
        l.record_batch(
            &[rec("1"), rec("2")],
            &[TailMark {
                file: "INBOX.mbox".into(),
                len: 40,
            }],
        )
        .unwrap();
        assert_eq!(l.events(), 1);
        drop(l);
        let l = Ledger::open(&p).unwrap();
        let ids = l.identities("pop3:a@h").unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids.get("pop3:a@h UIDL 2"), Some(&Some(12)));
        assert_eq!(l.records().unwrap(), vec![rec("1"), rec("2")]);
        assert_eq!(
            l.mbox_files().unwrap(),
            vec![("INBOX.mbox".into(), 40, None)]
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn recording_an_identity_again_replaces_its_record() {
        // A message fetched again because its archived copy was gone: one record, the new one.
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        l.record_batch(&[rec("1")], &[]).unwrap();
        let mut again = rec("1");
        again.location = "cur/new-place".into();
        l.record_batch(&[again.clone()], &[]).unwrap();
        assert_eq!(l.records().unwrap(), vec![again]);
    }

    #[test]
    fn pending_marks() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        l.set_pending(&TailMark {
            file: "INBOX.mbox".into(),
            len: 0,
        })
        .unwrap();
        assert_eq!(
            l.mbox_files().unwrap(),
            vec![("INBOX.mbox".into(), 0, Some(0))]
        );
        l.record_batch(
            &[],
            &[TailMark {
                file: "INBOX.mbox".into(),
                len: 100,
            }],
        )
        .unwrap();
        l.set_pending(&TailMark {
            file: "INBOX.mbox".into(),
            len: 100,
        })
        .unwrap();
        assert_eq!(
            l.mbox_files().unwrap(),
            vec![("INBOX.mbox".into(), 100, Some(100))]
        );
        l.clear_pending("INBOX.mbox").unwrap();
        assert_eq!(
            l.mbox_files().unwrap(),
            vec![("INBOX.mbox".into(), 100, None)]
        );
    }

    #[test]
    fn a_source_message_found_or_appended_again_keeps_one_upload_row_per_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.sqlite");
        let mut l = Ledger::open(&p).unwrap();
        let up = |mailbox: &str, uid: u32, source: Option<&str>| Upload {
            account: "imap:b@h".into(),
            mailbox: mailbox.into(),
            sha256: "aa".into(),
            uidvalidity: Some(7),
            uid: Some(uid),
            origin: "x".into(),
            how: "found".into(),
            at: 1,
            source: source.map(str::to_string),
        };
        l.record_uploads(&[up("INBOX", 1, Some("s1")), up("Sent", 1, Some("s1"))])
            .unwrap();
        // The server gave INBOX's messages new UIDs: found again under UID 4.
        l.record_uploads(&[up("INBOX", 4, Some("s1"))]).unwrap();
        l.record_upload(&up("INBOX", 5, None)).unwrap();
        l.record_upload(&up("INBOX", 6, None)).unwrap();
        drop(l);
        let l = Ledger::open_read_only(&p).unwrap();
        let rows = |mb: &str| -> Vec<(Option<u32>, Option<String>)> {
            l.upload_rows("imap:b@h", mb)
                .unwrap()
                .into_iter()
                .map(|r| (r.uid, r.source))
                .collect()
        };
        assert_eq!(
            rows("INBOX"),
            [
                (Some(4), Some("s1".into())),
                (Some(5), None),
                (Some(6), None)
            ]
        );
        assert_eq!(rows("Sent"), [(Some(1), Some("s1".into()))]);
    }

    #[test]
    fn uploads_are_counted_per_content_and_uidvalidity() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.sqlite");
        let mut l = Ledger::open(&p).unwrap();
        let up = |sha: &str, v: Option<u32>| Upload {
            account: "imap:b@h".into(),
            mailbox: "Sent".into(),
            sha256: sha.into(),
            uidvalidity: v,
            uid: v.map(|_| 1),
            origin: "x".into(),
            how: "appended".into(),
            at: 1,
            source: None,
        };
        for u in [up("aa", Some(7)), up("aa", Some(7)), up("bb", None)] {
            l.record_upload(&u).unwrap();
        }
        // A batch is one event.
        let before = l.events();
        l.record_uploads(&[up("cc", Some(7)), up("cc", Some(7)), up("dd", None)])
            .unwrap();
        l.record_uploads(&[]).unwrap();
        assert_eq!(l.events(), before + 1);
        drop(l);
        let l = Ledger::open_read_only(&p).unwrap();
        let shas: Vec<(String, Option<u32>)> = l
            .upload_rows("imap:b@h", "Sent")
            .unwrap()
            .into_iter()
            .map(|r| (r.sha256, r.uidvalidity))
            .collect();
        let want = [
            ("aa", Some(7)),
            ("aa", Some(7)),
            ("bb", None),
            ("cc", Some(7)),
            ("cc", Some(7)),
            ("dd", None),
        ];
        assert_eq!(shas, want.map(|(s, v)| (s.to_string(), v)).to_vec());
        assert!(l.upload_rows("imap:b@h", "INBOX").unwrap().is_empty());
    }

    #[test]
    fn notes_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        assert!(l.note_once("a", "no UIDL", 1).unwrap());
        assert!(!l.note_once("a", "no UIDL", 2).unwrap());
        assert!(l.note_once("b", "no UIDL", 2).unwrap());
    }
}
