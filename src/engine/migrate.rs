//! `migrate`: copy a POP3 or IMAP account into an IMAP account (issue 4), never twice.
//!
//! A migration is a restore whose source is a server ([`crate::engine::server_source`]): the same
//! engine ([`super::restore::restore_with`]) maps the mailboxes, looks for what the target
//! already holds, appends the rest with flags, keywords and INTERNALDATE, and records every
//! upload in the uploads ledger with the message's source identity (POP3: account + UIDL;
//! IMAP: account, mailbox, UIDVALIDITY, UID). A rerun lists the source and fetches only the
//! messages without a record, so it appends 0 when nothing is new; without the ledger the
//! target lookup (size + Message-ID, or content) still finds every message.
//!
//! Before anything is read, both secrets are read (so a prompt for the target does not wait
//! for a long `--via` backup) and the target login is tried. Errors say which side they are
//! about and name that side's options (`--source-password-env`, `--target-tls-ca`).
//!
//! With `--via ARCHIVE` the run is a `backup` of the source into the archive (complete with its
//! own ledger, as `mailkeep backup` makes it) followed by a restore of that archive; uploads are
//! then recorded with the archive's identities, which are the same source identities. Only the
//! source account's messages are restored ([`OwnMessages`]): an archive may hold other
//! accounts' backups, or folders this run did not choose.
//!
//! `--delete-after-migrate` (POP3 only) then opens a new POP3 session and deletes (DELE, QUIT)
//! exactly the listed messages the target holds: those whose identity an upload record names
//! with a target message that no other source message's record names first, or whose content
//! the target holds in enough copies ([`confirmed_sources`], [`held_on_target`]). Nothing is
//! deleted when any part of the run failed (the same rule as `backup --delete-after-backup`),
//! nor in a dry run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::imap::imap_error;
use super::pop3::{connect as pop3_connect, pop3_error};
use super::restore;
use crate::archive::reader::{ArchiveSource, ArchivedMessage, SourceCounts};
use crate::core::credentials::{Password, PasswordSource};
use crate::core::error::{Error, Exit, Result};
use crate::core::message::{normalize, MailboxName};
use crate::engine::plans::{BackupPlan, DeletePolicy, ImapChoices, MigrateFrom, MigratePlan};
use crate::engine::report::{RestoreReport, RunReport};
use crate::protocol::imap::ImapError;

/// What a migration did. Sizes in bytes, durations in seconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MigrateReport {
    /// `migrate`.
    pub command: String,
    /// The source account (`alice@pop.example.com:995`).
    pub source: String,
    /// The target account (`alice@imap.example.com:993`).
    pub target: String,
    /// `--via`: the archive (`maildir:/home/alice/Mail/pop`).
    pub via: Option<String>,
    /// `--via`: the backup into the archive.
    pub backup: Option<RunReport>,
    /// The upload to the target (its `archive` is the source account, or the `--via` archive).
    pub upload: RestoreReport,
    /// `--delete-after-migrate`: messages deleted from the source.
    pub deleted_at_source: u64,
    /// `--delete-after-migrate`: why nothing (or not everything) was deleted, when so.
    pub deletion_note: Option<String>,
    pub exit: Exit,
    pub exit_code: u8,
}

