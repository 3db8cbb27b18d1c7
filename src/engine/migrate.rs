//! `migrate`: copy a POP3 or IMAP account into an IMAP account (issue 4), never twice.
//!
//! A migration is a restore whose source is a server ([`crate::source::server`]): the same
//! engine ([`super::restore::restore_with`]) maps the mailboxes, looks for what the target
//! already holds, appends the rest with flags, keywords and INTERNALDATE, and records every
//! upload in the uploads ledger with the message's source identity (POP3: account + UIDL;
//! IMAP: account, mailbox, UIDVALIDITY, UID). A rerun lists the source and fetches only the
//! messages without a record, so it appends 0 when nothing is new; without the ledger the
//! target lookup (size + Message-ID, or content) still finds every message.
//!
//! With `--via ARCHIVE` the run is a `backup` of the source into the archive (complete with its
//! own ledger, as `mailkeep backup` makes it) followed by a restore of that archive; uploads are
//! then recorded with the archive's identities, which are the same source identities.
//!
//! `--delete-after-migrate` (POP3 only) then opens a new POP3 session and deletes (DELE, QUIT)
//! exactly the listed messages whose identity the uploads ledger records for this target
//! (appended and confirmed by the server's tagged OK, or found there). Nothing is deleted when
//! any part of the run failed (the same rule as `backup --delete-after-backup`), nor in a dry
//! run.

use std::collections::HashSet;
use std::io::Write;

use super::pop3::{connect as pop3_connect, pop3_error};
use super::restore::{self, SourceOpener};
use crate::config::{
    BackupPlan, DeletePolicy, ImapChoices, MigrateFrom, MigratePlan, Output,
};
use crate::credentials::{Password, PasswordSource};
use crate::error::{self, Error, Exit, Result};
use crate::ledger::Ledger;
use crate::report::{RestoreReport, RunReport};
use crate::source::server::{ImapSource, Pop3Source};
use crate::source::ArchiveSource;

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

