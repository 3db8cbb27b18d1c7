//! `mailkeep verify ARCHIVE [--against SOURCE]`: checks a mailkeep archive against its ledger,
//! and optionally the ledger against the server, without changing a byte.
//!
//! - Every message the ledger records is looked for where it was stored and hashed: a Maildir
//!   file by its base name in `cur/` or `new/` of its folder (a mail reader may have renamed it
//!   for flags), an mbox entry by the offset of its separator line. Missing: incomplete.
//!   Another SHA-256, a file that ends inside a message, an mbox that does not parse: damaged.
//! - Every mbox file is read to its end with mailkeep's reader, so it must parse cleanly, and
//!   its entries must be the ones recorded (an entry found intact at another offset is a note,
//!   an entry the ledger does not know is a note).
//! - Files left in a Maildir `tmp/` or in `mailkeep/spool/` by an interrupted write are
//!   reported (incomplete), never deleted.
//! - A `zip:` archive is checked by [`crate::archive::zip::reader::check`]: every entry's CRC-32, sizes
//!   and SHA-256 against `manifest.jsonl`, rows without entries (missing), entries without rows
//!   (notes).
//! - `--against` lists the server (IMAP: LIST, then EXAMINE and a UID listing per mailbox;
//!   POP3: UIDL) and compares by the ledger's identities (DESIGN.md invariant 3): per mailbox,
//!   what is on the server, in the archive, missing from the archive, only in the archive.
//!
//! Read-only: the ledger is opened `immutable` (a ledger with a `-wal` file beside it, left by
//! a run that died, is copied to a private temporary folder and read there); no lock file is
//! created. When `mailkeep/lock` exists, verify takes a shared `flock` on it for the duration,
//! so a backup cannot change the archive under it (and a running backup makes verify exit 5).
//!
//! The decisions ([`classify_maildir`], [`classify_mbox`], [`compare`], [`exit_for`]) are pure
//! functions of what the ledger says and what was found, tested case by case below.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{relative_to, ArchiveArg, Printer};
use crate::archive::maildir::reader::split_info;
use crate::archive::mbox::format::MboxReader;
use crate::archive::STATE_DIR;
use crate::core::endpoint::Protocol;
use crate::core::error::{Error, Exit, Result};
use crate::engine::plan::FolderFilter;
use crate::engine::plans::{Output, ServerPlan};

// ---------------------------------------------------------------------------------------------
// What verify reports
// ---------------------------------------------------------------------------------------------

/// How bad a finding is; the exit code is the worst class found ([`exit_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Worth knowing, not wrong (exit 0).
    Note,
    /// Something is missing (exit 8, [`Exit::Incomplete`]).
    Incomplete,
    /// Something that is there is wrong (exit 9, [`Exit::Damaged`]).
    Damaged,
}

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A recorded message's file or mbox entry is gone (incomplete).
    Missing,
    /// A recorded message's bytes have another SHA-256 than the ledger's (damaged).
    Sha256Mismatch,
    /// An mbox file is shorter than the ledger recorded, or ends inside a message (damaged).
    Truncated,
    /// A file cannot be read as what it should be: an mbox that does not start with a `From `
    /// line, a read error, a ledger location that names no place (damaged).
    Unreadable,
    /// A file left in a Maildir `tmp/` or in `mailkeep/spool/` by an interrupted write
    /// (incomplete; not deleted: the next backup removes mailkeep's own).
    TmpLeftover,
    /// An mbox file whose append a run had started and never finished (incomplete; the next
    /// backup repairs it).
    InterruptedAppend,
    /// `--against`: a message on the server that the ledger never recorded (incomplete).
    MissingFromArchive,
    /// A zip archive's CRC or manifest does not agree with its contents (damaged).
    Zip,
    /// A message file or mbox entry that the ledger does not know (note).
    Untracked,
    /// An mbox entry found intact at another offset than the ledger's (note).
    Moved,
    /// Records adopted without comparing their bytes with the server (a lost or older
    /// ledger, an interrupted run, a converted archive): nothing is deleted on a server on
    /// their strength until prune or `--delete-after-backup` has compared them (note).
    Unverified,
}

impl Kind {
    /// The class of this kind of finding.
    pub fn class(self) -> Class {
        match self {
            Kind::Sha256Mismatch | Kind::Truncated | Kind::Unreadable | Kind::Zip => Class::Damaged,
            Kind::Missing
            | Kind::TmpLeftover
            | Kind::InterruptedAppend
            | Kind::MissingFromArchive => Class::Incomplete,
            Kind::Untracked | Kind::Moved | Kind::Unverified => Class::Note,
        }
    }
}

/// One finding: what, where (path), which message (identity), and in words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub class: Class,
    pub kind: Kind,
    /// The mailbox in the archive, when the finding is about a message.
    pub mailbox: Option<String>,
    /// The message's identity in the ledger (`imap:alice@host MAILBOX INBOX UIDVALIDITY 7 UID
    /// 42`, `pop3:alice@host UIDL 0001`), when the finding is about a recorded message.
    pub identity: Option<String>,
    /// The file (absolute), or `file:offset` for an mbox entry.
    pub path: Option<String>,
    pub detail: String,
}

impl Problem {
    fn new(kind: Kind, path: Option<String>, detail: impl Into<String>) -> Problem {
        Problem {
            class: kind.class(),
            kind,
            mailbox: None,
            identity: None,
            path,
            detail: detail.into(),
        }
    }

    fn about(mut self, row: &LedgerRow) -> Problem {
        self.mailbox = Some(row.mailbox.clone());
        self.identity = Some(row.identity.clone());
        self
    }

    /// One line: `damaged: PATH (IDENTITY): DETAIL`.
    pub fn line(&self) -> String {
        let class = match self.class {
            Class::Note => "note",
            Class::Incomplete => "incomplete",
            Class::Damaged => "damaged",
        };
        let mut s = format!("{class}: ");
        if let Some(p) = &self.path {
            s.push_str(p);
        } else if let Some(m) = &self.mailbox {
            s.push_str(m);
        }
        if let Some(i) = &self.identity {
            s.push_str(&format!(" ({i})"));
        }
        s.push_str(&format!(": {}", self.detail));
        s
    }
}

/// One mailbox compared with the server (`--against`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxComparison {
    pub mailbox: String,
    /// Messages the server lists.
    pub on_server: u64,
    /// Messages the ledger records for this account and mailbox.
    pub in_archive: u64,
    /// On the server, and never archived or with an archived copy missing or damaged.
    pub missing_from_archive: u64,
    /// Recorded, no longer on the server (deleted there: normal for a backup).
    pub only_in_archive: u64,
}

/// A server message missing from the archive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingMessage {
    pub mailbox: String,
    /// The identity it has (or would have) in the ledger.
    pub identity: String,
    /// How the server names it: `UID 42` (IMAP) or `UIDL 0001` (POP3).
    pub message: String,
    /// True when the ledger records it but its archived copy is missing or damaged (it is
    /// also in `problems`); false when it was never archived.
    pub recorded: bool,
}

/// The comparison with the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Against {
    /// The account as shown everywhere (`alice@imap.example.com:993`).
    pub source: String,
    /// The account's key in the ledger (`imap:alice@imap.example.com`).
    pub account: String,
    pub mailboxes: Vec<MailboxComparison>,
    pub missing_from_archive: Vec<MissingMessage>,
}

