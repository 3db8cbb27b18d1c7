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

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::now_secs;
use super::plan::{self, ArchivedMessage, MailboxNow, ServerMessage};
use crate::archive::ledger::Record;
use crate::archive::staging::fsync_pool::{FsyncPool, Pending};
use crate::archive::staging::placer;
use crate::archive::writer::{PlaceMeta, StagedMessage};
use crate::archive::{self, OpenArchive};
use crate::core::credentials::AuthArg;
use crate::core::credentials::Password;
use crate::core::error::{Error, Result};
use crate::core::fault::{self, FaultClass};
use crate::core::headers;
use crate::core::message::{Flags, MailboxName};
use crate::engine::plans::{BackupPlan, ServerPlan};
use crate::engine::progress::Progress;
use crate::engine::report::{Failure, MailboxReport, RunReport};
use crate::protocol::imap::{
    Fetched, ImapAuth, ImapClient, ImapError, ImapOptions, MailboxInfo, Status,
};
use crate::protocol::net::{Timeouts, TlsOptions};

/// A fetch batch holds at most this many messages...
const BATCH_MESSAGES: usize = 500;
/// ...and about this many bytes (RFC822.SIZE); a larger message is fetched alone.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// The identity of an IMAP message in the ledger (RFC 3501 2.3.1.1: a UID is unique only
/// together with the mailbox and its UIDVALIDITY).
pub fn imap_identity(
    ledger_key: &str,
    mailbox: &MailboxName,
    uidvalidity: u32,
    uid: u32,
) -> String {
    format!("{ledger_key} MAILBOX {mailbox} UIDVALIDITY {uidvalidity} UID {uid}")
}

/// The warning for a `--folder`/`--exclude` pattern (`p`, as [`super::plan::FolderFilter::unmatched`]
/// gives it) that matches no mailbox the server listed.
pub fn unmatched_warning(account: &str, p: &str) -> String {
    format!("{account}: {p} matches no mailbox on the server (`mailkeep list` shows the mailboxes)")
}

/// Maps an IMAP error to a user-facing error about `account`, with `context`.
pub fn imap_error(account: &str, context: &str, e: ImapError) -> Error {
    let ctx = if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    };
    match e {
        ImapError::Net(e) => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
        ImapError::Io(e) => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{}", crate::protocol::net::io_reason(&e)),
        },
        ImapError::Bye(t) => {
            let r = fault::classify(fault::Status::Bye, fault::Command::Other, &t);
            let later = match r.class {
                FaultClass::BandwidthExhausted => format!(
                    ": {}; no new login to this account in this run ({})",
                    r.class.describe(),
                    fault::retry_after_phrase(r.retry_after.unwrap_or(fault::BANDWIDTH_PAUSE))
                ),
                _ => String::new(),
            };
            Error::Network {
                account: account.into(),
                detail: format!("{ctx}the server closed the session: {t}{later}"),
            }
        }
        ImapError::Auth(t) => Error::Auth {
            account: account.into(),
            detail: t,
        },
        ImapError::NoTls(t) => Error::PlaintextRefused {
            account: account.into(),
            detail: t,
        },
        ImapError::No { command, text } => refused(account, &ctx, "NO", command, text),
        ImapError::Bad { command, text } => refused(account, &ctx, "BAD", command, text),
        ImapError::Protocol(t) => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{t}"),
        },
        e @ ImapError::Unusable { .. } => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
        e @ ImapError::TooLarge { .. } => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}{e}"),
        },
    }
}

/// What an IMAP command string is about, for [`fault::classify`]: LOGIN/AUTHENTICATE,
/// APPEND, a mailbox command (EXAMINE, SELECT, STATUS, CREATE), the selected mailbox's
/// messages (FETCH, SEARCH, STORE, with or without UID), or other.
pub fn command_kind(command: &str) -> fault::Command {
    let verb = command
        .split_ascii_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match verb.as_str() {
        "LOGIN" | "AUTHENTICATE" => fault::Command::Login,
        "APPEND" => fault::Command::Append,
        "EXAMINE" | "SELECT" | "STATUS" | "CREATE" => fault::Command::Mailbox,
        // The messages of the selected mailbox (a listing `UID FETCH 1:*` included).
        "FETCH" | "UID" | "SEARCH" | "STORE" => fault::Command::Fetch,
        _ => fault::Command::Other,
    }
}