/// Runs a migration as planned, prints its report, and returns the exit status.
pub fn migrate(plan: &MigratePlan) -> Exit {
    let report = run(plan);
    print(&report, plan.restore.output);
    report.exit
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
    // The source's secret once for the whole run (a password command or prompt is not
    // repeated per connection).
    let secret = match super::imap::read_secret(&plan.source) {
        Ok(s) => s,
        Err(e) => return failed(report, plan, e),
    };

    if let (Some(via), false) = (&plan.via, plan.restore.dry_run) {
        let mut source = plan.source.clone();
        if source.oauth2_token.is_some() {
            source.oauth2_token = Some(PasswordSource::Known(secret.clone()));
        } else {
            source.password = PasswordSource::Known(secret.clone());
        }
        let bplan = BackupPlan {
            source,
            archive: via.clone(),
            delete: DeletePolicy::Never,
            imap: ImapChoices {
                filter: plan.filter.clone(),
                filtered: plan.filtered,
                mirror: false,
                dedup: false,
                jobs: 3,
            },
            output: plan.restore.output,
        };
        let mut progress = crate::progress::Progress::new(false);
        let b = super::backup(&bplan, &mut progress);
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

    let upload = match &plan.via {
        Some(via) if !plan.restore.dry_run => {
            let spec = plan_archive(plan, via);
            restore::restore_with(&plan.restore, "migrate", &|| crate::source::open(&spec))
        }
        _ => {
            let opener: Box<SourceOpener<'_>> = match plan.from {
                MigrateFrom::Imap => Box::new(|| {
                    let s = ImapSource::connect(&plan.source, &secret, plan.filter.clone())?;
                    Ok(Box::new(s) as Box<dyn ArchiveSource + Send>)
                }),
                MigrateFrom::Pop3 => Box::new(|| {
                    let s = Pop3Source::connect(&plan.source, &secret, plan.seen)?;
                    Ok(Box::new(s) as Box<dyn ArchiveSource + Send>)
                }),
            };
            restore::restore_with(&plan.restore, "migrate", &*opener)
        }
    };
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
            report.deletion_note =
                Some("dry run: nothing deleted from the source".into());
        } else if upload_failed || backup_failed {
            report.deletion_note = Some(
                "nothing deleted from the source because part of the run failed; rerun when it succeeds".into(),
            );
        } else {
            match delete_confirmed(plan, &secret) {
                Ok(n) => report.deleted_at_source = n,
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

/// The archive of `--via` as a source spec (`maildir:/path`).
fn plan_archive(_plan: &MigratePlan, via: &crate::endpoint::ArchiveSpec) -> String {
    format!("{}:{}", via.kind.as_str(), via.path.display())
}

fn failed(mut report: MigrateReport, plan: &MigratePlan, e: Error) -> MigrateReport {
    report.upload.command = "migrate".into();
    report.upload.archive = report.source.clone();
    report.upload.target = report.target.clone();
    report.upload.dry_run = plan.restore.dry_run;
    report.upload.error = Some(e.to_string());
    report.exit = e.exit();
    report.upload.exit = e.exit();
    report.upload.exit_code = e.exit().code();
    report.exit_code = e.exit().code();
    report
}

/// Deletes from the POP3 source the listed messages whose identity the uploads ledger records
/// for the target; returns how many.
fn delete_confirmed(plan: &MigratePlan, secret: &Password) -> Result<u64> {
    let ledger = Ledger::open(&plan.restore.state_file)?;
    let confirmed = ledger.uploaded_sources(&plan.restore.target.spec.ledger_key())?;
    drop(ledger);
    let (mut client, account) = pop3_connect(&plan.source, secret)?;
    let mut warnings = Vec::new();
    let listed = super::pop3::list(
        &mut client,
        &account,
        &plan.source.spec.ledger_key(),
        &mut warnings,
    )?;
    let doomed = doomed(&listed, &confirmed);
    if doomed.is_empty() {
        let _ = client.quit();
        return Ok(0);
    }
    client
        .dele(&doomed)
        .map_err(|e| pop3_error(&account, "DELE", e))?;
    client
        .quit()
        .map_err(|e| pop3_error(&account, "QUIT (the deletions)", e))?;
    Ok(doomed.len() as u64)
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

/// Prints a migration's report: the backup's (with `--via`), then the upload's, then the
/// deletions; or one JSON object with `--json`.
fn print(report: &MigrateReport, out: Output) {
    let mut stderr = std::io::stderr();
    if out.json {
        for (w, f, e) in parts(report) {
            if !out.quiet {
                for w in w {
                    let _ = writeln!(stderr, "mailkeep: warning: {w}");
                }
            }
            for f in f {
                let _ = writeln!(stderr, "mailkeep: {} {}: {}", f.mailbox, f.message, f.error);
            }
            if let Some(e) = e {
                let _ = writeln!(stderr, "mailkeep: {e}");
            }
        }
        let text = serde_json::to_string(report).expect("a report is plain data");
        let mut stdout = std::io::stdout().lock();
        let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
        if let Some(line) = written.err().as_ref().and_then(error::stdout_failure) {
            let _ = writeln!(stderr, "{line}");
        }
        return;
    }
    if let Some(b) = &report.backup {
        crate::print_report(b, out);
    }
    if report.backup.as_ref().is_none_or(|b| matches!(b.exit, Exit::Ok | Exit::Partial)) {
        restore::print(&report.upload, out);
    }
    if let Some(n) = &report.deletion_note {
        let _ = writeln!(stderr, "mailkeep: {n}");
    }
    if report.deleted_at_source > 0 && !out.quiet {
        println!(
            "deleted {} message(s) from {} that {} holds",
            report.deleted_at_source, report.source, report.target
        );
    }
}

type Parts<'a> = (
    &'a [String],
    &'a [crate::report::Failure],
    Option<&'a String>,
);

fn parts(report: &MigrateReport) -> Vec<Parts<'_>> {
    let mut v = Vec::new();
    if let Some(b) = &report.backup {
        v.push((&b.warnings[..], &b.failures[..], b.error.as_ref()));
    }
    v.push((
        &report.upload.warnings[..],
        &report.upload.failures[..],
        report.upload.error.as_ref(),
    ));
    v
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
}