/// Runs a migration as planned and returns its report, printing nothing (`mailkeep run`
/// prints it its own way).
pub fn run(plan: &MigratePlan) -> MigrateReport {
    let mut report = MigrateReport {
        command: "migrate".into(),
        source: plan.source.spec.account(),
        target: plan.restore.target.spec.account(),
        via: plan.via.as_ref().map(|v| plan_archive(plan, v)),
        ..MigrateReport::default()
    };
    // Both secrets once, before anything else (a password command or prompt is not repeated
    // per connection, and the target's prompt does not wait for a long `--via` backup)...
    let secret = match super::imap::read_secret(&plan.source) {
        Ok(s) => s,
        Err(e) => return failed(report, plan, sided(e, Side::Source, &plan.source)),
    };
    let target_secret = match super::imap::read_secret(&plan.restore.target) {
        Ok(s) => s,
        Err(e) => return failed(report, plan, sided(e, Side::Target, &plan.restore.target)),
    };
    // ...and the target's login checked before the source is read: a wrong target password
    // is found before a long backup, not after it.
    match super::imap::connect(&plan.restore.target, &target_secret) {
        Ok(client) => {
            let _ = client.logout();
        }
        Err(e) => return failed(report, plan, sided(e, Side::Target, &plan.restore.target)),
    }
    let mut rplan = plan.restore.clone();
    known_secret(&mut rplan.target, &target_secret);

    if let (Some(via), false) = (&plan.via, plan.restore.dry_run) {
        let mut source = plan.source.clone();
        known_secret(&mut source, &secret);
        let bplan = BackupPlan {
            source,
            archive: via.clone(),
            delete: DeletePolicy::Never,
            imap: ImapChoices {
                filter: plan.filter.clone(),
                filtered: plan.filtered,
                mirror: false,
                dedup: false,
                jobs: plan.restore.jobs.max(1),
                gmail_folders: false,
                gmail_spam_trash: false,
            },
            output: plan.restore.output,
        };
        let mut progress = crate::engine::progress::Progress::new(false);
        let mut b = super::backup(&bplan, &mut progress);
        b.error = b.error.map(|e| sided_text(&e, Side::Source, &plan.source));
        let stop = !matches!(b.exit, Exit::Ok | Exit::Partial);
        report.backup = Some(b);
        if stop {
            let b = report.backup.as_ref().expect("set above");
            report.exit = b.exit;
            report.exit_code = b.exit.code();
            report.upload.command = "migrate".into();
            return report;
        }
    }

    let left_out = Arc::new(LeftOut::default());
    let mut upload = match &plan.via {
        Some(via) if !plan.restore.dry_run => {
            let spec = plan_archive(plan, via);
            let own = own_mailboxes(plan, report.backup.as_ref());
            let prefix = format!("{} ", plan.source.spec.ledger_key());
            restore::restore_with(&rplan, "migrate", &|| {
                Ok(Box::new(OwnMessages {
                    inner: crate::archive::reader::open(&spec)?,
                    prefix: prefix.clone(),
                    mailboxes: own.clone(),
                    left_out: Arc::clone(&left_out),
                }) as Box<dyn ArchiveSource + Send>)
            })
        }
        _ => {
            let opener = || {
                crate::engine::server_source::open(&plan.source, &secret, &plan.filter, plan.seen)
                    .map_err(|e| sided(e, Side::Source, &plan.source))
            };
            restore::restore_with(&rplan, "migrate", &opener)
        }
    };
    // Errors met on the way (a lost connection, a mailbox the source cannot open) say which
    // side they are about, like those at login.
    let target = &plan.restore.target;
    upload.error = upload.error.map(|e| {
        let e = sided_text(&e, Side::Target, target);
        sided_text(&e, Side::Source, &plan.source)
    });
    for f in &mut upload.failures {
        f.error = sided_text(&f.error, Side::Target, target);
    }
    if let Some(w) = left_out.warning(plan) {
        upload.warnings.push(w);
    }
    if upload.error.is_none() {
        upload.warnings.extend(unused_maps(plan, &upload));
    }
    let upload_failed = upload.error.is_some() || !upload.failures.is_empty();
    report.exit = upload.exit;
    report.upload = upload;
    if let Some(b) = &report.backup {
        if b.exit == Exit::Partial && report.exit == Exit::Ok {
            report.exit = Exit::Partial;
        }
    }

    if plan.delete_after && plan.from == MigrateFrom::Pop3 {
        let backup_failed = report
            .backup
            .as_ref()
            .is_some_and(|b| b.error.is_some() || !b.failures.is_empty());
        if plan.restore.dry_run {
            report.deletion_note = Some("dry run: nothing deleted from the source".into());
        } else if upload_failed || backup_failed {
            let failed = report.upload.failed
                + report
                    .backup
                    .as_ref()
                    .map_or(0, |b| b.failures.len() as u64);
            report.deletion_note = Some(if failed > 0 {
                format!(
                    "nothing deleted from the source: {failed} message(s) could not be copied (listed above); deal with them (a message the target refuses as too big stays refused), then run again"
                )
            } else {
                "nothing deleted from the source because the run stopped early (above); run again when it goes through".into()
            });
        } else {
            match delete_confirmed(plan, &secret, &target_secret) {
                Ok(Deleted {
                    deleted,
                    kept,
                    notes,
                }) => {
                    report.deleted_at_source = deleted;
                    let mut lines = notes;
                    if !kept.is_empty() {
                        lines.push(kept_note(&kept));
                    }
                    if !lines.is_empty() {
                        report.deletion_note = Some(lines.join("; "));
                        report.exit = report.exit.max(Exit::Partial);
                    }
                }
                Err(e) => {
                    report.deletion_note = Some(e.to_string());
                    report.exit = e.exit();
                }
            }
        }
    }
    report.exit_code = report.exit.code();
    report
}