/// A `NO`/`BAD` (`status`) to `command` as an error, graded by [`fault::classify`]: a server
/// that asks to come back later (throttling, `[UNAVAILABLE]`, `[INUSE]`, `[LIMIT]` at login,
/// bandwidth used up) is a network error (exit 4) that `mailkeep run` retries or defers; the
/// credentials refused are exit 3; anything else is the server's refusal, worded with its
/// own text (exit 7 when it ends the run; callers that grade by mailbox or message keep going).
fn refused(account: &str, ctx: &str, status: &str, command: String, text: String) -> Error {
    let st = if status == "BAD" {
        fault::Status::Bad
    } else {
        fault::Status::No
    };
    let r = fault::classify(st, command_kind(&command), &text);
    let quoted = format!("`{status} {text}` to {command}");
    match r.class {
        FaultClass::Throttled
        | FaultClass::ServerUnavailable
        | FaultClass::InUse
        | FaultClass::TooManyConnections => Error::Network {
            account: account.into(),
            detail: format!("{ctx}{} ({quoted}); try again later", r.class.describe()),
        },
        FaultClass::BandwidthExhausted | FaultClass::LoginDelay => Error::Network {
            account: account.into(),
            detail: format!(
                "{ctx}{} ({quoted}); no new login to this account in this run ({})",
                r.class.describe(),
                fault::retry_after_phrase(r.retry_after.unwrap_or(fault::BANDWIDTH_PAUSE))
            ),
        },
        FaultClass::AuthRefused
        | FaultClass::AuthorizationRefused
        | FaultClass::CredentialsExpired
        | FaultClass::AccountUnavailable
            if st == fault::Status::No =>
        {
            Error::Auth {
                account: account.into(),
                detail: text,
            }
        }
        FaultClass::ProtocolBroken => Error::Protocol {
            account: account.into(),
            detail: format!("{ctx}server answered {quoted}"),
        },
        // A plain refusal (`NO [SERVERBUG]`, `NO [NOPERM]`, `BAD [CANNOT]` to a mailbox's
        // listing): the server's words, not "protocol error".
        _ => Error::Refused {
            account: account.into(),
            detail: format!("{ctx}refused by the server: {quoted}"),
        },
    }
}

/// True when a `NO`/`BAD` (with `text`) to a command about one mailbox says more than that
/// the mailbox failed: the server is throttling, unavailable, out of connections, or the
/// account's allowance is used up ([`fault::Scope::Connection`] or wider).
pub fn wider_than_mailbox(e: &ImapError, text: &str) -> bool {
    let (st, command) = match e {
        ImapError::Bad { command, .. } => (fault::Status::Bad, Some(command)),
        ImapError::No { command, .. } => (fault::Status::No, Some(command)),
        _ => (fault::Status::No, None),
    };
    // Graded as what it answered: a FETCH of the mailbox's messages, else a command about
    // the mailbox.
    let kind = match command.map(|c| command_kind(c)) {
        Some(k @ fault::Command::Fetch) => k,
        _ => fault::Command::Mailbox,
    };
    fault::classify(st, kind, text).class.scope() > fault::Scope::Mailbox
}

/// Reads the secret for an IMAP login: the OAuth2 access token from
/// `--oauth2-token-command`, else the password.
pub fn read_secret(plan: &ServerPlan) -> Result<Password> {
    let account = plan.spec.account();
    match &plan.oauth2_token {
        Some(src) => src.read(&account),
        None => plan.password.read(&account),
    }
}

/// Connects and logs in to an IMAP server as planned, with `secret` from [`read_secret`].
pub fn connect(plan: &ServerPlan, secret: &Password) -> Result<ImapClient> {
    let account = plan.spec.account();
    let auth = match plan.auth {
        AuthArg::Auto => ImapAuth::Auto,
        AuthArg::Plain => ImapAuth::Plain,
        AuthArg::Login | AuthArg::User => ImapAuth::Login,
        AuthArg::Xoauth2 => ImapAuth::XOAuth2,
        AuthArg::Oauthbearer => ImapAuth::OAuthBearer,
        AuthArg::Apop => ImapAuth::Auto,
    };
    let opts = ImapOptions {
        allow_plaintext: plan.allow_plaintext,
        auth,
        tls: TlsOptions {
            ca_file: plan.tls_ca.clone(),
            fingerprint: plan.tls_fingerprint.clone(),
        },
        timeouts: Timeouts {
            connect: plan.connect_timeout,
            io: plan.io_timeout,
        },
    };
    let mut client =
        ImapClient::connect(&plan.spec, &opts).map_err(|e| imap_error(&account, "", e))?;
    client
        .login(&plan.spec.user, secret.expose())
        .map_err(|e| imap_error(&account, "", e))?;
    Ok(client)
}

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
    // Said once the error below (nothing matches at all) is ruled out: it names them all.
    let unmatched: Vec<String> = plan
        .imap
        .filter
        .unmatched(mailboxes.iter().map(|m| m.name.as_str()))
        .iter()
        .map(|p| unmatched_warning(&account, p))
        .collect();
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
                    let r = sync_mailbox(plan, &mut client, shared, &mb, status);
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

