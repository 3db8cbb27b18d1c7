//! IMAP backup: every selectable mailbox (filtered by `--folder`/`--exclude`), read-only
//! (EXAMINE and `BODY.PEEK[]`, RFC 3501 6.3.2 and 6.4.5), incremental by UIDVALIDITY and UID,
//! with flag changes brought in without downloading bodies, UIDVALIDITY changes matched by
//! size, date and content, and several connections working on different mailboxes.
//!
//! Per mailbox: STATUS decides whether anything can have changed ([`plan::unchanged`]); if so,
//! EXAMINE and a listing of UID, FLAGS, RFC822.SIZE and INTERNALDATE feed
//! [`plan::plan_mailbox`]; then flags are applied, new messages fetched in batches bounded by
//! bytes (each batch made durable, then recorded), and the mailbox's state recorded last, so
//! that an interrupted run repeats the listing, never skips a message.
//!
//! Files: this one runs the account (LIST, filters, STATUS of every mailbox, the `--jobs`
//! workers); [`mailbox`] backs up one mailbox in steps; [`batch`] fetches one batch of
//! bodies and stores what arrived; [`connect`] logs in and grades IMAP errors (used by every
//! IMAP flow). The decisions are pure and table-tested in [`crate::engine::plan`] (what to
//! fetch, re-key, re-flag or remove) and [`plan::after_refusal`] (what a refused batch
//! means).
//!
//! May use: `core`, `protocol`, `archive`, `engine::{plan, plans, report, progress}`.

mod batch;
mod connect;
pub mod gmail;
mod mailbox;

pub use batch::FetchFailure;
pub use connect::{
    command_kind, connect, imap_error, imap_identity, read_secret, refusal_of_messages,
    wider_than_mailbox,
};
pub use mailbox::undated_warning;

use std::collections::VecDeque;
use std::sync::Mutex;

use super::plan::{self, MailboxNow};
use crate::archive::{self, OpenArchive};
use crate::core::error::{Error, Result};
use crate::engine::plans::BackupPlan;
use crate::engine::progress::Progress;
use crate::engine::report::{Failure, MailboxReport, RunReport};
use crate::protocol::imap::{ImapClient, ImapError, MailboxInfo, Status};

/// What the workers share: the archive (sink and ledger, one writer) and the report.
struct Shared<'a> {
    archive: OpenArchive,
    report: &'a mut RunReport,
    progress: &'a mut Progress,
}

/// The error of a mailbox's sync: a failure of this mailbox only (the run goes on), or one
/// that ends the run (connection lost, archive unwritable).
enum SyncError {
    Mailbox(String),
    Fatal(Error),
}

impl From<Error> for SyncError {
    /// An archive error ends the run, except a name the file system finds too long
    /// (`ENAMETOOLONG`): that is this mailbox's fault only.
    fn from(e: Error) -> Self {
        if crate::archive::writer::name_too_long(&e) {
            SyncError::Mailbox(e.to_string())
        } else {
            SyncError::Fatal(e)
        }
    }
}

