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
//! functions of what the ledger says and what was found, tested case by case beside them.
//!
//! The checks live by archive kind: [`maildir`], [`mbox`], [`zip`]; the ledger is read by
//! [`ledger`], the server listed and compared by [`server`]. This file holds the report
//! (findings, their classes, the exit status), the plan, and [`run`], which dispatches on the
//! archive kind.

mod ledger;
mod maildir;
mod mbox;
mod server;
mod zip;

use std::collections::HashSet;

pub use ledger::{LedgerRow, MboxFileRow};
pub use maildir::{classify_maildir, Found};
pub use mbox::{classify_mbox, MboxEntry, MboxScan};
pub use server::{compare, pop3_ledger_identity, ServerMessage};
pub use zip::zip_ledger_rows;

use super::ArchiveArg;
use crate::archive::STATE_DIR;
use crate::core::error::{Error, Exit, Result};
use crate::engine::plan::FolderFilter;
use crate::engine::plans::{Output, ServerPlan};

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
    /// Warnings to say before the report (what the POP3 listing noticed, an account the
    /// archive holds no message of); not part of the JSON object.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// True when the archive could not be checked at all (`error` says why): the report is
    /// then the error alone, or the JSON object with `--json`.
    #[serde(skip)]
    pub unchecked: bool,
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
            warnings: Vec::new(),
            unchecked: false,
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
        "zip" => return self::zip::check_zip(root, report),
        _ => {
            return Err(Error::Usage(format!(
                "`{}`: verify checks mailkeep archives (maildir:, mbox:, zip:); {} `{kind}:` folder has no ledger to check against (list it with `mailkeep list`)",
                plan.archive.spec(),
                if kind == "eml" { "an" } else { "a" }
            )))
        }
    }
    if root.is_file() {
        // One mbox file (a Google Takeout export, a mailbox from another program): no
        // ledger to check it against, and nothing damaged.
        return Err(Error::Usage(format!(
            "{} is a file, not a mailkeep archive (a folder holding mailkeep/ledger.sqlite): nothing to verify against (`mailkeep list '{}'` reads it)",
            root.display(),
            plan.archive.spec()
        )));
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
        ledger::read_ledger(&ledger)?
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
        let (schema, unverified) = ledger::ledger_trust(&ledger)?;
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
        maildir::check_maildir(root, &rows, report)?;
    } else {
        mbox::check_mbox(root, &rows, &lengths, report)?;
    }
    Ok(rows)
}

/// Runs `verify`: checks the archive and, with `--against`, compares it with the server.
/// Returns the report; its `exit` is the status (printing it is the caller's:
/// `cli::render::print_verify`).
pub fn run(plan: &VerifyPlan) -> VerifyReport {
    let mut report = VerifyReport::new(plan.archive.spec());
    match check_archive(plan, &mut report) {
        // Nothing was checked: the error alone (and the JSON object with `--json`).
        Err(e) => {
            report.error = Some(e.to_string());
            report.exit = e.exit();
            report.unchecked = true;
        }
        Ok(rows) => {
            if let Some(server) = &plan.against {
                match server::list_server(server, &plan.filter, &rows, &mut report.warnings) {
                    Ok(listing) => {
                        let key = server.spec.ledger_key();
                        let archived: Vec<(&str, &str)> = rows
                            .iter()
                            .filter(|r| r.account == key)
                            .map(|r| (r.mailbox.as_str(), r.identity.as_str()))
                            .collect();
                        if archived.is_empty() && !rows.is_empty() {
                            report.warnings.push(format!(
                                "the archive holds no message of {key}; was it backed up under another user or host name?"
                            ));
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
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn row(id: &str, location: &str, sha: &str) -> LedgerRow {
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

    pub(super) fn kinds(problems: &[Problem]) -> Vec<(Kind, Option<&str>, Option<&str>)> {
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