fn archived_of(records: &[Record]) -> Vec<ArchivedMessage> {
    records
        .iter()
        .filter_map(|r| {
            Some(ArchivedMessage {
                identity: r.identity.clone(),
                uidvalidity: r.uidvalidity?,
                uid: r.uid?,
                flags: Flags::from_imap_list(&r.flags),
                wire_size: r.wire_size,
                internal_date: r.internal_date,
                sha256: r.sha256.clone(),
            })
        })
        .collect()
}

/// The mailboxes of `queue` that may have changed since the last run ([`plan::unchanged`] on
/// their STATUS), each with its STATUS; the others are counted in `report` as all archived.
/// A STATUS refused for one mailbox is that mailbox's failure (in `report`), as in
/// [`sync_mailbox`].
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

/// Counts what a mailbox stored before an error ended the run, so that the report (and the
/// `totals` of `mailkeep run` over its attempts) says what this attempt did archive.
fn count_stored(shared: &Mutex<Shared<'_>>, mreport: &MailboxReport) {
    let mut sh = lock(shared);
    sh.report.fetched += mreport.fetched;
    sh.report.fetched_bytes += mreport.fetched_bytes;
}

/// A fetched message written to `tmp/` whose fsync may still be running (its [`Pending`]
/// travels beside it): placed once that is done, never before.
struct Unplaced {
    msg: StagedMessage,
    uid: u32,
    /// RFC822.SIZE, octets.
    size: u64,
    flags: Flags,
    /// INTERNALDATE, seconds since the epoch (the fallback date when the server's was not
    /// valid: see `undated`).
    internal_date: i64,
}

/// Which date a message without a valid INTERNALDATE got, for the mailbox's warning and the
/// ledger's note.
struct Undated {
    uid: u32,
    /// What the server sent (`NIL`, `"garbage"`, `nothing`).
    sent: String,
    /// [`headers::DateSource::DateHeader`] or [`headers::DateSource::Now`].
    from: headers::DateSource,
}

/// The warning for a mailbox's messages without a valid INTERNALDATE (`undated` not empty):
/// `INBOX: 3 messages had no valid INTERNALDATE; dated from their Date: header (2) or the
/// archiving time (1): UID 4 (NIL), ...`, at most 10 UIDs named. Pure.
pub fn undated_warning(account: &str, mailbox: &str, undated: &[(u32, String, bool)]) -> String {
    let mut undated = undated.to_vec();
    undated.sort();
    let n = undated.len();
    let header = undated.iter().filter(|u| u.2).count();
    let what = if n == 1 { "message" } else { "messages" };
    let mut uids: Vec<String> = undated
        .iter()
        .take(10)
        .map(|(uid, sent, _)| format!("UID {uid} ({sent})"))
        .collect();
    if n > 10 {
        uids.push(format!("and {} more", n - 10));
    }
    format!(
        "{account}: mailbox {mailbox}: {n} {what} had no valid INTERNALDATE; dated from their Date: header ({header}) or the archiving time ({}): {}",
        n - header,
        uids.join(", ")
    )
}