/// What `verify` found; printed as a table or (`--json`) as this object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub command: &'static str,
    /// The archive, `kind:PATH`.
    pub archive: String,
    /// Messages recorded in the ledger (all accounts).
    pub records: u64,
    /// Of those, found with the recorded SHA-256.
    pub intact: u64,
    /// Damaged and incomplete findings.
    pub problems: Vec<Problem>,
    /// Notes (untracked files, moved entries): not wrong, exit 0.
    pub notes: Vec<Problem>,
    /// With `--against`.
    pub against: Option<Against>,
    /// The error that stopped the check (e.g. the server could not be reached).
    pub error: Option<String>,
    pub exit: Exit,
    pub exit_code: u8,
}

impl VerifyReport {
    fn new(archive: String) -> VerifyReport {
        VerifyReport {
            command: "verify",
            archive,
            records: 0,
            intact: 0,
            problems: Vec::new(),
            notes: Vec::new(),
            against: None,
            error: None,
            exit: Exit::Ok,
            exit_code: 0,
        }
    }

    fn push(&mut self, p: Problem) {
        if p.class == Class::Note {
            self.notes.push(p);
        } else {
            self.problems.push(p);
        }
    }

    fn count(&self, kind: Kind) -> usize {
        self.problems
            .iter()
            .chain(&self.notes)
            .filter(|p| p.kind == kind)
            .count()
    }

    /// The last line: `verify maildir:/x: 42 recorded, 40 intact, 1 missing, 1 damaged ->
    /// damaged (exit 9)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "verify {}: {} message{} recorded, {} intact",
            self.archive,
            self.records,
            if self.records == 1 { "" } else { "s" },
            self.intact
        );
        let parts = [
            (Kind::Missing, "missing"),
            (Kind::Sha256Mismatch, "with another SHA-256"),
            (Kind::Truncated, "truncated"),
            (Kind::Unreadable, "unreadable"),
            (Kind::Zip, "zip problem(s)"),
            (Kind::TmpLeftover, "left in tmp/"),
            (Kind::InterruptedAppend, "interrupted append(s)"),
            (
                Kind::Untracked,
                if self.archive.starts_with("zip:") {
                    "without a manifest row"
                } else {
                    "not in the ledger"
                },
            ),
            (Kind::Moved, "moved"),
        ];
        for (kind, words) in parts {
            let n = self.count(kind);
            if n > 0 {
                s.push_str(&format!(", {n} {words}"));
            }
        }
        if let Some(a) = &self.against {
            let missing: u64 = a.mailboxes.iter().map(|m| m.missing_from_archive).sum();
            let only: u64 = a.mailboxes.iter().map(|m| m.only_in_archive).sum();
            s.push_str(&format!(
                "; {}: {missing} missing from the archive, {only} only in the archive",
                a.source
            ));
        }
        let result = match self.exit {
            Exit::Ok => "ok",
            Exit::Incomplete => "incomplete",
            Exit::Damaged => "damaged",
            _ => "not finished",
        };
        s.push_str(&format!(" -> {result} (exit {})", self.exit_code));
        s
    }
}

/// The exit status for a set of findings: damaged beats incomplete beats ok. Pure.
pub fn exit_for(problems: &[Problem]) -> Exit {
    match problems.iter().map(|p| p.class).max() {
        Some(Class::Damaged) => Exit::Damaged,
        Some(Class::Incomplete) => Exit::Incomplete,
        _ => Exit::Ok,
    }
}

// ---------------------------------------------------------------------------------------------
// The ledger, read-only
// ---------------------------------------------------------------------------------------------

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
fn read_ledger(path: &Path) -> Result<(Vec<LedgerRow>, Vec<MboxFileRow>)> {
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
fn ledger_trust(path: &Path) -> Result<(i64, u64)> {
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

// ---------------------------------------------------------------------------------------------
// Maildir
// ---------------------------------------------------------------------------------------------

/// What was found on disk for one recorded Maildir location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No file with the recorded base name in the folder's `cur/` or `new/`.
    Missing,
    /// Files with that base name: path and SHA-256 of the bytes, or the read error.
    Files(Vec<(String, std::result::Result<String, String>)>),
}

/// Classifies the Maildir records: each is intact, missing, damaged or unreadable, by what was
/// `found` at its location (`path_of` gives the path to name for a missing one). Returns the
/// number of intact records and the problems. Pure.
pub fn classify_maildir(
    rows: &[&LedgerRow],
    found: &HashMap<String, Found>,
    path_of: &dyn Fn(&str) -> String,
) -> (u64, Vec<Problem>) {
    let mut intact = 0;
    let mut problems = Vec::new();
    for row in rows {
        let p = match found.get(&row.location) {
            None | Some(Found::Missing) => Problem::new(
                Kind::Missing,
                Some(path_of(&row.location)),
                "the message file is gone (no file of that name in cur/ or new/)",
            ),
            Some(Found::Files(files)) => {
                if files
                    .iter()
                    .any(|(_, sha)| sha.as_deref() == Ok(row.sha256.as_str()))
                {
                    intact += 1;
                    continue;
                }
                match files.iter().find(|(_, sha)| sha.is_ok()) {
                    Some((path, Ok(sha))) => Problem::new(
                        Kind::Sha256Mismatch,
                        Some(path.clone()),
                        format!(
                            "the bytes changed: SHA-256 {sha}, the ledger recorded {} ({} bytes)",
                            row.sha256, row.size
                        ),
                    ),
                    _ => {
                        let (path, error) = match files.first() {
                            Some((p, Err(e))) => (Some(p.clone()), e.clone()),
                            _ => (None, String::new()),
                        };
                        Problem::new(Kind::Unreadable, path, format!("cannot be read: {error}"))
                    }
                }
            }
        };
        problems.push(p.about(row));
    }
    (intact, problems)
}

/// The folder part (`""`, `.Sent`) and base name of a Maildir location `<folder>/cur/<base>`.
fn maildir_location(location: &str) -> Option<(&str, &str)> {
    let (dir, name) = location.rsplit_once('/')?;
    let folder = match dir.rsplit_once('/') {
        Some((f, sub)) if sub == "cur" || sub == "new" => f,
        None if dir == "cur" || dir == "new" => "",
        _ => return None,
    };
    Some((folder, split_info(name).0))
}

/// The regular, non-hidden files of a directory (sorted); none when it does not exist.
fn files_in(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::archive_io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::archive_io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        out.push((name, e.path()));
    }
    out.sort();
    Ok(out)
}

/// Reports files in `dir` (a `tmp/` or the spool) as leftovers.
fn leftovers(dir: &Path, report: &mut VerifyReport) -> Result<()> {
    for (_, path) in files_in(dir)? {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        report.push(Problem::new(
            Kind::TmpLeftover,
            Some(path.display().to_string()),
            format!(
                "{size} bytes left by an interrupted write (not deleted; the next backup removes the ones mailkeep staged)"
            ),
        ));
    }
    Ok(())
}