/// Replaces the password (or OAuth2 token) source of `plan` by `secret`, read earlier.
fn known_secret(plan: &mut crate::engine::plans::ServerPlan, secret: &Password) {
    if plan.oauth2_token.is_some() {
        plan.oauth2_token = Some(PasswordSource::Known(secret.clone()));
    } else {
        plan.password = PasswordSource::Known(secret.clone());
    }
}

/// Which side of the migration an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Target,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    /// `backup`'s option names in `text` as this side's (`--tls-ca` as `--target-tls-ca`).
    fn options(self, text: &str) -> String {
        let mut out = text.to_string();
        for opt in [
            "password-env",
            "password-command",
            "password-file",
            "oauth2-token-command",
            "tls-ca",
            "tls-fingerprint",
            "allow-plaintext",
            "auth ",
        ] {
            out = out.replace(&format!("--{opt}"), &format!("--{}-{opt}", self.name()));
        }
        out
    }
}

/// An error about one side's server, saying which side it is and naming that side's options
/// (`--source-password-env`, `--target-tls-ca`), with what to check after a refused login.
fn sided(e: Error, side: Side, plan: &crate::engine::plans::ServerPlan) -> Error {
    let s = side.name();
    match e {
        Error::Auth { account, detail } => Error::Auth {
            account: format!("{s} account {account}"),
            detail: format!(
                "{detail} (check the user name in {} and {})",
                s.to_uppercase(),
                password_hint(plan, side)
            ),
        },
        Error::PlaintextRefused { account, detail } => Error::Network {
            account: format!("{s} {account}"),
            detail: format!(
                "refusing to log in without TLS: {detail} (use pop3s:// or imaps://, or pass --{s}-allow-plaintext on a trusted network)"
            ),
        },
        Error::Network { account, detail } => Error::Network {
            account: format!("{s} {account}"),
            detail: side.options(&detail),
        },
        Error::Protocol { account, detail } => Error::Protocol {
            account: format!("{s} {account}"),
            detail,
        },
        Error::Usage(text) => Error::Usage(sided_text(&text, side, plan)),
        other => other,
    }
}

/// An error message (already text) about `account` on `side`, labelled as [`sided`] does;
/// text about something else is returned as it is.
fn sided_text(text: &str, side: Side, plan: &crate::engine::plans::ServerPlan) -> String {
    let s = side.name();
    let account = plan.spec.account();
    if let Some(rest) = text.strip_prefix(&format!("{account}:")) {
        return side.options(&format!("{s} {account}:{rest}"));
    }
    if let Some(rest) = text.strip_prefix(&format!("authentication failed for {account}:")) {
        return format!(
            "authentication failed for {s} account {account}:{rest} (check the user name in {} and {})",
            s.to_uppercase(),
            password_hint(plan, side)
        );
    }
    text.to_string()
}

/// Where the password that a server refused came from, for the error.
fn password_hint(plan: &crate::engine::plans::ServerPlan, side: Side) -> String {
    let s = side.name();
    if plan.oauth2_token.is_some() {
        return format!("the token from --{s}-oauth2-token-command");
    }
    match &plan.password {
        PasswordSource::Env(var) => format!("the password in ${var} (--{s}-password-env)"),
        PasswordSource::Command(_) => format!("the output of --{s}-password-command"),
        PasswordSource::File(f) => format!("the password in {} (--{s}-password-file)", f.display()),
        PasswordSource::Prompt => "the password you typed".into(),
        _ => "the password".into(),
    }
}

/// What `--via` left out of the upload: the archive's mailboxes and messages that are not the
/// source account's (another account's backup in the same archive, folders `--exclude`d).
#[derive(Default)]
struct LeftOut {
    mailboxes: AtomicU64,
    messages: AtomicU64,
}

impl LeftOut {
    fn warning(&self, plan: &MigratePlan) -> Option<String> {
        let (mailboxes, messages) = (
            self.mailboxes.load(Ordering::Relaxed),
            self.messages.load(Ordering::Relaxed),
        );
        if mailboxes == 0 && messages == 0 {
            return None;
        }
        let via = plan
            .via
            .as_ref()
            .map(|v| plan_archive(plan, v))
            .unwrap_or_default();
        Some(format!(
            "{via} also holds mail that is not from {} (other accounts, or folders not chosen): {mailboxes} mailbox(es) and {messages} message(s) were left out; upload them with `mailkeep restore` if you want them",
            plan.source.spec.account()
        ))
    }
}