fn sync_mailbox(
    plan: &BackupPlan,
    client: &mut ImapClient,
    shared: &Mutex<Shared<'_>>,
    mb: &MailboxInfo,
    status: Option<Status>,
) -> Result<(), SyncError> {
    let account = plan.source.spec.account();
    let key = plan.source.spec.ledger_key();
    let name = &mb.name;
    let ctx = format!("mailbox {name}");
    // Its own folder, or no backup of it at all (DESIGN.md invariant 5).
    if let Err(line) = lock(shared).archive.sink.claim(name)? {
        return Err(SyncError::Mailbox(format!("{account}: {line}")));
    }
    let (known, records) = {
        let sh = lock(shared);
        (
            sh.archive.ledger.mailbox_state(&key, name.as_str())?,
            sh.archive.ledger.mailbox_records(&key, name.as_str())?,
        )
    };
    let mut mreport = MailboxReport {
        mailbox: name.to_string(),
        on_server: status.map_or(0, |s| u64::from(s.messages)),
        ..MailboxReport::default()
    };
    // Unchanged mailboxes never get here: [`skip_unchanged`] decided on this same STATUS.
    let selected = match client.examine(mb) {
        Ok(s) => s,
        // Deleted on the server between LIST and EXAMINE (RFC 5530 NONEXISTENT): nothing of
        // it can be archived, and nothing of it is listed; said, not failed. Unless LIST still
        // shows it: then the server cannot open a mailbox it has (a name listed in one form
        // and opened in another), and leaving it out without a failure would leave its mail
        // out of every run.
        Err(e @ ImapError::No { .. }) if e.response_code().as_deref() == Some("NONEXISTENT") => {
            let text = match &e {
                ImapError::No { text, .. } => text.clone(),
                _ => String::new(),
            };
            let still_listed = match client.list_mailboxes() {
                Ok(list) => list.iter().any(|l| l.wire == mb.wire && l.selectable),
                Err(_) => true,
            };
            if still_listed {
                return Err(SyncError::Mailbox(format!(
                    "{account}: mailbox {name}: the server answered `NO {}` to EXAMINE but still lists it: not archived; the next run tries again",
                    crate::core::endpoint::escape_controls(&fault::without_timing(&text))
                )));
            }
            lock(shared).report.warnings.push(format!(
                "{account}: mailbox {name} was deleted on the server after it was listed (`NO {}` to EXAMINE): nothing to archive",
                crate::core::endpoint::escape_controls(&text)
            ));
            return Ok(());
        }
        Err(e) => return Err(classify(&account, &format!("EXAMINE {name}"), e)),
    };
    let listing: Vec<ServerMessage> = client
        .list_messages(None)
        .map_err(|e| classify(&account, &format!("{ctx}: UID FETCH (listing)"), e))?
        .into_iter()
        .map(|l| ServerMessage {
            uid: l.uid,
            flags: l.flags,
            size: l.size,
            internal_date: l.internal_date,
        })
        .collect();
    // Messages stored this run without a valid INTERNALDATE, and UIDs the server sent no
    // message for (`BODY[] NIL`, 0 octets): the first are warned about once, the second are
    // failures of their UID.
    let mut undated: Vec<Undated> = Vec::new();
    // A recorded message whose archived file is gone (deleted by hand) is fetched again.
    let records: Vec<Record> = {
        let mut sh = lock(shared);
        let mut kept = Vec::with_capacity(records.len());
        for r in records {
            if r.uidvalidity == Some(selected.uidvalidity)
                && sh.archive.sink.present(&r.location)? == Some(false)
            {
                continue;
            }
            kept.push(r);
        }
        kept
    };
    let archived = archived_of(&records);
    let mbplan = plan::plan_mailbox(selected.uidvalidity, &listing, &archived);
    let by_identity: HashMap<&str, &Record> =
        records.iter().map(|r| (r.identity.as_str(), r)).collect();
    mreport.on_server = listing.len() as u64;
    mreport.already_archived =
        mbplan.unchanged + mbplan.set_flags.len() as u64 + mbplan.rekey.len() as u64;

    // Flag changes and re-keyings: sink first (renames), made durable, then recorded.
    {
        let mut sh = lock(shared);
        if mbplan.uidvalidity_changed {
            let old = archived.first().map(|a| a.uidvalidity).unwrap_or_default();
            sh.report.warnings.push(format!(
                "{account}: {name}: UIDVALIDITY changed from {old} to {} (the mailbox was recreated); archived messages are matched by size, date and content, and only new ones are stored",
                selected.uidvalidity
            ));
        }
        let mut set = Vec::new();
        for (identity, flags) in &mbplan.set_flags {
            let r = by_identity[identity.as_str()];
            let old = Flags::from_imap_list(&r.flags);
            // A file shared by several mailboxes (`--dedup`) keeps its name: the flags of
            // each mailbox's copy live in the ledger.
            if !sh.archive.ledger.location_shared(&r.location)? {
                sh.archive.sink.set_flags(name, &r.location, &old, flags)?;
            }
            set.push((identity.clone(), flags.to_imap_list(), r.location.clone()));
        }
        let mut rekey = Vec::new();
        for (identity, uid, flags) in &mbplan.rekey {
            let r = by_identity[identity.as_str()];
            let old = Flags::from_imap_list(&r.flags);
            sh.archive.sink.set_flags(name, &r.location, &old, flags)?;
            rekey.push((
                identity.clone(),
                imap_identity(&key, name, selected.uidvalidity, *uid),
                selected.uidvalidity,
                *uid,
                flags.to_imap_list(),
                r.location.clone(),
            ));
        }
        sh.archive.sink.sync()?;
        sh.archive.ledger.update_records(&set, &rekey)?;
        mreport.flags_updated = set.len() as u64;
    }

    // Older records that a fetched message may turn out to be (after a UIDVALIDITY change).
    let mut older_by_sha: HashMap<String, Vec<Record>> = if mbplan.uidvalidity_changed {
        let rekeyed: std::collections::HashSet<&str> =
            mbplan.rekey.iter().map(|(i, _, _)| i.as_str()).collect();
        let mut m: HashMap<String, Vec<Record>> = HashMap::new();
        for r in records.iter().filter(|r| {
            r.uidvalidity != Some(selected.uidvalidity) && !rekeyed.contains(r.identity.as_str())
        }) {
            m.entry(r.sha256.clone()).or_default().push(r.clone());
        }
        m
    } else {
        HashMap::new()
    };

    // Messages a killed run had already placed (Maildir: found by the name derived from their
    // identity) are recorded without downloading them again.
    let mut to_fetch: Vec<ServerMessage> = Vec::with_capacity(mbplan.fetch.len());
    {
        let mut sh = lock(shared);
        let mut found = Vec::new();
        for m in &mbplan.fetch {
            let identity = imap_identity(&key, name, selected.uidvalidity, m.uid);
            match sh.archive.sink.find_unrecorded(name, &identity)? {
                Some((stored, sha256, size)) => found.push(Record {
                    account: key.clone(),
                    mailbox: name.to_string(),
                    uidl: None,
                    uidvalidity: Some(selected.uidvalidity),
                    uid: Some(m.uid),
                    identity,
                    size,
                    wire_size: Some(m.size),
                    sha256,
                    // Adopted without fetching: no header to date it from.
                    internal_date: m.internal_date.unwrap_or_else(now_secs),
                    flags: m.flags.to_imap_list(),
                    location: stored.location,
                    stored_at: now_secs(),
                    verified: false,
                }),
                None => to_fetch.push(m.clone()),
            }
        }
        if !found.is_empty() {
            sh.archive.ledger.record_batch(&found, &[])?;
            sh.report.recovered += found.len() as u64;
            mreport.already_archived += found.len() as u64;
        }
    }
    // RFC822.SIZE over the limit: not fetched, that message's failure (docs/limits.md, "Limits").
    let limit = crate::core::limits::max_message_size();
    let mut mailbox_failed = false;
    to_fetch.retain(|m| {
        if m.size <= limit {
            return true;
        }
        mailbox_failed = true;
        lock(shared).report.failures.push(Failure {
            mailbox: name.to_string(),
            message: format!("UID {}", m.uid),
            error: format!(
                "{account}: mailbox {name} UID {}: {}",
                m.uid,
                crate::core::limits::too_large(Some(m.size), limit)
            ),
        });
        false
    });
    let sizes: Vec<u64> = to_fetch.iter().map(|m| m.size).collect();
    {
        let mut sh = lock(shared);
        let (msgs, bytes) = (to_fetch.len() as u64, sizes.iter().sum::<u64>());
        sh.progress.add_work(msgs, bytes);
    }
    for range in plan::batches(&sizes, BATCH_MESSAGES, BATCH_BYTES) {
        let rest_from = range.end;
        let batch = &to_fetch[range];
        let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
        let appends = {
            let mut sh = lock(shared);
            let t = sh.archive.sink.tail(name)?;
            if let Some(mark) = &t {
                archive::check_mbox_known(&sh.archive, mark)?;
                sh.archive.ledger.set_pending(mark)?;
            }
            t.is_some()
        };
        let mut records: Vec<Record> = Vec::new();
        let mut rekeys = Vec::new();
        let mut batch_undated: Vec<Undated> = Vec::new();
        let mut no_body: Vec<(u32, String)> = Vec::new();
        // The UID of the message being stored, for an archive error's line.
        let mut storing = None;
        // Each message is written to `tmp/` as it arrives (without holding the archive, so the
        // other connections write meanwhile), its fsync handed to the pool, and the message
        // to the placer thread, which places it once the fsync is done (src/sink/placer.rs).
        let mut place_fetched = |u: Unplaced, fsync: Pending| -> Result<()> {
            let Unplaced {
                msg,
                uid,
                size: wire_size,
                flags,
                internal_date,
            } = u;
            let msg = fsync.synced(msg)?;
            let mut sh = lock(shared);
            let sh = &mut *sh;
            let identity = imap_identity(&key, name, selected.uidvalidity, uid);
            if let Some(old) = older_by_sha.get_mut(&msg.sha256).and_then(Vec::pop) {
                // The same message under the old UIDVALIDITY: re-key, do not store it again;
                // bring its flags up to date (the rename is made durable by the batch sync).
                msg.discard();
                let old_flags = Flags::from_imap_list(&old.flags);
                if old_flags != flags && !sh.archive.ledger.location_shared(&old.location)? {
                    sh.archive
                        .sink
                        .set_flags(name, &old.location, &old_flags, &flags)?;
                }
                rekeys.push((
                    old.identity.clone(),
                    identity,
                    selected.uidvalidity,
                    uid,
                    flags.to_imap_list(),
                    old.location.clone(),
                ));
                return Ok(());
            }
            let now = now_secs();
            let (size, sha256) = (msg.size, msg.sha256.clone());
            let record = |location: String| Record {
                account: key.clone(),
                mailbox: name.to_string(),
                uidl: None,
                uidvalidity: Some(selected.uidvalidity),
                uid: Some(uid),
                identity: identity.clone(),
                size,
                wire_size: Some(wire_size),
                sha256: sha256.clone(),
                internal_date,
                flags: flags.to_imap_list(),
                location,
                stored_at: now,
                verified: true,
            };
            if plan.imap.dedup {
                if let Some(existing) = sh.archive.ledger.record_by_sha256(&msg.sha256)? {
                    // The same bytes are stored already: record this mailbox's copy there.
                    msg.discard();
                    records.push(record(existing.location));
                    return Ok(());
                }
            }
            let meta = PlaceMeta {
                mailbox: name.clone(),
                flags: flags.clone(),
                internal_date,
                envelope_from: headers::envelope_from(&msg.header),
                identity: identity.clone(),
            };
            let stored = sh.archive.sink.place(msg, &meta)?;
            let record = record(stored.location);
            if appends {
                sh.archive.ledger.record_placed(&record)?;
            }
            records.push(record);
            Ok(())
        };
        let place = |u: Unplaced, fsync: Pending| -> Result<(), (u32, Error)> {
            let uid = u.uid;
            place_fetched(u, fsync).map_err(|e| (uid, e))
        };
        let (fetched, place_error) = placer::fetch_while_placing(
            |handoff| {
                client.fetch_bodies(&uids, &mut |f: Fetched<'_>| -> Result<(), FetchFailure> {
                    if let Some(sent) = f.no_body {
                        // Nothing to store: this UID's failure (below), tried again next run.
                        lock(shared).progress.message_done(f.size);
                        no_body.push((f.uid, sent));
                        return Ok(());
                    }
                    storing = Some(f.uid);
                    // The listing's INTERNALDATE when this answer lacks a valid one.
                    let listed = batch
                        .iter()
                        .find(|m| m.uid == f.uid)
                        .and_then(|m| m.internal_date);
                    let internal_date = match f.internal_date.or(listed) {
                        Some(t) => t,
                        None => {
                            let (t, from) = headers::fallback_date(f.body, now_secs());
                            batch_undated.push(Undated {
                                uid: f.uid,
                                sent: f.bad_internal_date.unwrap_or_default(),
                                from,
                            });
                            t
                        }
                    };
                    let mut staged = lock(shared).archive.sink.stage(name)?;
                    let path = staged.path().to_path_buf();
                    std::io::Write::write_all(&mut staged, f.body)
                        .map_err(|e| Error::archive_io(&path, e))?;
                    let (msg, file) = staged
                        .finish_unsynced()
                        .map_err(|e| Error::archive_io(&path, e))?;
                    let fsync = FsyncPool::global().submit(file);
                    lock(shared).progress.message_done(f.size);
                    let u = Unplaced {
                        msg,
                        uid: f.uid,
                        size: f.size,
                        flags: f.flags,
                        internal_date,
                    };
                    if !handoff.send(u, fsync) {
                        // Placing failed: its error (below) is the one reported.
                        return Err(FetchFailure::Archive(Error::Usage(
                            "placing stopped".into(),
                        )));
                    }
                    Ok(())
                })
            },
            place,
            |u: Unplaced, fsync: Pending| fsync.discard(u.msg),
        );
        let result = match place_error {
            Some((uid, e)) => {
                storing = Some(uid);
                Err(FetchFailure::Archive(e))
            }
            None => fetched,
        };
        // Durable first, then recorded: whatever was placed before an error is kept.
        {
            let mut sh = lock(shared);
            let tails = sh.archive.sink.sync()?;
            sh.archive.ledger.record_batch(&records, &tails)?;
            sh.archive.ledger.update_records(&[], &rekeys)?;
            mreport.fetched += records.len() as u64;
            mreport.fetched_bytes += records.iter().map(|r| r.size).sum::<u64>();
            mreport.already_archived += rekeys.len() as u64;
            // The ledger says which date each stored message without a valid INTERNALDATE
            // got (a note: the record's own date column holds the date used).
            let stored: std::collections::HashSet<u32> =
                records.iter().filter_map(|r| r.uid).collect();
            for u in batch_undated.drain(..).filter(|u| stored.contains(&u.uid)) {
                let text = format!(
                    "mailbox {name} UIDVALIDITY {} UID {}: no valid INTERNALDATE (the server sent {}); dated from {}",
                    selected.uidvalidity,
                    u.uid,
                    u.sent,
                    match u.from {
                        headers::DateSource::DateHeader => "its Date: header",
                        _ => "the archiving time",
                    }
                );
                sh.archive.ledger.note_once(&key, &text, now_secs())?;
                match u.from {
                    headers::DateSource::DateHeader => mreport.dated_from_header += 1,
                    _ => mreport.dated_at_archiving += 1,
                }
                undated.push(u);
            }
            for (uid, sent) in no_body.drain(..) {
                mailbox_failed = true;
                sh.report.failures.push(Failure {
                    mailbox: name.to_string(),
                    message: format!("UID {uid}"),
                    error: format!(
                        "{account}: mailbox {name} UID {uid}: the server sent no message ({sent}); the next run tries again"
                    ),
                });
            }
        }
        match result {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                // Asked for, not returned (expunged meanwhile, or an answer the reader could
                // not tie to its UID): the mailbox's state is not recorded, so the next run
                // lists it again and fetches what is still there.
                mailbox_failed = true;
                // Expunged meanwhile (no longer listed: said), or held back by the server (a
                // failure of that UID, named and retried next run).
                let still = match client.uids_present(&missing) {
                    Ok(present) => present,
                    // The check failed: count them all as failures; the next run tells.
                    Err(_) => missing.iter().copied().collect(),
                };
                let gone: Vec<String> = missing
                    .iter()
                    .filter(|u| !still.contains(u))
                    .map(|u| format!("UID {u}"))
                    .collect();
                let mut sh = lock(shared);
                if !gone.is_empty() {
                    mreport.on_server = mreport.on_server.saturating_sub(gone.len() as u64);
                    sh.report.warnings.push(format!(
                        "{account}: mailbox {name}: {} expunged on the server during the run: not archived",
                        gone.join(", ")
                    ));
                }
                for uid in &still {
                    sh.report.failures.push(Failure {
                        mailbox: name.to_string(),
                        message: format!("UID {uid}"),
                        error: format!(
                            "{account}: mailbox {name} UID {uid}: the server did not return this message, which it still holds; the next run asks again"
                        ),
                    });
                }
            }
            Err(FetchFailure::Archive(e)) => {
                // Name the message being stored (`storing`, set by the closure above).
                let what = match storing {
                    Some(uid) => format!("{account} mailbox {name} UID {uid}"),
                    None => format!("{account} mailbox {name}"),
                };
                count_stored(shared, &mreport);
                return Err(SyncError::Fatal(crate::archive::writer::storing(e, &what)));
            }
            Err(FetchFailure::Imap(e)) => {
                // The first message of the batch not handed over (delivery order is the
                // server's, not necessarily the batch's).
                let done: std::collections::HashSet<u32> = records
                    .iter()
                    .filter_map(|r| r.uid)
                    .chain(rekeys.iter().map(|r| r.3))
                    .collect();
                // A message over the limit is that message's failure; a `NO`/`BAD` answers
                // the whole `UID FETCH` of the batch: every message of it not stored.
                let too_large = match &e {
                    ImapError::TooLarge { uid: Some(u), .. } => Some(*u),
                    _ => None,
                };
                let unstored: Vec<u32> = batch
                    .iter()
                    .map(|m| m.uid)
                    .filter(|u| !done.contains(u))
                    .collect();
                // A refusal of the batch is about the command (it names every UID); anything
                // else (a lost connection, a literal over the limit) is said at the message
                // it stopped at.
                let batch_refused = match &e {
                    ImapError::No { text, .. } | ImapError::Bad { text, .. } => {
                        !wider_than_mailbox(&e, text)
                    }
                    ImapError::Unusable { .. } => true,
                    _ => false,
                };
                let context = match (too_large, unstored.first()) {
                    (Some(u), _) => format!("{ctx} UID {u}"),
                    (None, _) if batch_refused => ctx.clone(),
                    (None, at) => format!("{ctx} UID {}", at.copied().unwrap_or_default()),
                };
                match classify(&account, &context, e) {
                    SyncError::Mailbox(text) => {
                        mailbox_failed = true;
                        // The mailbox stops here. Each message it leaves unfetched is a
                        // failure, named, so that `on server = fetched + already + failed`
                        // holds; stderr groups them (`cli::render::print_run`).
                        let refused: Vec<u32> = match too_large {
                            Some(u) => vec![u],
                            None => unstored.clone(),
                        };
                        let stopped = format!(
                            "{account}: {ctx}: not fetched: the fetch of this mailbox stopped at an earlier failure; the next run tries again"
                        );
                        let rest = unstored
                            .iter()
                            .copied()
                            .filter(|u| !refused.contains(u))
                            .chain(to_fetch[rest_from..].iter().map(|m| m.uid));
                        let mut sh = lock(shared);
                        for uid in &refused {
                            sh.report.failures.push(Failure {
                                mailbox: name.to_string(),
                                message: format!("UID {uid}"),
                                error: text.clone(),
                            });
                        }
                        for uid in rest {
                            sh.report.failures.push(Failure {
                                mailbox: name.to_string(),
                                message: format!("UID {uid}"),
                                error: stopped.clone(),
                            });
                        }
                        break;
                    }
                    fatal => {
                        count_stored(shared, &mreport);
                        return Err(fatal);
                    }
                }
            }
        }
    }

    // --mirror: remove what the server deleted, only after this complete listing. Messages
    // `prune` deleted from the server (recorded with their deletion) are what the archive is
    // for: they stay.
    if plan.imap.mirror && !mbplan.gone.is_empty() && !mailbox_failed {
        let mut sh = lock(shared);
        let times = sh.archive.ledger.stored_times(&key)?;
        // A ledger once found older than the archive may lack the deletions prune recorded
        // since its copy was taken: copies it recorded before then are never removed.
        let trusted_after: i64 = sh
            .archive
            .ledger
            .meta(crate::archive::OLDER_LEDGER_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::MIN);
        let (gone, kept): (Vec<String>, Vec<String>) = mbplan
            .gone
            .iter()
            .filter(|i| !matches!(times.get(i.as_str()), Some((_, Some(_)))))
            .cloned()
            .partition(|i| {
                times
                    .get(i.as_str())
                    .is_some_and(|(at, _)| *at > trusted_after)
            });
        if !kept.is_empty() {
            sh.report.warnings.push(format!(
                "{account}: {name}: --mirror kept {} archived message(s) gone from the server: they were recorded before the ledger was found older than the archive, so a deletion by prune cannot be told from one on the server",
                kept.len()
            ));
        }
        let mut removed = Vec::new();
        for identity in &gone {
            let r = by_identity[identity.as_str()];
            // A file another mailbox's record still points at (`--dedup`) stays.
            if sh.archive.ledger.location_shared(&r.location)?
                || sh
                    .archive
                    .sink
                    .remove(name, &r.location, &Flags::from_imap_list(&r.flags))?
            {
                removed.push(identity.clone());
            }
        }
        sh.archive.sink.sync()?;
        sh.archive.ledger.remove_records(&gone)?;
        mreport.removed = removed.len() as u64;
    }

    let mut sh = lock(shared);
    if !undated.is_empty() {
        let list: Vec<(u32, String, bool)> = undated
            .into_iter()
            .map(|u| (u.uid, u.sent, u.from == headers::DateSource::DateHeader))
            .collect();
        sh.report
            .warnings
            .push(undated_warning(&account, name.as_str(), &list));
    }
    // The state as EXAMINE saw it (after the server synced its view of the mailbox, which
    // can move HIGHESTMODSEQ past what STATUS showed before): the next run's STATUS then
    // matches it when nothing changed. Written only when it changed, so a run with nothing
    // new changes no byte of the archive.
    let seen = MailboxNow {
        uidvalidity: selected.uidvalidity,
        uidnext: selected.uidnext,
        highestmodseq: selected.highestmodseq,
        messages: selected.exists,
    };
    let same_state = known.as_ref().is_some_and(|k| {
        k.uidvalidity == seen.uidvalidity
            && k.uidnext == seen.uidnext
            && k.highestmodseq == seen.highestmodseq
            && k.messages == Some(seen.messages)
    });
    if !mailbox_failed && !same_state {
        sh.archive
            .ledger
            .set_mailbox_state(&key, name.as_str(), &seen)?;
    }
    sh.report.listed += mreport.on_server;
    sh.report.fetched += mreport.fetched;
    sh.report.fetched_bytes += mreport.fetched_bytes;
    sh.report.already_archived += mreport.already_archived;
    sh.report.flags_updated += mreport.flags_updated;
    sh.report.removed += mreport.removed;
    sh.report.mailboxes.push(mreport);
    Ok(())
}