/// Runs an IMAP backup as planned, filling `report`.
pub fn backup(plan: &BackupPlan, progress: &mut Progress, report: &mut RunReport) -> Result<()> {
    // The secret first: a command that waits must not hold the archive's lock meanwhile.
    let secret = read_secret(&plan.source)?;
    // A new archive is created once the login succeeded (a failed one leaves no folder); an
    // existing one is locked first, so a second run stops before logging in.
    // A usage error found after the login (a --folder that matches nothing) leaves none either.
    let existing = if archive::is_new(&plan.archive) {
        None
    } else {
        Some(archive::open(&plan.archive)?)
    };
    let mut first = connect(&plan.source, &secret)?;
    let account = plan.source.spec.account();
    let mailboxes = first
        .list_mailboxes()
        .map_err(|e| imap_error(&account, "LIST", e))?;
    let unreadable = first.take_unreadable_lines();
    // A --folder that matches nothing is an error; an --exclude that matches nothing is said
    // once the error below (nothing left at all) is ruled out.
    let unmatched = plan
        .imap
        .filter
        .check(&account, mailboxes.iter().map(|m| m.name.as_str()))?;
    // A Gmail account is backed up by label (gmail.rs), from this list.
    let listed = mailboxes.clone();
    let mut queue: VecDeque<MailboxInfo> = mailboxes
        .into_iter()
        .filter(|m| m.selectable && plan.imap.filter.wants(m.name.as_str()))
        .collect();
    // A name holding CR, LF or NUL (legal in a LIST literal) cannot be sent back to the
    // server in STATUS or EXAMINE by the IMAP library: that mailbox fails, not the account.
    let mut unsendable: Vec<(MailboxInfo, &str)> = queue
        .iter()
        .filter(|m| m.wire.contains(['\r', '\n', '\0']))
        .map(|m| (m.clone(), "the mailbox name holds a line break or NUL, which mailkeep cannot send back to the server to open it: not archived (rename it on the server)"))
        .collect();
    queue.retain(|m| !m.wire.contains(['\r', '\n', '\0']));
    // Two server mailboxes whose names come out the same are never merged into one.
    let pairs: Vec<(&str, &str)> = queue
        .iter()
        .map(|m| (m.wire.as_str(), m.name.as_str()))
        .collect();
    let clashing = plan::clashing_mailboxes(&pairs);
    for m in queue.iter().filter(|m| clashing.contains(&m.wire)) {
        unsendable.push((m.clone(), "another server mailbox has the same name once decoded (a name that is not valid modified UTF-7, RFC 3501 5.1.3): not archived, never merged with it (rename one of them on the server)"));
    }
    queue.retain(|m| !clashing.contains(&m.wire));
    if queue.is_empty() && plan.imap.filtered {
        // A typo in a cron job's --folder must not back up nothing, silently, every night.
        return Err(Error::Usage(format!(
            "{account}: no mailbox matches --folder/--exclude (`mailkeep list` shows the mailboxes; `Archive` does not include its subfolders, `Archive/**` does)"
        )));
    }
    report.warnings.extend(unmatched);
    let mut archive = match existing {
        Some(a) => a,
        None => archive::open(&plan.archive)?,
    };
    report.warnings.append(&mut archive.repairs);
    if !archive::note_source_port(&mut archive, &plan.source.spec)? {
        report.warnings.push(super::another_port_warning(&account));
    }
    if gmail::by_label(plan, &first) {
        let r = gmail::backup(plan, &mut first, &mut archive, &listed, progress, report);
        let _ = first.logout();
        return r;
    }
    if let Some(w) = gmail::all_mail_by_folder_warning(plan, &first, &queue) {
        report.warnings.push(w);
    }
    for (m, why) in unsendable {
        report.failures.push(Failure {
            mailbox: m.name.to_string(),
            message: String::new(),
            error: format!(
                "{account}: {}: {why}",
                crate::core::endpoint::escape_controls(&m.wire)
            ),
        });
    }
    for line in unreadable {
        report.failures.push(Failure {
            mailbox: String::new(),
            message: String::new(),
            error: format!(
                "{account}: the server listed a mailbox in a form mailkeep cannot read (`* LIST {line}`): that mailbox is not archived"
            ),
        });
    }
    if plan.imap.mirror && plan.archive.kind == crate::core::endpoint::ArchiveKind::Mbox {
        report.warnings.push(
            "--mirror has no effect on an mbox archive: mailkeep never rewrites an mbox file"
                .into(),
        );
    }
    // Quota, when the server reports it, so people see a full mailbox coming.
    if first.capabilities().has("QUOTA") {
        if let Some(inbox) = queue.iter().find(|m| m.name.is_inbox()).cloned() {
            if let Ok(roots) = first.quota_roots(&inbox) {
                report.quota = roots
                    .iter()
                    .flat_map(crate::engine::report::QuotaLine::from_root)
                    .collect();
            }
        }
    }
    progress.start(&account, 0, 0);
    // STATUS of every mailbox on the first connection, before any other is opened: a nightly
    // run where nothing changed then costs one login, not one per `--jobs` connection.
    let _ = first.enable_condstore();
    let mut queue = skip_unchanged(plan, &mut first, &mut archive, queue, report)?;
    // An mbox archive is written by one connection: its appends are bracketed per file in the
    // ledger (pending length, then committed length), and a sync by one worker would commit
    // another worker's file length without its messages.
    let jobs = match plan.archive.kind {
        crate::core::endpoint::ArchiveKind::Mbox => 1,
        crate::core::endpoint::ArchiveKind::Maildir => plan.imap.jobs,
    }
    .min(queue.len())
    .max(1);
    let queue = Mutex::new(std::mem::take(&mut queue));
    let shared = Mutex::new(Shared {
        archive,
        report,
        progress,
    });
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        let mut first = Some(first);
        for _ in 0..jobs {
            let client = first.take();
            let (queue, shared, fatal, secret) = (&queue, &shared, &fatal, &secret);
            s.spawn(move || {
                let mut client = match client {
                    Some(c) => c,
                    None => match connect(&plan.source, secret) {
                        Ok(c) => c,
                        Err(e) => {
                            // A server limiting connections: the other workers go on.
                            lock(shared).report.warnings.push(format!(
                                "{}: an extra connection failed ({e}); continuing with fewer",
                                plan.source.spec.account()
                            ));
                            return;
                        }
                    },
                };
                let _ = client.enable_condstore();
                loop {
                    if lock_plain(fatal).is_some() {
                        return;
                    }
                    let Some((mb, status)) = lock_plain(queue).pop_front() else {
                        break;
                    };
                    let r = mailbox::sync_mailbox(plan, &mut client, shared, &mb, status);
                    if client.is_broken() && !matches!(r, Err(SyncError::Fatal(_))) {
                        // A message refused mid-answer (over the size limit) left the session
                        // out of step: the next mailboxes get a new connection.
                        match connect(&plan.source, secret) {
                            Ok(c) => {
                                client = c;
                                let _ = client.enable_condstore();
                            }
                            Err(e) => {
                                let mut f = lock_plain(fatal);
                                if f.is_none() {
                                    *f = Some(e);
                                }
                                return;
                            }
                        }
                    }
                    match r {
                        Ok(()) => {}
                        Err(SyncError::Mailbox(e)) => {
                            let mut sh = lock(shared);
                            sh.report.failures.push(Failure {
                                mailbox: mb.name.to_string(),
                                message: String::new(),
                                error: e,
                            });
                        }
                        Err(SyncError::Fatal(e)) => {
                            let mut f = lock_plain(fatal);
                            if f.is_none() {
                                *f = Some(e);
                            }
                            return;
                        }
                    }
                }
                let _ = client.logout();
            });
        }
    });
    match fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn lock<'m, 'a>(m: &'m Mutex<Shared<'a>>) -> std::sync::MutexGuard<'m, Shared<'a>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_plain<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Is this error about the mailbox only (NO/BAD to EXAMINE or FETCH) or about the session?