/// The archive mailboxes a `--via` migration uploads: INBOX for POP3; for IMAP, the
/// mailboxes the backup just copied (those `--folder`/`--exclude` chose).
fn own_mailboxes(plan: &MigratePlan, backup: Option<&RunReport>) -> HashSet<String> {
    match plan.from {
        MigrateFrom::Pop3 => ["INBOX".to_string()].into_iter().collect(),
        MigrateFrom::Imap => backup
            .map(|b| b.mailboxes.iter().map(|m| m.mailbox.clone()).collect())
            .unwrap_or_default(),
    }
}

/// The `--via` archive as a source, limited to the source account's messages: those whose
/// identity (from the archive's ledger) is the source account's, in its mailboxes. An archive
/// may hold other accounts' backups too, and those do not belong in this target.
struct OwnMessages {
    inner: Box<dyn ArchiveSource + Send>,
    /// `<source ledger key> `: how every identity of the source account starts.
    prefix: String,
    mailboxes: HashSet<String>,
    left_out: Arc<LeftOut>,
}

impl ArchiveSource for OwnMessages {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        let (own, other): (Vec<MailboxName>, Vec<MailboxName>) = self
            .inner
            .mailboxes()?
            .into_iter()
            .partition(|m| self.mailboxes.contains(m.as_str()));
        self.left_out
            .mailboxes
            .store(other.len() as u64, Ordering::Relaxed);
        Ok(own)
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let mut other = 0u64;
        let prefix = self.prefix.as_str();
        let mut counts = self.inner.messages(mailbox, &mut |m| {
            if m.source_id
                .as_deref()
                .is_some_and(|id| id.starts_with(prefix))
            {
                f(m)
            } else {
                other += 1;
                Ok(())
            }
        })?;
        counts.read = counts.read.saturating_sub(other);
        self.left_out.messages.fetch_add(other, Ordering::Relaxed);
        Ok(counts)
    }

    fn skip_known(&mut self, known: &HashSet<String>) {
        self.inner.skip_known(known);
    }

    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }
}

/// Warnings for `--map SRC=DST` rules that no source mailbox matched (a typo would otherwise
/// go unnoticed: the mailbox it meant keeps its name).
fn unused_maps(plan: &MigratePlan, upload: &RestoreReport) -> Vec<String> {
    plan.restore
        .rules
        .maps
        .iter()
        .filter(|(from, _)| {
            let from = from.as_str();
            !upload.mailboxes.iter().any(|m| {
                m.mailbox == from
                    || m.mailbox
                        .strip_prefix(from)
                        .is_some_and(|r| r.starts_with('/'))
            })
        })
        .map(|(from, to)| {
            format!(
                "--map {from}={}: the source has no mailbox {from}, so this rule mapped nothing",
                to.join("/")
            )
        })
        .collect()
}

/// The archive of `--via` as a source spec (`maildir:/path`).
fn plan_archive(_plan: &MigratePlan, via: &crate::core::endpoint::ArchiveSpec) -> String {
    format!("{}:{}", via.kind.as_str(), via.path.display())
}

fn failed(mut report: MigrateReport, plan: &MigratePlan, e: Error) -> MigrateReport {
    report.upload.command = "migrate".into();
    report.upload.archive = report.source.clone();
    report.upload.target = report.target.clone();
    report.upload.dry_run = plan.restore.dry_run;
    report.upload.state_file = plan.restore.state_file.display().to_string();
    report.upload.error = Some(e.to_string());
    report.exit = e.exit();
    report.upload.exit = e.exit();
    report.upload.exit_code = e.exit().code();
    report.exit_code = e.exit().code();
    report
}

/// What `--delete-after-migrate` did: messages deleted, and the identities kept because the
/// target message their record names is already another source message's.
struct Deleted {
    deleted: u64,
    kept: Vec<String>,
    /// Why other messages were kept (the target lost copies; bytes that differ).
    notes: Vec<String>,
}