/// How a `fetch_bodies` call failed: the server, or storing (the callback).
pub enum FetchFailure {
    Imap(ImapError),
    Archive(Error),
}

impl From<ImapError> for FetchFailure {
    fn from(e: ImapError) -> Self {
        FetchFailure::Imap(e)
    }
}

impl From<Error> for FetchFailure {
    fn from(e: Error) -> Self {
        FetchFailure::Archive(e)
    }
}

#[cfg(test)]
mod tests {
    use super::undated_warning;

    #[test]
    fn undated_warnings() {
        let u = |uid: u32, sent: &str, header: bool| (uid, sent.to_string(), header);
        assert_eq!(
            undated_warning("a@h", "INBOX", &[u(7, "NIL", true)]),
            "a@h: mailbox INBOX: 1 message had no valid INTERNALDATE; dated from their Date: header (1) or the archiving time (0): UID 7 (NIL)"
        );
        // Sorted by UID, whatever the delivery order.
        assert_eq!(
            undated_warning(
                "a@h",
                "Sent",
                &[u(9, "nothing", false), u(4, "\"garbage\"", true)]
            ),
            "a@h: mailbox Sent: 2 messages had no valid INTERNALDATE; dated from their Date: header (1) or the archiving time (1): UID 4 (\"garbage\"), UID 9 (nothing)"
        );
        let many: Vec<_> = (1..=12).map(|i| u(i, "NIL", false)).collect();
        let w = undated_warning("a@h", "INBOX", &many);
        assert!(
            w.ends_with("(12): UID 1 (NIL), UID 2 (NIL), UID 3 (NIL), UID 4 (NIL), UID 5 (NIL), UID 6 (NIL), UID 7 (NIL), UID 8 (NIL), UID 9 (NIL), UID 10 (NIL), and 2 more"),
            "{w}"
        );
    }
}