fn check_maildir(root: &Path, rows: &[LedgerRow], report: &mut VerifyReport) -> Result<()> {
    // The Maildir++ folders: the root (INBOX) and every `.folder` holding cur/ or new/, plus
    // any folder the ledger names.
    let mut folders: Vec<String> = vec![String::new()];
    for (name, path, ft) in crate::archive::reader::sorted_entries(root, &mut Vec::new())? {
        if ft.is_dir()
            && name.starts_with('.')
            && name.len() > 1
            && name != ".."
            && (crate::archive::reader::is_real_dir(&path.join("cur"))
                || crate::archive::reader::is_real_dir(&path.join("new")))
        {
            folders.push(name);
        }
    }
    for row in rows {
        if let Some((folder, _)) = maildir_location(&row.location) {
            if !folders.iter().any(|f| f == folder) {
                folders.push(folder.to_string());
            }
        }
    }
    // (folder, base) -> files in cur/ and new/.
    let mut index: HashMap<(String, String), Vec<PathBuf>> = HashMap::new();
    for folder in &folders {
        let dir = root.join(folder);
        // Nothing outside the archive is read: a folder, `cur/` or `new/` that is a link is
        // named and not followed (its recorded messages then count as missing).
        let linked =
            |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
        if !folder.is_empty() && linked(&dir) {
            report.push(Problem::new(
                Kind::Untracked,
                Some(dir.display().to_string()),
                "a symbolic link, not followed (mailkeep reads nothing outside the archive)",
            ));
            continue;
        }
        for sub in ["cur", "new"] {
            if linked(&dir.join(sub)) {
                report.push(Problem::new(
                    Kind::Untracked,
                    Some(dir.join(sub).display().to_string()),
                    "a symbolic link, not followed (mailkeep reads nothing outside the archive)",
                ));
                continue;
            }
            for (name, path) in files_in(&dir.join(sub))? {
                let base = split_info(&name).0.to_string();
                index.entry((folder.clone(), base)).or_default().push(path);
            }
        }
        leftovers(&dir.join("tmp"), report)?;
    }
    let mut found: HashMap<String, Found> = HashMap::new();
    let mut claimed: HashSet<(String, String)> = HashSet::new();
    let mut bad_locations = Vec::new();
    for row in rows {
        if found.contains_key(&row.location) {
            continue;
        }
        let Some((folder, base)) = maildir_location(&row.location) else {
            bad_locations.push(row);
            continue;
        };
        let key = (folder.to_string(), base.to_string());
        let state = match index.get(&key) {
            None => Found::Missing,
            Some(paths) => Found::Files(
                paths
                    .iter()
                    .map(|p| {
                        let sha = crate::archive::maildir::writer::hash_file(p)
                            .map(|(sha, _)| sha)
                            .map_err(|e| e.to_string());
                        (p.display().to_string(), sha)
                    })
                    .collect(),
            ),
        };
        claimed.insert(key);
        found.insert(row.location.clone(), state);
    }
    let good: Vec<&LedgerRow> = rows
        .iter()
        .filter(|r| maildir_location(&r.location).is_some())
        .collect();
    let (intact, problems) =
        classify_maildir(&good, &found, &|loc| root.join(loc).display().to_string());
    report.intact += intact;
    for p in problems {
        report.push(p);
    }
    for row in bad_locations {
        report.push(
            Problem::new(
                Kind::Unreadable,
                None,
                format!(
                    "the ledger's location `{}` is not <folder>/cur/<file>",
                    row.location
                ),
            )
            .about(row),
        );
    }
    let mut untracked: Vec<&PathBuf> = index
        .iter()
        .filter(|(k, _)| !claimed.contains(*k))
        .flat_map(|(_, v)| v)
        .collect();
    untracked.sort();
    for path in untracked {
        report.push(Problem::new(
            Kind::Untracked,
            Some(path.display().to_string()),
            "a message file the ledger does not know (put there by another program?)",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// mbox
// ---------------------------------------------------------------------------------------------

/// One entry read from an mbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxEntry {
    /// Offset of the separator line.
    pub offset: u64,
    /// SHA-256 of the message bytes (mboxrd unquoted).
    pub sha256: String,
}

/// An mbox file read to its end (or to the error that stopped the reader).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MboxScan {
    pub entries: Vec<MboxEntry>,
    /// The file's length in bytes.
    pub len: u64,
    /// Why the reader stopped early, if it did.
    pub error: Option<String>,
}

/// `<file>:<offset>:<length>`.
fn mbox_location(location: &str) -> Option<(&str, u64, u64)> {
    let (rest, len) = location.rsplit_once(':')?;
    let (file, off) = rest.rsplit_once(':')?;
    Some((file, off.parse().ok()?, len.parse().ok()?))
}

/// Classifies the records of one mbox file (`shown` is its path as reported) against what
/// reading it gave (`None`: the file is gone) and the ledger's lengths for it. Returns the
/// number of intact records and the findings (problems and notes). Pure.
pub fn classify_mbox(
    shown: &str,
    rows: &[&LedgerRow],
    scan: Option<&MboxScan>,
    lengths: Option<&MboxFileRow>,
) -> (u64, Vec<Problem>) {
    let mut out = Vec::new();
    let Some(scan) = scan else {
        for row in rows {
            out.push(
                Problem::new(
                    Kind::Missing,
                    Some(shown.to_string()),
                    "the mbox file is gone",
                )
                .about(row),
            );
        }
        return (0, out);
    };
    if let Some(l) = lengths {
        if scan.len < l.committed {
            out.push(Problem::new(
                Kind::Truncated,
                Some(shown.to_string()),
                format!(
                    "the file is {} bytes, the ledger recorded {} (cut short by another program?)",
                    scan.len, l.committed
                ),
            ));
        }
        if let Some(p) = l.pending {
            out.push(Problem::new(
                Kind::InterruptedAppend,
                Some(shown.to_string()),
                format!("a run died while appending after byte {p}; the next backup repairs it"),
            ));
        }
    }
    if let Some(e) = &scan.error {
        out.push(Problem::new(
            Kind::Unreadable,
            Some(shown.to_string()),
            format!("does not parse as an mbox: {e}"),
        ));
    }
    // Records grouped by location (a `--dedup` copy is one entry for several identities).
    let mut groups: BTreeMap<(u64, u64), Vec<&LedgerRow>> = BTreeMap::new();
    for row in rows {
        match mbox_location(&row.location) {
            Some((_, off, len)) => groups.entry((off, len)).or_default().push(row),
            None => out.push(
                Problem::new(
                    Kind::Unreadable,
                    Some(shown.to_string()),
                    format!(
                        "the ledger's location `{}` is not <file>:<offset>:<length>",
                        row.location
                    ),
                )
                .about(row),
            ),
        }
    }
    let at: HashMap<u64, usize> = scan
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.offset, i))
        .collect();
    let mut claimed = vec![false; scan.entries.len()];
    let mut intact = 0u64;
    let mut left = Vec::new();
    // 1. At the recorded offset with the recorded bytes.
    for ((off, len), group) in &groups {
        match at.get(off) {
            Some(&i) if scan.entries[i].sha256 == group[0].sha256 && !claimed[i] => {
                claimed[i] = true;
                intact += group.len() as u64;
            }
            _ => left.push(((*off, *len), group)),
        }
    }
    // 2. The same bytes at another offset (the file was rewritten by a mail reader).
    let mut left2 = Vec::new();
    for ((off, len), group) in left {
        let moved = scan
            .entries
            .iter()
            .enumerate()
            .find(|(i, e)| !claimed[*i] && e.sha256 == group[0].sha256);
        match moved {
            Some((i, e)) => {
                claimed[i] = true;
                intact += group.len() as u64;
                for row in group {
                    out.push(
                        Problem::new(
                            Kind::Moved,
                            Some(format!("{shown}:{}", e.offset)),
                            format!("intact, at byte {} instead of the recorded {off}", e.offset),
                        )
                        .about(row),
                    );
                }
            }
            None => left2.push(((off, len), group)),
        }
    }
    // 3. What is left is damaged or missing.
    for ((off, len), group) in left2 {
        let here = Some(format!("{shown}:{off}"));
        let p = match at.get(&off).copied().filter(|&i| !claimed[i]) {
            Some(i) => {
                claimed[i] = true;
                if off + len > scan.len {
                    Problem::new(
                        Kind::Truncated,
                        here,
                        format!(
                            "the file ends inside this message (at byte {}; the entry should end at {})",
                            scan.len,
                            off + len
                        ),
                    )
                } else {
                    Problem::new(
                        Kind::Sha256Mismatch,
                        here,
                        format!(
                            "the bytes changed: SHA-256 {}, the ledger recorded {} ({} bytes)",
                            scan.entries[i].sha256, group[0].sha256, group[0].size
                        ),
                    )
                }
            }
            None if scan.error.is_some() => Problem::new(
                Kind::Unreadable,
                here,
                "not readable: the file does not parse",
            ),
            None if off >= scan.len => Problem::new(
                Kind::Missing,
                here,
                format!("the file ends at byte {}, before this message", scan.len),
            ),
            None => Problem::new(
                Kind::Missing,
                here,
                "no message starts at the recorded offset any more, and its bytes are nowhere in the file",
            ),
        };
        for row in group {
            out.push(p.clone().about(row));
        }
    }
    // Entries nobody recorded: an interrupted append's (reported above) or someone else's.
    let tail_from = lengths.and_then(|l| l.pending.map(|p| p.min(l.committed)));
    for (i, e) in scan.entries.iter().enumerate() {
        if claimed[i] || tail_from.is_some_and(|t| e.offset >= t) {
            continue;
        }
        out.push(Problem::new(
            Kind::Untracked,
            Some(format!("{shown}:{}", e.offset)),
            "an entry the ledger does not know (appended by another program?)",
        ));
    }
    (intact, out)
}