/// A server that is throttling or temporarily unavailable (`NO ... Suggested Backoff Time`,
/// `NO [UNAVAILABLE]`) ends the run with a network error (exit 4), which `mailkeep run`
/// retries after a wait.
fn classify(account: &str, context: &str, e: ImapError) -> SyncError {
    match e {
        ImapError::No { ref text, .. } | ImapError::Bad { ref text, .. }
            if wider_than_mailbox(&e, text) =>
        {
            SyncError::Fatal(imap_error(account, context, e))
        }
        ImapError::No { .. } | ImapError::Bad { .. } | ImapError::Unusable { .. } => {
            SyncError::Mailbox(imap_error(account, context, e).to_string())
        }
        // A message over the size limit: that message's failure; the worker connects again
        // (the session is unusable, the literal is still coming).
        ImapError::TooLarge { size, limit, .. } => SyncError::Mailbox(format!(
            "{account}: {context}: {}",
            crate::core::limits::too_large(Some(size), limit)
        )),
        other => SyncError::Fatal(imap_error(account, context, other)),
    }
}

/// The mailboxes of `queue` that may have changed since the last run ([`plan::unchanged`] on
/// their STATUS), each with its STATUS; the others are counted in `report` as all archived.
/// A STATUS refused for one mailbox is that mailbox's failure (in `report`), as in
/// [`mailbox::sync_mailbox`].
///
/// Errors: what ends the run (connection lost, archive unreadable).
fn skip_unchanged(
    plan: &BackupPlan,
    client: &mut ImapClient,
    archive: &mut OpenArchive,
    queue: VecDeque<MailboxInfo>,
    report: &mut RunReport,
) -> Result<VecDeque<(MailboxInfo, Option<Status>)>> {
    let account = plan.source.spec.account();
    let key = plan.source.spec.ledger_key();
    let mut changed = VecDeque::with_capacity(queue.len());
    for mb in queue {
        let status = match client.status(&mb) {
            Ok(s) => s,
            Err(e) => match classify(&account, &format!("STATUS {}", mb.name), e) {
                // A STATUS refused for one mailbox (some servers refuse it on names they
                // list, or on shared folders): EXAMINE decides, and names the fault if it
                // fails too.
                SyncError::Mailbox(_) => None,
                SyncError::Fatal(e) => return Err(e),
            },
        };
        // A STATUS answer that cannot tell (empty, partial, numbers beyond 32 bits): the
        // mailbox is examined and listed.
        let Some(status) = status else {
            changed.push_back((mb, None));
            continue;
        };
        let now = mailbox_now(&status);
        let known = archive.ledger.mailbox_state(&key, mb.name.as_str())?;
        // A recorded message whose archived file is gone (moved aside, deleted by hand) is
        // fetched again by `sync_mailbox`, even when the server says nothing changed (Maildir:
        // one directory read per folder; an mbox cannot tell cheaply and is not looked at).
        let unchanged = plan::unchanged(known.as_ref(), &now, plan.imap.mirror) && {
            let mut all_there = true;
            for location in
                archive
                    .ledger
                    .mailbox_locations(&key, mb.name.as_str(), now.uidvalidity)?
            {
                match archive.sink.present(&location)? {
                    Some(true) => {}
                    Some(false) => {
                        all_there = false;
                        break;
                    }
                    // The sink cannot tell cheaply (mbox): nothing more to look at.
                    None => break,
                }
            }
            all_there
        };
        if unchanged {
            let on_server = u64::from(status.messages);
            report.listed += on_server;
            report.already_archived += on_server;
            report.mailboxes.push(MailboxReport {
                mailbox: mb.name.to_string(),
                on_server,
                already_archived: on_server,
                ..MailboxReport::default()
            });
        } else {
            changed.push_back((mb, Some(status)));
        }
    }
    Ok(changed)
}

fn mailbox_now(status: &Status) -> MailboxNow {
    MailboxNow {
        uidvalidity: status.uidvalidity,
        uidnext: status.uidnext,
        highestmodseq: status.highestmodseq,
        messages: status.messages,
    }
}