/// Deletes from the POP3 source the listed messages whose identity the uploads ledger shows
/// on the target ([`confirmed_sources`]); returns how many, and which were kept.
fn delete_confirmed(
    plan: &MigratePlan,
    secret: &Password,
    target_secret: &Password,
) -> Result<Deleted> {
    let rows = upload_rows(
        &plan.restore.state_file,
        &plan.restore.target.spec.target_key(),
    )?;
    // Only what the target holds now counts, not what was once recorded there (DESIGN.md
    // invariant 2): a copy expunged on the target since proves nothing.
    let recorded_sources: HashSet<String> = rows.iter().map(|r| r.source.clone()).collect();
    let rows = held_now(plan, target_secret, rows)
        .map_err(|e| sided(e, Side::Target, &plan.restore.target))?;
    // Sources whose every recorded copy is gone from the target.
    let held_sources: HashSet<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    let gone_sources: HashSet<String> = recorded_sources
        .into_iter()
        .filter(|s| !held_sources.contains(s.as_str()))
        .collect();
    let (mut confirmed, mut doubtful) = confirmed_sources(&rows);
    if !doubtful.is_empty() {
        let held = held_on_target(plan, target_secret, &rows, &confirmed, &doubtful)
            .map_err(|e| sided(e, Side::Target, &plan.restore.target))?;
        doubtful.retain(|s| !held.contains(s));
        confirmed.extend(held);
    }
    let source = |e| sided(e, Side::Source, &plan.source);
    let (mut client, account) = pop3_connect(&plan.source, secret).map_err(source)?;
    let mut warnings = Vec::new();
    // Identities by content (a repeated UIDL) are matched with what was uploaded before.
    let uploaded_sha: HashMap<String, String> = rows
        .iter()
        .map(|r| (r.source.clone(), r.sha256.clone()))
        .collect();
    let mut listed = super::pop3::list(
        &mut client,
        &account,
        &plan.source.spec.ledger_key(),
        &mut warnings,
        &uploaded_sha,
    )
    .map_err(source)?;
    listed.retain(|m| m.refused.is_none());
    let mut doomed = doomed(&listed, &confirmed);
    // The source's bytes, read again, must be content the target holds: a UIDL the server
    // reused, or a `--via` archive copy adopted damaged, is never taken for the message.
    let by_number: HashMap<u32, &super::pop3::Listed> =
        listed.iter().map(|m| (m.number, m)).collect();
    let doomed_listed: Vec<super::pop3::Listed> =
        doomed.iter().map(|n| by_number[n].clone()).collect();
    let now_sha =
        super::pop3::server_sha256(&mut client, &account, &doomed_listed).map_err(source)?;
    let mut unlike = Vec::new();
    doomed.retain(|n| {
        let m = by_number[n];
        let sized = format!("{} SIZE {}", m.identity, m.octets);
        let same = now_sha.get(n).is_some_and(|sha| {
            rows.iter()
                .any(|r| (r.source == m.identity || r.source == sized) && r.sha256 == *sha)
        });
        if !same {
            unlike.push(format!("message {} (UIDL {})", m.number, m.uidl));
        }
        same
    });
    let mut notes = Vec::new();
    if !unlike.is_empty() {
        notes.push(format!(
            "kept {} message(s) on the source whose bytes are not what the target holds for them (first: {}): the server reused a UIDL, or an archived copy was damaged; run the migration again to copy them",
            unlike.len(),
            unlike[0]
        ));
    }
    let gone = listed
        .iter()
        .filter(|m| {
            gone_sources.contains(&m.identity)
                || gone_sources.contains(&format!("{} SIZE {}", m.identity, m.octets))
        })
        .count();
    if gone > 0 {
        notes.push(format!(
            "kept {gone} message(s) on the source whose copies on the target are gone (expunged there, or its mailbox recreated): the next run copies them again"
        ));
    }
    let gone: HashSet<u32> = doomed.iter().copied().collect();
    let kept: Vec<String> = listed
        .iter()
        .filter(|m| !gone.contains(&m.number))
        .filter(|m| {
            doubtful.contains(&m.identity)
                || doubtful.contains(&format!("{} SIZE {}", m.identity, m.octets))
        })
        .map(|m| format!("message {} (UIDL {})", m.number, m.uidl))
        .collect();
    if doomed.is_empty() {
        let _ = client.quit();
        return Ok(Deleted {
            deleted: 0,
            kept,
            notes,
        });
    }
    client
        .dele(&doomed)
        .map_err(|e| source(pop3_error(&account, "DELE", e)))?;
    client
        .quit()
        .map_err(|e| source(pop3_error(&account, "QUIT (the deletions)", e)))?;
    Ok(Deleted {
        deleted: doomed.len() as u64,
        kept,
        notes,
    })
}

/// The note for messages `--delete-after-migrate` kept on the source (see [`confirmed_sources`]).
fn kept_note(kept: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut list = kept
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if kept.len() > SHOWN {
        list.push_str(&format!(" and {} more", kept.len() - SHOWN));
    }
    format!(
        "kept {} message(s) on the source: {list}: the target holds fewer copies of these messages than the source has identical ones (they were taken for copies that other source messages account for); delete them by hand if one copy is enough",
        kept.len()
    )
}