/// Reads an mbox file to its end, hashing each message; `None` when it does not exist.
fn scan_mbox(path: &Path) -> Result<Option<MboxScan>> {
    let file = match crate::archive::reader::open_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Ok(Some(MboxScan {
                error: Some(e.to_string()),
                ..Default::default()
            }))
        }
    };
    let len = file
        .metadata()
        .map_err(|e| Error::archive_io(path, e))?
        .len();
    let mut scan = MboxScan {
        len,
        ..Default::default()
    };
    // Hashed while read: a message over --max-message-size is checked too, in bounded memory.
    let reader = MboxReader::new(BufReader::with_capacity(64 * 1024, file))
        .with_path(path)
        .hashing();
    for m in reader {
        match m {
            Ok(m) => scan.entries.push(MboxEntry {
                offset: m.offset,
                sha256: m
                    .sha256
                    .unwrap_or_else(|| crate::archive::reader::sha256_hex(&m.raw)),
            }),
            Err(e) => {
                // The reader names the file; keep only the reason.
                let text = e.to_string();
                let prefix = format!("archive {}: ", path.display());
                scan.error = Some(text.strip_prefix(&prefix).unwrap_or(&text).to_string());
                break;
            }
        }
    }
    Ok(Some(scan))
}

/// When an mbox file does not parse (a damaged separator line stops the reader), the recorded
/// entries the reader did not reach are read one by one at their recorded place, so that
/// those still intact count as intact and only the damaged ones are named. Each is added to
/// `scan.entries` (its offset and SHA-256) when its bytes read as one mbox entry.
fn recover_entries(path: &Path, rows: &[&LedgerRow], scan: &mut MboxScan) {
    use std::os::unix::fs::FileExt;
    let Ok(file) = File::open(path) else {
        return;
    };
    let known: HashSet<u64> = scan.entries.iter().map(|e| e.offset).collect();
    for row in rows {
        let Some((_, off, len)) = mbox_location(&row.location) else {
            continue;
        };
        if known.contains(&off) || off.saturating_add(len) > scan.len || len > 1 << 31 {
            continue;
        }
        let mut bytes = vec![0u8; len as usize];
        if file.read_exact_at(&mut bytes, off).is_err() {
            continue;
        }
        let mut reader = MboxReader::new(std::io::Cursor::new(bytes));
        if let (Some(Ok(m)), None) = (reader.next(), reader.next()) {
            scan.entries.push(MboxEntry {
                offset: off,
                sha256: crate::archive::reader::sha256_hex(&m.raw),
            });
        }
    }
    scan.entries.sort_by_key(|e| e.offset);
}

/// Every `*.mbox` file under `root` (relative, `/`-separated), the state folder excepted.
fn mbox_files_on_disk(root: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for (name, path, ft) in crate::archive::reader::sorted_entries(dir, &mut Vec::new())? {
            if name.starts_with('.') || (dir == root && name == STATE_DIR) {
                continue;
            }
            if ft.is_dir() {
                walk(root, &path, out)?;
            } else if ft.is_file() && name.ends_with(".mbox") {
                out.push(relative_to(&path, root).to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn check_mbox(
    root: &Path,
    rows: &[LedgerRow],
    lengths: &[MboxFileRow],
    report: &mut VerifyReport,
) -> Result<()> {
    let mut by_file: BTreeMap<String, Vec<&LedgerRow>> = BTreeMap::new();
    for row in rows {
        match mbox_location(&row.location) {
            Some((file, _, _)) => by_file.entry(file.to_string()).or_default().push(row),
            None => report.push(
                Problem::new(
                    Kind::Unreadable,
                    None,
                    format!(
                        "the ledger's location `{}` is not <file>:<offset>:<length>",
                        row.location
                    ),
                )
                .about(row),
            ),
        }
    }
    for l in lengths {
        by_file.entry(l.file.clone()).or_default();
    }
    for f in mbox_files_on_disk(root)? {
        by_file.entry(f).or_default();
    }
    for (file, group) in &by_file {
        let path = root.join(file);
        let shown = path.display().to_string();
        let mut scan = scan_mbox(&path)?;
        if let Some(scan) = scan.as_mut().filter(|s| s.error.is_some()) {
            recover_entries(&path, group, scan);
        }
        let (intact, problems) = classify_mbox(
            &shown,
            group,
            scan.as_ref(),
            lengths.iter().find(|l| l.file == *file),
        );
        report.intact += intact;
        for p in problems {
            report.push(p);
        }
    }
    leftovers(&root.join(STATE_DIR).join("spool"), report)
}

// ---------------------------------------------------------------------------------------------
// zip
// ---------------------------------------------------------------------------------------------

/// The manifest rows of a zip as ledger rows (identity: the row's `source_id`; account: the
/// one that identity names, as `convert` records it), so findings name the message and
/// `--against` compares a zip like a ledger. Rows without a `source_id` are left out. Pure.
pub fn zip_ledger_rows(rows: &[crate::archive::manifest::ManifestRow]) -> Vec<LedgerRow> {
    rows.iter()
        .filter_map(|r| {
            let identity = r.source_id.clone()?;
            Some(LedgerRow {
                account: crate::engine::convert::record_keys(&identity).0,
                mailbox: r.mailbox().to_string(),
                identity,
                size: r.size,
                wire_size: None,
                sha256: r.sha256.clone(),
                location: r.entry.clone(),
            })
        })
        .collect()
}

/// Checks a zip archive with [`crate::archive::zip::reader::check`] (CRC-32 of every entry, sizes and
/// SHA-256 against `manifest.jsonl`, rows without entries, entries without rows, local
/// headers and the end record against the central directory). Findings are named
/// `ZIP:ENTRY`, with the row's identity when the entry has one. `records` is the number of
/// manifest rows with a source identity. Returns those rows as ledger rows.
fn check_zip(path: &Path, report: &mut VerifyReport) -> Result<Vec<LedgerRow>> {
    use crate::archive::zip::reader::{check, ZipProblem, ZipSource};
    if !path.is_file() {
        return Err(Error::archive(
            path,
            if path.exists() {
                "is not a file (a zip: archive is one .zip file)"
            } else {
                "does not exist"
            },
        ));
    }
    // The manifest's rows (0 when it cannot be read; `check` says why).
    let rows = ZipSource::open(path)
        .map(|z| zip_ledger_rows(z.rows()))
        .unwrap_or_default();
    let by_entry: HashMap<&str, &LedgerRow> =
        rows.iter().map(|r| (r.location.as_str(), r)).collect();
    report.records = rows.len() as u64;
    let whole = Some(path.display().to_string());
    let mut bad_entries = HashSet::new();
    for p in check(path)? {
        let at = |entry: &str| Some(format!("{}:{entry}", path.display()));
        let row = p.entry().and_then(|e| by_entry.get(e).copied());
        if let Some(r) = row {
            bad_entries.insert(r.location.clone());
        }
        let (kind, place) = match &p {
            ZipProblem::MissingEntry { entry } => (Kind::Missing, at(entry)),
            ZipProblem::NoManifestRow { entry } => (Kind::Untracked, at(entry)),
            ZipProblem::Crc { entry }
            | ZipProblem::Unreadable { entry, .. }
            | ZipProblem::Size { entry, .. }
            | ZipProblem::Sha256 { entry, .. }
            | ZipProblem::LocalHeader { entry, .. }
            | ZipProblem::DuplicateRow { entry } => (Kind::Zip, at(entry)),
            ZipProblem::NotAZip { .. }
            | ZipProblem::EndRecord { .. }
            | ZipProblem::NoManifest
            | ZipProblem::BadManifestLine { .. } => (Kind::Zip, whole.clone()),
        };
        let problem = Problem::new(kind, place, p.to_string());
        report.push(match row {
            Some(r) => problem.about(r),
            None => problem,
        });
    }
    report.intact = report.records.saturating_sub(bad_entries.len() as u64);
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// --against
// ---------------------------------------------------------------------------------------------

/// A server message as `--against` compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMessage {
    /// Its identity in the ledger's terms.
    pub identity: String,
    /// How the server names it (`UID 42`, `UIDL 0001`).
    pub label: String,
}

/// Compares the server's listing (mailbox -> messages) with the ledger's records of the
/// account (`(mailbox, identity)`), `bad` being the identities whose archived copy is missing
/// or damaged. Mailboxes come out sorted by name. Pure.
pub fn compare(
    server: &BTreeMap<String, Vec<ServerMessage>>,
    archived: &[(&str, &str)],
    bad: &HashSet<String>,
) -> (Vec<MailboxComparison>, Vec<MissingMessage>) {
    let mut recorded: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for (mb, id) in archived {
        recorded.entry(mb).or_default().insert(id);
    }
    let mut names: Vec<&str> = server.keys().map(String::as_str).collect();
    names.extend(recorded.keys().copied());
    names.sort_unstable();
    names.dedup();
    let empty_server = Vec::new();
    let empty_recorded = HashSet::new();
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let on_server = server.get(name).unwrap_or(&empty_server);
        let in_archive = recorded.get(name).unwrap_or(&empty_recorded);
        let listed: HashSet<&str> = on_server.iter().map(|m| m.identity.as_str()).collect();
        let mut row = MailboxComparison {
            mailbox: name.to_string(),
            on_server: listed.len() as u64,
            in_archive: in_archive.len() as u64,
            ..Default::default()
        };
        let mut seen = HashSet::new();
        for m in on_server {
            if !seen.insert(m.identity.as_str()) {
                continue;
            }
            let is_recorded = in_archive.contains(m.identity.as_str());
            if !is_recorded || bad.contains(&m.identity) {
                row.missing_from_archive += 1;
                missing.push(MissingMessage {
                    mailbox: name.to_string(),
                    identity: m.identity.clone(),
                    message: m.label.clone(),
                    recorded: is_recorded,
                });
            }
        }
        row.only_in_archive = in_archive.iter().filter(|id| !listed.contains(*id)).count() as u64;
        rows.push(row);
    }
    (rows, missing)
}

/// The identity a POP3 listing entry has in the ledger: as listed, or `<identity> SIZE
/// <octets>` when the ledger knows the UIDL with another size (a reused UIDL, which backup
/// archives under that identity; see [`crate::engine::pop3::plan_pop3`]). Pure.
pub fn pop3_ledger_identity(
    identity: &str,
    octets: u64,
    recorded: &HashMap<String, Option<u64>>,
) -> String {
    match recorded.get(identity) {
        Some(Some(size)) if *size != octets && octets != 0 => format!("{identity} SIZE {octets}"),
        _ => identity.to_string(),
    }
}

/// Lists the server's messages by mailbox, in the ledger's identities.
fn list_server(
    plan: &ServerPlan,
    filter: &FolderFilter,
    rows: &[LedgerRow],
) -> Result<BTreeMap<String, Vec<ServerMessage>>> {
    let ledger_key = plan.spec.ledger_key();
    let account = plan.spec.account();
    let mut out: BTreeMap<String, Vec<ServerMessage>> = BTreeMap::new();
    match plan.spec.protocol {
        Protocol::Imap => {
            use crate::engine::imap::{connect, imap_error, imap_identity, read_secret};
            let mut client = connect(plan, &read_secret(plan)?)?;
            let boxes = client
                .list_mailboxes()
                .map_err(|e| imap_error(&account, "LIST", e))?;
            for mb in boxes
                .iter()
                .filter(|m| m.selectable && filter.wants(m.name.as_str()))
            {
                let sel = client
                    .examine(mb)
                    .map_err(|e| imap_error(&account, &format!("EXAMINE {}", mb.name), e))?;
                let listed = if sel.exists == 0 {
                    Vec::new()
                } else {
                    client
                        .list_messages(None)
                        .map_err(|e| imap_error(&account, &format!("UID FETCH {}", mb.name), e))?
                };
                let entry = out.entry(mb.name.to_string()).or_default();
                for l in listed {
                    entry.push(ServerMessage {
                        identity: imap_identity(&ledger_key, &mb.name, sel.uidvalidity, l.uid),
                        label: format!("UIDVALIDITY {} UID {}", sel.uidvalidity, l.uid),
                    });
                }
            }
            let _ = client.logout();
        }
        Protocol::Pop3 => {
            let password = plan.password.read(&account)?;
            let (mut client, account) = crate::engine::pop3::connect(plan, &password)?;
            let mut warnings = Vec::new();
            let recorded_sha: HashMap<String, String> = rows
                .iter()
                .filter(|r| r.account == ledger_key)
                .map(|r| (r.identity.clone(), r.sha256.clone()))
                .collect();
            let listing = crate::engine::pop3::list(
                &mut client,
                &account,
                &ledger_key,
                &mut warnings,
                &recorded_sha,
            )?;
            let _ = client.quit();
            for w in warnings {
                eprintln!(
                    "{}",
                    crate::engine::report::one_line(&format!("mailkeep: warning: {w}"))
                );
            }
            let recorded: HashMap<String, Option<u64>> = rows
                .iter()
                .filter(|r| r.account == ledger_key)
                .map(|r| (r.identity.clone(), r.wire_size))
                .collect();
            let entry = out.entry("INBOX".to_string()).or_default();
            for m in listing {
                entry.push(ServerMessage {
                    identity: pop3_ledger_identity(&m.identity, m.octets, &recorded),
                    label: format!("UIDL {} (message {})", m.uidl, m.number),
                });
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------

/// A validated `verify`.
#[derive(Debug, Clone)]
pub struct VerifyPlan {
    pub archive: ArchiveArg,
    /// `--against SOURCE`.
    pub against: Option<ServerPlan>,
    /// `--folder`/`--exclude` for an IMAP `--against`.
    pub filter: FolderFilter,
    /// `--json`; `quiet`: print nothing when everything checks out.
    pub output: Output,
}

/// Checks the archive (everything but `--against`), filling `report`.
fn check_archive(plan: &VerifyPlan, report: &mut VerifyReport) -> Result<Vec<LedgerRow>> {
    let root = &plan.archive.path;
    let kind = plan.archive.kind.as_str();
    match kind {
        "maildir" | "mbox" => {}
        "zip" => return check_zip(root, report),
        _ => {
            return Err(Error::Usage(format!(
                "`{}`: verify checks mailkeep archives (maildir:, mbox:, zip:); {} `{kind}:` folder has no ledger to check against (list it with `mailkeep list`)",
                plan.archive.spec(),
                if kind == "eml" { "an" } else { "a" }
            )))
        }
    }
    if !root.is_dir() {
        return Err(Error::archive(
            root,
            if root.exists() {
                "is not a directory"
            } else {
                "does not exist"
            },
        ));
    }
    let recorded_kind = crate::core::endpoint::recorded_kind(root)?;
    if let Some(k) = recorded_kind {
        if k.as_str() != kind {
            return Err(Error::Usage(format!(
                "{} is a {} archive; write {}:{}",
                root.display(),
                k.as_str(),
                k.as_str(),
                root.display()
            )));
        }
    }
    let ledger = root.join(STATE_DIR).join("ledger.sqlite");
    let _lock = crate::archive::lock::ArchiveLock::acquire_shared(root)?;
    let (rows, lengths) = if ledger.is_file() {
        read_ledger(&ledger)?
    } else if recorded_kind.is_some() {
        // A first run that died before its ledger existed.
        (Vec::new(), Vec::new())
    } else {
        return Err(Error::Usage(format!(
            "{} is not a mailkeep archive (no {STATE_DIR}/ledger.sqlite): nothing to verify against",
            root.display()
        )));
    };
    if ledger.is_file() {
        let (schema, unverified) = ledger_trust(&ledger)?;
        if schema > crate::archive::ledger::SCHEMA_VERSION {
            // Fields this mailkeep does not know may say what it cannot check: refuse.
            report.push(Problem::new(
                Kind::Unreadable,
                Some(ledger.display().to_string()),
                format!(
                    "ledger schema version {schema} is newer than this mailkeep understands ({}): upgrade mailkeep to verify this archive",
                    crate::archive::ledger::SCHEMA_VERSION
                ),
            ));
            return Ok(Vec::new());
        }
        if unverified > 0 {
            report.push(Problem::new(
                Kind::Unverified,
                Some(ledger.display().to_string()),
                format!(
                    "{unverified} record(s) were adopted without comparing their bytes with the server (a lost or older ledger, an interrupted run, a converted archive); prune and --delete-after-backup compare them with the server before deleting anything"
                ),
            ));
        }
    }
    report.records = rows.len() as u64;
    if kind == "maildir" {
        check_maildir(root, &rows, report)?;
    } else {
        check_mbox(root, &rows, &lengths, report)?;
    }
    Ok(rows)
}

/// Runs `verify`; prints the report (table or JSON) on stdout and returns the exit status.
pub fn run(plan: &VerifyPlan) -> Exit {
    let mut report = VerifyReport::new(plan.archive.spec());
    match check_archive(plan, &mut report) {
        // Nothing was checked: the error alone (and the JSON object with `--json`).
        Err(e) if !plan.output.json => {
            eprintln!(
                "{}",
                crate::engine::report::one_line(&format!("mailkeep: {e}"))
            );
            return e.exit();
        }
        Err(e) => {
            report.error = Some(e.to_string());
            report.exit = e.exit();
        }
        Ok(rows) => {
            if let Some(server) = &plan.against {
                match list_server(server, &plan.filter, &rows) {
                    Ok(listing) => {
                        let key = server.spec.ledger_key();
                        let archived: Vec<(&str, &str)> = rows
                            .iter()
                            .filter(|r| r.account == key)
                            .map(|r| (r.mailbox.as_str(), r.identity.as_str()))
                            .collect();
                        if archived.is_empty() && !rows.is_empty() {
                            eprintln!(
                                "mailkeep: warning: the archive holds no message of {key}; was it backed up under another user or host name?"
                            );
                        }
                        let bad: HashSet<String> = report
                            .problems
                            .iter()
                            .filter_map(|p| p.identity.clone())
                            .collect();
                        let (mailboxes, missing) = compare(&listing, &archived, &bad);
                        for m in missing.iter().filter(|m| !m.recorded) {
                            let mut p = Problem::new(
                                Kind::MissingFromArchive,
                                None,
                                format!("{} is on the server, not in the archive", m.message),
                            );
                            p.mailbox = Some(m.mailbox.clone());
                            p.identity = Some(m.identity.clone());
                            report.push(p);
                        }
                        report.against = Some(Against {
                            source: server.spec.account(),
                            account: key,
                            mailboxes,
                            missing_from_archive: missing,
                        });
                        report.exit = exit_for(&report.problems);
                    }
                    Err(e) => {
                        report.error = Some(e.to_string());
                        report.exit = e.exit();
                    }
                }
            } else {
                report.exit = exit_for(&report.problems);
            }
        }
    }
    report.exit_code = report.exit.code();
    print(&report, plan.output);
    report.exit
}

fn print(report: &VerifyReport, output: Output) {
    if let Some(e) = &report.error {
        eprintln!(
            "{}",
            crate::engine::report::one_line(&format!("mailkeep: {e}"))
        );
    }
    let mut p = Printer::new();
    if output.json {
        p.line(&serde_json::to_string(report).expect("a report is plain data"));
        p.finish();
        return;
    }
    if output.quiet && report.exit == Exit::Ok {
        return;
    }
    for problem in report.problems.iter().chain(&report.notes) {
        p.line(&problem.line());
    }
    if let Some(a) = &report.against {
        let cols = a
            .mailboxes
            .iter()
            .map(|m| super::width(&m.mailbox))
            .max()
            .unwrap_or(0)
            .max(super::width("MAILBOX"));
        p.line(&format!(
            "{}  {:>9}  {:>10}  {:>20}  {:>15}",
            super::pad_to_width("MAILBOX", cols),
            "ON SERVER",
            "IN ARCHIVE",
            "MISSING FROM ARCHIVE",
            "ONLY IN ARCHIVE"
        ));
        for m in &a.mailboxes {
            p.line(&format!(
                "{}  {:>9}  {:>10}  {:>20}  {:>15}",
                super::pad_to_width(&m.mailbox, cols),
                m.on_server,
                m.in_archive,
                m.missing_from_archive,
                m.only_in_archive
            ));
        }
        for m in &a.missing_from_archive {
            p.line(&format!(
                "missing from archive: {} {}{}",
                m.mailbox,
                m.message,
                if m.recorded {
                    " (recorded, but its archived copy is missing or damaged)"
                } else {
                    ""
                }
            ));
        }
    }
    p.line(&report.summary());
    p.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, location: &str, sha: &str) -> LedgerRow {
        LedgerRow {
            account: "pop3:a@h".into(),
            mailbox: "INBOX".into(),
            identity: format!("pop3:a@h UIDL {id}"),
            size: 10,
            wire_size: Some(12),
            sha256: sha.into(),
            location: location.into(),
        }
    }

    fn kinds(problems: &[Problem]) -> Vec<(Kind, Option<&str>, Option<&str>)> {
        problems
            .iter()
            .map(|p| (p.kind, p.path.as_deref(), p.identity.as_deref()))
            .collect()
    }

    #[test]
    fn exit_is_the_worst_class() {
        let p = |k| Problem::new(k, None, "");
        assert_eq!(exit_for(&[]), Exit::Ok);
        assert_eq!(exit_for(&[p(Kind::Untracked), p(Kind::Moved)]), Exit::Ok);
        assert_eq!(
            exit_for(&[p(Kind::Untracked), p(Kind::TmpLeftover)]),
            Exit::Incomplete
        );
        assert_eq!(
            exit_for(&[p(Kind::Missing), p(Kind::Sha256Mismatch), p(Kind::Missing)]),
            Exit::Damaged
        );
        assert_eq!(exit_for(&[p(Kind::MissingFromArchive)]), Exit::Incomplete);
        assert_eq!(exit_for(&[p(Kind::Truncated)]), Exit::Damaged);
        assert_eq!(exit_for(&[p(Kind::Zip)]), Exit::Damaged);
    }

    #[test]
    fn maildir_records_are_intact_missing_or_damaged() {
        let rows = [
            row("1", "cur/1.M1P0.mailkeep,S=10", "aa"),
            row("2", "cur/2.M2P0.mailkeep,S=10", "bb"),
            row("3", ".Sent/cur/3.M3P0.mailkeep,S=10", "cc"),
            row("4", "cur/4.M4P0.mailkeep,S=10", "dd"),
            row("5", "cur/5.M5P0.mailkeep,S=10", "ee"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let found = HashMap::from([
            (
                rows[0].location.clone(),
                Found::Files(vec![(
                    "/a/cur/1.M1P0.mailkeep,S=10:2,S".into(),
                    Ok("aa".into()),
                )]),
            ),
            (rows[1].location.clone(), Found::Missing),
            (
                rows[2].location.clone(),
                Found::Files(vec![("/a/.Sent/cur/3:2,".into(), Ok("xx".into()))]),
            ),
            (
                rows[3].location.clone(),
                Found::Files(vec![("/a/cur/4".into(), Err("permission denied".into()))]),
            ),
            // Two files with the base name (one in new/, one in cur/): one intact is enough.
            (
                rows[4].location.clone(),
                Found::Files(vec![
                    ("/a/new/5".into(), Ok("zz".into())),
                    ("/a/cur/5:2,S".into(), Ok("ee".into())),
                ]),
            ),
        ]);
        let (intact, problems) = classify_maildir(&refs, &found, &|l| format!("/a/{l}"));
        assert_eq!(intact, 2);
        assert_eq!(
            kinds(&problems),
            vec![
                (
                    Kind::Missing,
                    Some("/a/cur/2.M2P0.mailkeep,S=10"),
                    Some("pop3:a@h UIDL 2")
                ),
                (
                    Kind::Sha256Mismatch,
                    Some("/a/.Sent/cur/3:2,"),
                    Some("pop3:a@h UIDL 3")
                ),
                (Kind::Unreadable, Some("/a/cur/4"), Some("pop3:a@h UIDL 4")),
            ]
        );
        assert!(problems[1]
            .detail
            .contains("SHA-256 xx, the ledger recorded cc"));
        assert_eq!(exit_for(&problems), Exit::Damaged);
        assert_eq!(
            problems[0].line(),
            "incomplete: /a/cur/2.M2P0.mailkeep,S=10 (pop3:a@h UIDL 2): the message file is gone (no file of that name in cur/ or new/)"
        );
    }

    #[test]
    fn maildir_locations() {
        assert_eq!(
            maildir_location(".Sent/cur/1.M0P0.mailkeep,S=5"),
            Some((".Sent", "1.M0P0.mailkeep,S=5"))
        );
        assert_eq!(maildir_location("cur/1.x:2,S"), Some(("", "1.x")));
        assert_eq!(maildir_location("a/new/1"), Some(("a", "1")));
        assert_eq!(maildir_location("a/tmp/1"), None);
        assert_eq!(maildir_location("x"), None);
    }

    fn entry(offset: u64, sha: &str) -> MboxEntry {
        MboxEntry {
            offset,
            sha256: sha.into(),
        }
    }

    fn lengths(committed: u64, pending: Option<u64>) -> MboxFileRow {
        MboxFileRow {
            file: "INBOX.mbox".into(),
            committed,
            pending,
        }
    }

    #[test]
    fn mbox_all_intact() {
        let rows = [
            row("1", "INBOX.mbox:0:100", "aa"),
            row("2", "INBOX.mbox:100:50", "bb"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let scan = MboxScan {
            entries: vec![entry(0, "aa"), entry(100, "bb")],
            len: 150,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(150, None)),
        );
        assert_eq!((intact, out), (2, vec![]));
    }

    #[test]
    fn mbox_truncated_in_the_middle_of_a_message() {
        // Three entries; the file was cut inside the second.
        let rows = [
            row("1", "INBOX.mbox:0:100", "aa"),
            row("2", "INBOX.mbox:100:50", "bb"),
            row("3", "INBOX.mbox:150:50", "cc"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let scan = MboxScan {
            entries: vec![entry(0, "aa"), entry(100, "b-cut")],
            len: 120,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(200, None)),
        );
        assert_eq!(intact, 1);
        assert_eq!(
            kinds(&out),
            vec![
                (Kind::Truncated, Some("/m/INBOX.mbox"), None),
                (
                    Kind::Truncated,
                    Some("/m/INBOX.mbox:100"),
                    Some("pop3:a@h UIDL 2")
                ),
                (
                    Kind::Missing,
                    Some("/m/INBOX.mbox:150"),
                    Some("pop3:a@h UIDL 3")
                ),
            ]
        );
        assert!(out[0].detail.contains("120 bytes, the ledger recorded 200"));
        assert_eq!(exit_for(&out), Exit::Damaged);
    }

    #[test]
    fn mbox_changed_bytes_moved_entries_and_strangers() {
        let rows = [
            row("1", "INBOX.mbox:0:100", "aa"),
            row("2", "INBOX.mbox:100:50", "bb"),
            row("3", "INBOX.mbox:150:50", "cc"),
            row("4", "INBOX.mbox:200:50", "dd"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        // Entry 1 had a byte flipped; entry 2 was deleted by a mail reader, so 3 moved up to
        // 100 and 4 to 150; someone appended an entry at 200.
        let scan = MboxScan {
            entries: vec![
                entry(0, "a!"),
                entry(100, "cc"),
                entry(150, "dd"),
                entry(200, "ff"),
            ],
            len: 250,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(250, None)),
        );
        assert_eq!(intact, 2);
        assert_eq!(
            kinds(&out),
            vec![
                (
                    Kind::Moved,
                    Some("/m/INBOX.mbox:100"),
                    Some("pop3:a@h UIDL 3")
                ),
                (
                    Kind::Moved,
                    Some("/m/INBOX.mbox:150"),
                    Some("pop3:a@h UIDL 4")
                ),
                (
                    Kind::Sha256Mismatch,
                    Some("/m/INBOX.mbox:0"),
                    Some("pop3:a@h UIDL 1")
                ),
                (
                    Kind::Missing,
                    Some("/m/INBOX.mbox:100"),
                    Some("pop3:a@h UIDL 2")
                ),
                (Kind::Untracked, Some("/m/INBOX.mbox:200"), None),
            ]
        );
    }

    #[test]
    fn mbox_gone_unparsable_or_interrupted() {
        let rows = [row("1", "INBOX.mbox:0:100", "aa")];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let (intact, out) = classify_mbox("/m/INBOX.mbox", &refs, None, Some(&lengths(100, None)));
        assert_eq!(intact, 0);
        assert_eq!(
            kinds(&out),
            vec![(
                Kind::Missing,
                Some("/m/INBOX.mbox"),
                Some("pop3:a@h UIDL 1")
            )]
        );

        let scan = MboxScan {
            entries: vec![],
            len: 100,
            error: Some("not an mbox: first line is not a From line".into()),
        };
        let (_, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(100, None)),
        );
        assert_eq!(
            kinds(&out),
            vec![
                (Kind::Unreadable, Some("/m/INBOX.mbox"), None),
                (
                    Kind::Unreadable,
                    Some("/m/INBOX.mbox:0"),
                    Some("pop3:a@h UIDL 1")
                ),
            ]
        );

        // A run died after appending an entry at 100 it never recorded.
        let scan = MboxScan {
            entries: vec![entry(0, "aa"), entry(100, "new")],
            len: 160,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(100, Some(100))),
        );
        assert_eq!(intact, 1);
        assert_eq!(
            kinds(&out),
            vec![(Kind::InterruptedAppend, Some("/m/INBOX.mbox"), None)]
        );
        assert_eq!(exit_for(&out), Exit::Incomplete);
    }

    #[test]
    fn mbox_dedup_shares_one_entry() {
        let mut a = row("1", "INBOX.mbox:0:100", "aa");
        a.mailbox = "INBOX".into();
        let mut b = row("2", "INBOX.mbox:0:100", "aa");
        b.mailbox = "All".into();
        let scan = MboxScan {
            entries: vec![entry(0, "aa")],
            len: 100,
            error: None,
        };
        let (intact, out) = classify_mbox("/m/INBOX.mbox", &[&a, &b], Some(&scan), None);
        assert_eq!((intact, out.len()), (2, 0));
    }

    fn msgs(ids: &[&str]) -> Vec<ServerMessage> {
        ids.iter()
            .map(|i| ServerMessage {
                identity: i.to_string(),
                label: format!("UID {i}"),
            })
            .collect()
    }

    #[test]
    fn comparing_with_the_server() {
        let server = BTreeMap::from([
            ("INBOX".to_string(), msgs(&["i1", "i2", "i3", "i4"])),
            ("Sent".to_string(), msgs(&["s1"])),
            ("New".to_string(), msgs(&["n1"])),
        ]);
        let archived = [
            ("INBOX", "i1"),
            ("INBOX", "i2"),
            ("INBOX", "i3"),
            ("INBOX", "old"),
            ("Sent", "s1"),
            ("Gone", "g1"),
        ];
        let bad = HashSet::from(["i2".to_string()]);
        let (rows, missing) = compare(&server, &archived, &bad);
        let table: Vec<(&str, u64, u64, u64, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r.mailbox.as_str(),
                    r.on_server,
                    r.in_archive,
                    r.missing_from_archive,
                    r.only_in_archive,
                )
            })
            .collect();
        assert_eq!(
            table,
            vec![
                ("Gone", 0, 1, 0, 1),
                ("INBOX", 4, 4, 2, 1),
                ("New", 1, 0, 1, 0),
                ("Sent", 1, 1, 0, 0),
            ]
        );
        let m: Vec<(&str, &str, bool)> = missing
            .iter()
            .map(|m| (m.mailbox.as_str(), m.identity.as_str(), m.recorded))
            .collect();
        assert_eq!(
            m,
            vec![
                ("INBOX", "i2", true),
                ("INBOX", "i4", false),
                ("New", "n1", false)
            ]
        );
    }

    #[test]
    fn pop3_identities_follow_reused_uidls() {
        let recorded = HashMap::from([
            ("k UIDL a".to_string(), Some(100)),
            ("k UIDL b".to_string(), None),
        ]);
        assert_eq!(pop3_ledger_identity("k UIDL a", 100, &recorded), "k UIDL a");
        assert_eq!(
            pop3_ledger_identity("k UIDL a", 120, &recorded),
            "k UIDL a SIZE 120"
        );
        assert_eq!(pop3_ledger_identity("k UIDL a", 0, &recorded), "k UIDL a");
        assert_eq!(pop3_ledger_identity("k UIDL b", 7, &recorded), "k UIDL b");
        assert_eq!(pop3_ledger_identity("k UIDL c", 7, &recorded), "k UIDL c");
    }

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

    #[test]
    fn summary_line() {
        let mut r = VerifyReport::new("maildir:/a".into());
        r.records = 3;
        r.intact = 1;
        r.push(Problem::new(Kind::Missing, None, ""));
        r.push(Problem::new(Kind::Sha256Mismatch, None, ""));
        r.push(Problem::new(Kind::Untracked, None, ""));
        r.exit = exit_for(&r.problems);
        r.exit_code = r.exit.code();
        assert_eq!(
            r.summary(),
            "verify maildir:/a: 3 messages recorded, 1 intact, 1 missing, 1 with another SHA-256, 1 not in the ledger -> damaged (exit 9)"
        );
        assert_eq!((r.problems.len(), r.notes.len()), (2, 1));
    }
}