/// One upload record with a source identity, as `--delete-after-migrate` checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UploadRow {
    source: String,
    /// The target mailbox's wire name.
    mailbox: String,
    sha256: String,
    uidvalidity: Option<u32>,
    uid: Option<u32>,
}

/// The upload records with a source identity into the target account `target` (ledger key),
/// oldest first. Empty when nothing was recorded.
///
/// Errors: [`Error::Archive`] when the state file cannot be read.
fn upload_rows(state_file: &std::path::Path, target: &str) -> Result<Vec<UploadRow>> {
    if !state_file.exists() {
        return Ok(Vec::new());
    }
    let err = |e: rusqlite::Error| Error::archive(state_file, e.to_string());
    let conn = rusqlite::Connection::open_with_flags(
        state_file,
        // Read and write, though it only reads: as the last connection it closes the WAL and
        // removes `-wal` and `-shm`, as the run's own connections do (a read-only one cannot).
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    let mut st = match conn.prepare(
        "SELECT source, mailbox, sha256, uidvalidity, uid FROM uploads \
         WHERE account=?1 AND source IS NOT NULL ORDER BY id",
    ) {
        Ok(st) => st,
        Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let rows = st
        .query_map([target], |r| {
            Ok(UploadRow {
                source: r.get(0)?,
                mailbox: r.get(1)?,
                sha256: r.get(2)?,
                uidvalidity: r.get(3)?,
                uid: r.get(4)?,
            })
        })
        .map_err(err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(err)?;
    Ok(rows)
}

/// The source identities the upload records show on the target, and the doubtful ones.
///
/// A record names the target message (mailbox, UIDVALIDITY, UID) that stands for a source
/// message. One target message stands for one source message: the first record that names it
/// (appended, or found on the target) owns it; a later record of another source message that
/// names the same target message (an identical copy taken for it) proves nothing, and that
/// source message is doubtful unless another of its records owns a target message. A record
/// without UID (a server without UIDPLUS) is taken as it is.
fn confirmed_sources(rows: &[UploadRow]) -> (HashSet<String>, HashSet<String>) {
    let mut confirmed = HashSet::new();
    let mut doubtful = HashSet::new();
    let mut owner: HashMap<(&str, u32, u32), &str> = HashMap::new();
    for r in rows {
        let (Some(v), Some(u)) = (r.uidvalidity, r.uid) else {
            // No UID (a target without UIDPLUS): only the content found there can tell.
            doubtful.insert(r.source.clone());
            continue;
        };
        let own = owner
            .entry((r.mailbox.as_str(), v, u))
            .or_insert(r.source.as_str());
        if *own == r.source {
            confirmed.insert(r.source.clone());
        } else {
            doubtful.insert(r.source.clone());
        }
    }
    doubtful.retain(|s| !confirmed.contains(s));
    (confirmed, doubtful)
}

/// The upload rows whose target message is there now: its mailbox listed, under the
/// UIDVALIDITY recorded, the UID present (`UID SEARCH UID`, RFC 3501 6.4.4). Rows without a
/// UID are kept for [`held_on_target`] to settle by content.
///
/// Errors: those of the target's login, LIST, EXAMINE and SEARCH.
fn held_now(plan: &MigratePlan, secret: &Password, rows: Vec<UploadRow>) -> Result<Vec<UploadRow>> {
    if rows.is_empty() {
        return Ok(rows);
    }
    let account = plan.restore.target.spec.account();
    let mut client = super::imap::connect(&plan.restore.target, secret)?;
    let mailboxes = client
        .list_mailboxes()
        .map_err(|e| imap_error(&account, "LIST", e))?;
    let wanted: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.mailbox.as_str()).collect();
    let mut present: HashMap<String, (u32, std::collections::BTreeSet<u32>)> = HashMap::new();
    for mailbox in wanted {
        let Some(info) = mailboxes.iter().find(|m| m.wire == mailbox) else {
            continue;
        };
        let uidvalidity = client
            .examine(info)
            .map_err(|e| imap_error(&account, &format!("EXAMINE {}", info.name), e))?
            .uidvalidity;
        let uids: Vec<u32> = rows
            .iter()
            .filter(|r| r.mailbox == mailbox && r.uidvalidity == Some(uidvalidity))
            .filter_map(|r| r.uid)
            .collect();
        // Not marked \Deleted: such a copy is one EXPUNGE away from gone.
        let found = client
            .uids_held(&uids)
            .map_err(|e| imap_error(&account, &format!("{}: UID SEARCH", info.name), e))?;
        present.insert(mailbox.to_string(), (uidvalidity, found));
    }
    let _ = client.logout();
    Ok(rows
        .into_iter()
        .filter(|r| match (r.uidvalidity, r.uid) {
            (Some(v), Some(u)) => present
                .get(&r.mailbox)
                .is_some_and(|(pv, uids)| *pv == v && uids.contains(&u)),
            _ => present.contains_key(&r.mailbox),
        })
        .collect())
}

/// The doubtful identities ([`confirmed_sources`]) whose content the target holds anyway: per
/// target mailbox and content, the target's copies (the messages of the recorded size whose
/// bytes have the recorded SHA-256) beyond those the confirmed identities account for. A run
/// killed between APPEND and its record leaves copies without record, which the next run may
/// have taken for the wrong identical message; counting the copies settles it.
///
/// Errors: those of the target's login, LIST, EXAMINE and FETCH.
fn held_on_target(
    plan: &MigratePlan,
    secret: &Password,
    rows: &[UploadRow],
    confirmed: &HashSet<String>,
    doubtful: &HashSet<String>,
) -> Result<HashSet<String>> {
    let account = plan.restore.target.spec.account();
    // (mailbox, sha256) -> (the UIDs recorded for it, under which UIDVALIDITY), and the
    // confirmed and doubtful identities recorded with it.
    #[derive(Default)]
    struct Group<'a> {
        uids: Vec<(u32, u32)>,
        confirmed: HashSet<&'a str>,
        doubtful: HashSet<&'a str>,
    }
    let mut groups: HashMap<(&str, &str), Group<'_>> = HashMap::new();
    for r in rows {
        let g = groups.entry((&r.mailbox, &r.sha256)).or_default();
        if let (Some(v), Some(u)) = (r.uidvalidity, r.uid) {
            g.uids.push((v, u));
        }
        if doubtful.contains(&r.source) {
            g.doubtful.insert(&r.source);
        } else if confirmed.contains(&r.source) {
            g.confirmed.insert(&r.source);
        }
    }
    groups.retain(|_, g| !g.doubtful.is_empty());
    let mut held = HashSet::new();
    if groups.is_empty() {
        return Ok(held);
    }
    let mut client = super::imap::connect(&plan.restore.target, secret)?;
    let mailboxes = client
        .list_mailboxes()
        .map_err(|e| imap_error(&account, "LIST", e))?;
    let mut by_mailbox: std::collections::BTreeMap<&str, Vec<(&str, &Group<'_>)>> =
        std::collections::BTreeMap::new();
    for ((mailbox, sha), g) in &groups {
        by_mailbox.entry(mailbox).or_default().push((sha, g));
    }
    for (mailbox, contents) in by_mailbox {
        let Some(info) = mailboxes.iter().find(|m| m.wire == mailbox) else {
            continue;
        };
        let uidvalidity = client
            .examine(info)
            .map_err(|e| imap_error(&account, &format!("EXAMINE {}", info.name), e))?
            .uidvalidity;
        let listing: Vec<(u32, u64)> = client
            .list_messages(None)
            .map_err(|e| imap_error(&account, &format!("{}: UID FETCH (listing)", info.name), e))?
            .into_iter()
            // A copy marked \Deleted is one EXPUNGE away from gone: it holds nothing.
            .filter(|l| !l.flags.contains(&crate::core::message::Flag::Deleted))
            .map(|l| (l.uid, l.size))
            .collect();
        for (sha, g) in contents {
            // The size of this content on the target: that of a message recorded with it.
            let Some(size) = g
                .uids
                .iter()
                .filter(|(v, _)| *v == uidvalidity)
                .find_map(|(_, u)| listing.iter().find(|(l, _)| l == u).map(|(_, s)| *s))
            else {
                continue;
            };
            let same_size: Vec<u32> = listing
                .iter()
                .filter(|(_, s)| *s == size)
                .map(|(u, _)| *u)
                .collect();
            let mut copies = 0usize;
            client
                .fetch_bodies(&same_size, &mut |f| -> std::result::Result<(), ImapError> {
                    if crate::archive::reader::sha256_hex(&normalize(f.body)) == sha {
                        copies += 1;
                    }
                    Ok(())
                })
                .map_err(|e| {
                    imap_error(
                        &account,
                        &format!("{}: UID FETCH (counting copies)", info.name),
                        e,
                    )
                })?;
            let spare = copies.saturating_sub(g.confirmed.len());
            let mut candidates: Vec<&str> = g.doubtful.iter().copied().collect();
            candidates.sort_unstable();
            held.extend(candidates.into_iter().take(spare).map(str::to_string));
        }
    }
    let _ = client.logout();
    Ok(held)
}

/// The message numbers of `listed` whose identity (or the identity a reused UIDL was given,
/// `<identity> SIZE <octets>`) is in `confirmed`.
fn doomed(listed: &[super::pop3::Listed], confirmed: &HashSet<String>) -> Vec<u32> {
    let mut seen = HashSet::new();
    listed
        .iter()
        .filter(|m| seen.insert(m.identity.as_str()))
        .filter(|m| {
            confirmed.contains(&m.identity)
                || confirmed.contains(&format!("{} SIZE {}", m.identity, m.octets))
        })
        .map(|m| m.number)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::pop3::Listed;
    use super::*;

    fn l(number: u32, uidl: &str, octets: u64) -> Listed {
        Listed {
            number,
            uidl: uidl.into(),
            identity: format!("pop3:a@h UIDL {uidl}"),
            octets,
            refused: None,
            sha256: None,
        }
    }

    #[test]
    fn only_confirmed_messages_are_deleted() {
        let listed = [l(1, "a", 10), l(2, "b", 20), l(3, "c", 30), l(4, "a", 10)];
        let confirmed: HashSet<String> = [
            "pop3:a@h UIDL a".to_string(),
            "pop3:a@h UIDL c SIZE 30".to_string(),
            "pop3:a@h UIDL z".to_string(),
            "imap:a@h MAILBOX INBOX UIDVALIDITY 1 UID 2".to_string(),
        ]
        .into_iter()
        .collect();
        assert_eq!(doomed(&listed, &confirmed), vec![1, 3]);
        assert_eq!(doomed(&listed, &HashSet::new()), Vec::<u32>::new());
    }

    #[test]
    fn a_target_message_accounts_for_one_source_message() {
        let row = |source: &str, mailbox: &str, uid: Option<u32>| UploadRow {
            source: source.into(),
            mailbox: mailbox.into(),
            sha256: "x".into(),
            uidvalidity: uid.map(|_| 7),
            uid,
        };
        let rows = [
            row("a", "INBOX", Some(1)),
            row("b", "INBOX", Some(2)),
            // c was taken for a's message: doubtful.
            row("c", "INBOX", Some(1)),
            // d too, but another of its records owns a message.
            row("d", "INBOX", Some(2)),
            row("d", "Old/INBOX", Some(1)),
            // a record without UID proves nothing by itself.
            row("e", "INBOX", None),
            // a's second record of the same message changes nothing.
            row("a", "INBOX", Some(1)),
        ];
        let (confirmed, doubtful) = confirmed_sources(&rows);
        let mut confirmed: Vec<_> = confirmed.into_iter().collect();
        confirmed.sort();
        assert_eq!(confirmed, ["a", "b", "d"]);
        assert_eq!(doubtful, HashSet::from(["c".to_string(), "e".to_string()]));
    }

    #[test]
    fn errors_are_labelled_with_their_side() {
        let plan = |url: &str| crate::engine::plans::ServerPlan {
            spec: match crate::core::endpoint::parse(url, None).unwrap() {
                crate::core::endpoint::Endpoint::Server(s) => s,
                _ => unreachable!(),
            },
            password: PasswordSource::Env("PW".into()),
            oauth2_token: None,
            tls_ca: None,
            tls_fingerprint: None,
            allow_plaintext: false,
            auth: crate::core::credentials::AuthArg::Auto,
            connect_timeout: std::time::Duration::from_secs(1),
            io_timeout: std::time::Duration::from_secs(1),
        };
        let (src, dst) = (plan("pop3s://al@h"), plan("imaps://bal@h"));
        let cases = [
            (
                "authentication failed for bal@h:993: no",
                Side::Target,
                &dst,
                "authentication failed for target account bal@h:993: no (check the user name in TARGET and the password in $PW (--target-password-env))",
            ),
            (
                "al@h:995: certificate verify failed — pass --tls-ca FILE",
                Side::Source,
                &src,
                "source al@h:995: certificate verify failed — pass --source-tls-ca FILE",
            ),
            // About another account, or an archive: as it is.
            ("bal@h:993: x --tls-ca", Side::Source, &src, "bal@h:993: x --tls-ca"),
            ("archive /x: gone", Side::Target, &dst, "archive /x: gone"),
        ];
        for (text, side, plan, want) in cases {
            assert_eq!(sided_text(text, side, plan), want, "{text}");
        }
    }
}
