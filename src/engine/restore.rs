//! `restore`: upload an archive's messages to an IMAP account (issue 4), with flags, keywords
//! and INTERNALDATE, never twice (DESIGN.md invariant 4).
//!
//! Per source mailbox: map its name ([`restore_plan::map_mailbox`]) and encode it for the
//! target ([`mailbox_wire_name`] with the personal namespace), create it when missing, then for
//! each message, in archive order:
//! 1. an upload record for (target account, target mailbox, content SHA-256) left unused:
//!    already present (records are counted: a mailbox holding the same bytes twice needs two);
//! 2. else the target mailbox's listing (taken once per mailbox, before this run appends to
//!    it) is searched for a message of the same RFC822.SIZE, which is confirmed by Message-ID
//!    (`UID SEARCH HEADER Message-ID`) or, for a message without Message-ID, by INTERNALDATE and
//!    content (its body fetched and hashed; case 21: two different messages are never taken
//!    for one another): found, recorded, not appended;
//! 3. else the message joins the mailbox's current batch. A batch (at most
//!    [`BATCH_MAX_MESSAGES`] messages and [`BATCH_MAX_BYTES`] octets) is appended pipelined
//!    ([`ImapClient::append_many`]: LITERAL+ `{N+}` literals sent back to back, answers read
//!    afterwards, in order), then every APPEND the server confirmed, and every message found in
//!    step 2, is recorded in one ledger commit.
//!
//! Order is important: an APPEND is recorded only after the server's tagged OK; a run killed
//! between the two leaves messages on the server without a record, which step 2 finds on the
//! next run. When the connection fails during a batch, the confirmed APPENDs are recorded
//! before the run stops; the others are of unknown outcome, and step 2 settles them next time.
//!
//! Several connections (`--jobs N`): the source mailboxes are grouped by target mailbox (the
//! mailboxes mapping onto one target share its matcher, so one worker does the whole group,
//! in archive order), and N workers take groups from a queue, each with its own IMAP
//! connection, its own reader of the source ([`SourceOpener`]) and its own connection to the
//! uploads ledger (SQLite WAL; writers wait for each other). CREATE is done by one connection
//! at a time, so parents are never created by two at once. A fatal error in one worker stops
//! the others after the message (or batch) at hand; no new mailbox is started. The report
//! lists the mailboxes in archive order, whichever worker did them.
//!
//! The state (uploads ledger) is not in the archive, which a restore only reads: it is
//! `$XDG_STATE_HOME/mailkeep/uploads.sqlite` ([`crate::engine::plans::restore_state_file`]), keyed by
//! the target account's ledger key. Records of a target mailbox whose UIDVALIDITY changed
//! (it was deleted and recreated) no longer count.
//!
//! Flags: `\Recent` is never sent (it is not a flag one can set); `\Deleted` is not restored
//! (a message marked deleted in the archive is uploaded without it, and counted), so a restore
//! never hands an expunge-in-waiting to the server. Messages the server refuses (`NO`, `BAD`:
//! too big, quota, NUL bytes) are reported by mailbox and archive place and the run goes on
//! (exit 1); throttling (`NO ... Suggested Backoff Time`, case 23) is waited out and the
//! throttled messages are sent again; a lost connection stops the run (exit 4) and a rerun
//! resumes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::imap::{connect, imap_error, read_secret};
use super::now_secs;
use super::restore_plan::{self, MailboxMatch, Presence, TargetMessage};
use crate::archive::ledger::{Ledger, Upload, UploadRow};
use crate::archive::reader::{ArchiveSource, ArchivedMessage, DateSource};
use crate::core::credentials::Password;
use crate::core::error::{Error, Exit, Result};
use crate::core::fault::{self, FaultClass};
use crate::core::message::{lf_to_crlf, normalize, Flag, Flags, MailboxName};
use crate::engine::plans::RestorePlan;
use crate::engine::report::{Failure, RestoreMailboxReport, RestoreReport};
use crate::protocol::imap::{
    mailbox_wire_name, wire_name_substitutions, AppendDate, AppendItem, Appended, ImapClient,
    ImapError, MailboxInfo, Namespace, SpecialUse,
};

/// How often a throttled APPEND (`NO ... Suggested Backoff Time`, case 23) is tried again, and
/// the longest wait honoured.
const THROTTLE_RETRIES: usize = 5;
const THROTTLE_MAX_WAIT: Duration = Duration::from_secs(60);

/// A batch holds at most this many messages (appends and messages found on the target)...
pub const BATCH_MAX_MESSAGES: usize = 50;
/// ...and at most this many octets of messages to append (a larger message goes alone). It is
/// appended pipelined, then recorded in one ledger commit.
pub const BATCH_MAX_BYTES: usize = 8 * 1024 * 1024;

pub use crate::archive::reader::SourceOpener;

type Source = Box<dyn ArchiveSource + Send>;

/// Runs a restore as planned. Always returns a report; its `exit` says how it ended.
pub fn restore(plan: &RestorePlan) -> RestoreReport {
    restore_with(plan, "restore", &|| {
        crate::archive::reader::open(&plan.archive)
    })
}

/// Runs a restore from the source `open` gives (`command` names the run in its report:
/// `restore`, `migrate`), over `plan.jobs` connections at most. Always returns a report; its
/// `exit` says how it ended.
pub fn restore_with(plan: &RestorePlan, command: &str, open: &SourceOpener<'_>) -> RestoreReport {
    let started = Instant::now();
    let mut report = RestoreReport {
        command: command.into(),
        archive: plan.archive.clone(),
        target: plan.target.spec.account(),
        dry_run: plan.dry_run,
        state_file: plan.state_file.display().to_string(),
        ..RestoreReport::default()
    };
    let result = run(plan, open, &mut report);
    report.duration_secs = started.elapsed().as_secs_f64();
    report.exit = match &result {
        Err(e) => {
            report.error = Some(e.to_string());
            e.exit()
        }
        Ok(()) => match &report.over_quota {
            // The target account is full: what fit is stored and recorded, the rest waits
            // for a rerun (docs/servers.md, "Refusals and try-later").
            Some(words) => {
                report.error = Some(format!(
                    "{}: {} stored, {} pending: {} ({words})",
                    report.target,
                    report.uploaded,
                    report.pending,
                    FaultClass::TargetOverQuota.describe()
                ));
                FaultClass::TargetOverQuota.exit()
            }
            None if !report.failures.is_empty() => Exit::Partial,
            None => Exit::Ok,
        },
    };
    report.exit_code = report.exit.code();
    report
}

/// A failure while restoring one mailbox: of this mailbox only (the run goes on), or of the
/// run (connection lost, state file unwritable); or another worker's fatal error stopped
/// this one.
enum Step {
    Mailbox(String),
    Fatal(Error),
    Stopped,
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        Step::Fatal(e)
    }
}

/// NO/BAD concern the mailbox; anything else (connection, protocol) the run.
fn classify(account: &str, context: &str, e: ImapError) -> Step {
    match e {
        ImapError::No { .. } | ImapError::Bad { .. } | ImapError::Unusable { .. } => {
            Step::Mailbox(imap_error(account, context, e).to_string())
        }
        other => Step::Fatal(imap_error(account, context, other)),
    }
}

/// Where one source mailbox goes.
struct Destination {
    /// The target's wire name.
    wire: String,
    /// The target, decoded, levels joined with `/`.
    target: String,
    rule: &'static str,
    /// Levels whose delimiter was substituted.
    warnings: Vec<String>,
}

fn destination(
    mb: &MailboxName,
    plan: &RestorePlan,
    ns: &Namespace,
    special: &[(SpecialUse, MailboxName)],
) -> Destination {
    let mapped = restore_plan::map_mailbox(mb, &plan.rules, special);
    let levels: Vec<&str> = mapped.levels.iter().map(String::as_str).collect();
    let wire = mailbox_wire_name(&levels, ns);
    let warnings = wire_name_substitutions(&levels, ns)
        .into_iter()
        .map(|level| format!(
            "{mb}: the folder level `{level}` contains the server's hierarchy delimiter; it is created as `{wire}`"
        ))
        .collect();
    Destination {
        target: MailboxName::from_levels(&mapped.levels).to_string(),
        wire,
        rule: mapped.rule,
        warnings,
    }
}

/// The units of work: per target mailbox (in order of first appearance), the indexes of the
/// source mailboxes that map onto it, in archive order. INBOX is one mailbox whatever its case.
fn group_by_target(wires: &[&str]) -> Vec<Vec<usize>> {
    let key = |w: &str| {
        if w.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            w.to_string()
        }
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, w) in wires.iter().enumerate() {
        let g = *index.entry(key(w)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// What restoring one source mailbox gave; merged into the report in archive order.
#[derive(Default)]
struct MailboxOut {
    report: RestoreMailboxReport,
    failures: Vec<Failure>,
    warnings: Vec<String>,
    deleted_dropped: u64,
    without_date: u64,
    /// Messages dated by their file's mtime (see `SourceCounts::dated_from_mtime`).
    dated_from_mtime: u64,
}

/// What the workers share.
struct Shared<'p> {
    plan: &'p RestorePlan,
    account: String,
    key: String,
    ns: Namespace,
    /// Wire names of the target's mailboxes at the start.
    existing: Vec<String>,
    mailboxes: Vec<MailboxName>,
    dest: Vec<Destination>,
    /// Groups of source mailboxes (indexes) not started yet.
    queue: Mutex<VecDeque<Vec<usize>>>,
    /// Per source mailbox, once a worker is done with it.
    results: Mutex<Vec<Option<MailboxOut>>>,
    /// Held around CREATE: one connection at a time creates mailboxes (and their parents).
    create_lock: Mutex<()>,
    /// Set on a fatal error: the workers stop after the message at hand.
    stop: AtomicBool,
    fatal: Mutex<Option<Error>>,
    /// The server's words (`NO [OVERQUOTA] ...`) once an APPEND found the target account over
    /// quota: no APPEND is sent after that; the messages still to send are counted pending.
    over_quota: Mutex<Option<String>>,
    /// The sources' warnings and the workers' own (an extra connection refused, ...).
    warnings: Mutex<Vec<String>>,
}

impl Shared<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Keeps the first fatal error and tells every worker to stop.
    fn fail(&self, e: Error) {
        let mut f = lock(&self.fatal);
        if f.is_none() {
            *f = Some(e);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(plan: &RestorePlan, open: &SourceOpener<'_>, report: &mut RestoreReport) -> Result<()> {
    // One run at a time into one target account (two would both append what neither has
    // recorded yet); a dry run changes nothing and takes no lock.
    let _target_lock = if plan.dry_run {
        None
    } else {
        let dir = plan
            .state_file
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."));
        Some(crate::archive::lock::ArchiveLock::acquire_target(
            dir,
            &plan.target.spec.target_key(),
            &plan.target.spec.account(),
        )?)
    };
    let mut source = open()?;
    report.archive = source.describe();
    let mailboxes = source.mailboxes()?;
    let ledger = open_state(plan)?;
    let account = plan.target.spec.account();
    let secret = read_secret(&plan.target)?;
    let mut client = connect(&plan.target, &secret)?;
    let ns = client
        .personal_namespace()
        .map_err(|e| imap_error(&account, "NAMESPACE", e))?;
    let listed = client
        .list_mailboxes()
        .map_err(|e| imap_error(&account, "LIST", e))?;
    let special: Vec<(SpecialUse, MailboxName)> = listed
        .iter()
        .filter(|m| m.selectable)
        .filter_map(|m| Some((m.special_use?, m.name.clone())))
        .collect();
    let dest: Vec<Destination> = mailboxes
        .iter()
        .map(|mb| destination(mb, plan, &ns, &special))
        .collect();
    let groups = group_by_target(&dest.iter().map(|d| d.wire.as_str()).collect::<Vec<_>>());
    let jobs = plan.jobs.min(groups.len()).max(1);
    let shared = Shared {
        plan,
        key: plan.target.spec.target_key(),
        account,
        ns,
        existing: listed.into_iter().map(|m| m.wire).collect(),
        results: Mutex::new((0..mailboxes.len()).map(|_| None).collect()),
        mailboxes,
        dest,
        queue: Mutex::new(groups.into()),
        create_lock: Mutex::new(()),
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        over_quota: Mutex::new(None),
        warnings: Mutex::new(Vec::new()),
    };
    std::thread::scope(|s| {
        let mut first = Some((client, source, ledger));
        for _ in 0..jobs {
            let given = first.take();
            let (shared, secret) = (&shared, &secret);
            s.spawn(move || {
                let (client, source, ledger) = match given {
                    Some(x) => x,
                    None => match open_worker(shared, open, secret) {
                        Ok(Some(x)) => x,
                        Ok(None) => return,
                        Err(e) => return shared.fail(e),
                    },
                };
                work(shared, client, source, ledger);
            });
        }
    });

    let Shared {
        results,
        fatal,
        warnings,
        over_quota,
        ..
    } = shared;
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    for out in results.into_iter().flatten() {
        let m = &out.report;
        report.read += m.read;
        report.uploaded += m.uploaded;
        report.uploaded_bytes += m.uploaded_bytes;
        report.to_upload += m.to_upload;
        report.already_present += m.already_present;
        report.found_on_target += m.found_on_target;
        report.failed += m.failed;
        report.pending += m.pending;
        report.skipped += m.skipped;
        report.deleted_flag_dropped += out.deleted_dropped;
        report.without_date += out.without_date;
        report.dated_from_mtime += out.dated_from_mtime;
        report.mailboxes.push(out.report);
        report.failures.extend(out.failures);
        report.warnings.extend(out.warnings);
    }
    // Each reader reports what it saw; several readers of one archive see the same things.
    for w in warnings.into_inner().unwrap_or_else(|p| p.into_inner()) {
        if !report.warnings.contains(&w) {
            report.warnings.push(w);
        }
    }
    report.over_quota = over_quota.into_inner().unwrap_or_else(|p| p.into_inner());
    match fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// An extra worker's connection, source reader and ledger connection. `None` (with a
/// warning) when the server refuses one more connection or the source one more reader: the
/// run goes on with fewer workers.
fn open_worker(
    sh: &Shared<'_>,
    open: &SourceOpener<'_>,
    secret: &Password,
) -> Result<Option<(ImapClient, Source, Option<Ledger>)>> {
    let client = match connect(&sh.plan.target, secret) {
        Ok(c) => c,
        Err(e) => {
            lock(&sh.warnings).push(format!(
                "{}: an extra connection failed ({e}); continuing with fewer",
                sh.account
            ));
            return Ok(None);
        }
    };
    let source = match open() {
        Ok(s) => s,
        Err(e) => {
            lock(&sh.warnings).push(format!(
                "an extra reader of the source failed ({e}); continuing with fewer connections"
            ));
            let _ = client.logout();
            return Ok(None);
        }
    };
    let ledger = open_state(sh.plan)?;
    Ok(Some((client, source, ledger)))
}

/// One worker: takes groups of source mailboxes from the queue until it is empty or a
/// worker failed.
fn work(sh: &Shared<'_>, client: ImapClient, mut source: Source, ledger: Option<Ledger>) {
    let mut w = Worker {
        sh,
        client,
        ledger,
        targets: HashMap::new(),
    };
    'groups: while !sh.stopped() {
        let Some(group) = lock(&sh.queue).pop_front() else {
            break;
        };
        for i in group {
            if sh.stopped() {
                break 'groups;
            }
            let d = &sh.dest[i];
            let mut out = MailboxOut {
                report: RestoreMailboxReport {
                    mailbox: sh.mailboxes[i].to_string(),
                    target: d.target.clone(),
                    target_wire: d.wire.clone(),
                    rule: d.rule.to_string(),
                    ..RestoreMailboxReport::default()
                },
                warnings: d.warnings.clone(),
                ..MailboxOut::default()
            };
            let fatal = match w.restore_mailbox(source.as_mut(), i, &mut out) {
                Ok(()) | Err(Step::Stopped) => None,
                Err(Step::Mailbox(e)) => {
                    out.failures.push(Failure {
                        mailbox: sh.mailboxes[i].to_string(),
                        message: String::new(),
                        error: e,
                    });
                    None
                }
                Err(Step::Fatal(e)) => Some(e),
            };
            lock(&sh.results)[i] = Some(out);
            if let Some(e) = fatal {
                sh.fail(e);
                break 'groups;
            }
        }
    }
    // Each connection's reader walks the tree: a warning about it (a symbolic link skipped)
    // is said once, not once per connection.
    let mut warnings = lock(&sh.warnings);
    for line in source.warnings() {
        if !warnings.contains(&line) {
            warnings.push(line);
        }
    }
    drop(warnings);
    let _ = w.client.logout();
}

/// Opens the uploads ledger: created (folder 0700, file 0600) for a real run; read-only, and
/// only when it exists, for a dry run.
fn open_state(plan: &RestorePlan) -> Result<Option<Ledger>> {
    let file = &plan.state_file;
    if plan.dry_run {
        return if file.exists() {
            Ledger::open_read_only(file).map(Some)
        } else {
            Ok(None)
        };
    }
    if let Some(dir) = file.parent() {
        if !dir.is_dir() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::archive_io(dir, e))?;
        }
    }
    Ledger::open(file).map(Some)
}

/// One target mailbox during the run (several source mailboxes may map onto it).
struct TargetState {
    info: MailboxInfo,
    /// UIDVALIDITY when known (after STATUS; `None` in a dry run for a missing mailbox).
    uidvalidity: Option<u32>,
    matcher: MailboxMatch,
    /// Created by this run (or, in a dry run, would be).
    created: bool,
    /// The lowest UID an APPENDUID may name: UIDNEXT from STATUS, then one past the last
    /// trusted APPENDUID (RFC 3501 2.3.1.1: UIDs are assigned in strictly ascending order). An
    /// APPENDUID below it names another message: it is not recorded as the upload's UID.
    uid_floor: u32,
    /// Source identities whose recorded upload is on the target now (skipped unread).
    known_sources: HashSet<String>,
    /// Recorded uploads whose target message is gone (reported once, then uploaded again).
    gone: u64,
}

/// A message waiting in the batch to be appended.
struct PendingAppend {
    raw_crlf: Vec<u8>,
    flags: Flags,
    /// The INTERNALDATE and the zone to write it in ([`crate::core::headers::zone_of`]).
    date: Option<AppendDate>,
    sha256: String,
    origin: String,
    source: Option<String>,
    /// Its size in the archive (LF line ends), for the report.
    archive_bytes: u64,
}

/// The messages of one target mailbox decided but not yet appended and recorded.
#[derive(Default)]
struct Batch {
    appends: Vec<PendingAppend>,
    /// Octets of `appends` on the wire.
    bytes: usize,
    /// Messages found on the target, to record with the batch.
    found: Vec<Upload>,
}

impl Batch {
    fn is_full(&self) -> bool {
        self.appends.len() + self.found.len() >= BATCH_MAX_MESSAGES || self.bytes >= BATCH_MAX_BYTES
    }
}

/// One connection and what it knows of the target mailboxes it works on.
struct Worker<'s, 'p> {
    sh: &'s Shared<'p>,
    client: ImapClient,
    /// `None` only in a dry run without a state file.
    ledger: Option<Ledger>,
    targets: HashMap<String, TargetState>,
}

impl Worker<'_, '_> {
    /// The target mailbox for `wire`, set up on first use: created when missing (not in a
    /// dry run), its UIDVALIDITY read, its upload records loaded.
    fn target_state(&mut self, wire: &str) -> Result<&mut TargetState, Step> {
        if !self.targets.contains_key(wire) {
            let sh = self.sh;
            let mut exists = sh.existing.iter().any(|w| {
                w == wire || (w.eq_ignore_ascii_case("INBOX") && wire.eq_ignore_ascii_case("INBOX"))
            });
            let info = MailboxInfo::from_list(wire, sh.ns.delimiter, Vec::new());
            let mut matcher = MailboxMatch::default();
            let mut uidvalidity = None;
            let mut uid_floor = 1;
            if !exists && !sh.plan.dry_run {
                // One connection at a time: a parent this CREATE makes may be another
                // worker's target, or a parent of it.
                let _one = lock(&sh.create_lock);
                let created = self
                    .client
                    .create_mailbox(wire)
                    .map_err(|e| classify(&sh.account, &format!("CREATE {}", info.name), e))?;
                // Not created: it exists by now (made as another target's parent).
                exists = !created;
            }
            if let Some(marker) = inflight_marker(sh.plan, &sh.key, wire) {
                if exists && marker.exists() {
                    // The last run died with a batch in flight to this mailbox: let the server
                    // finish storing it before anything is listed or appended.
                    settle(&mut self.client, &sh.account, &info)?;
                    let _ = std::fs::remove_file(&marker);
                }
            }
            if exists || !sh.plan.dry_run {
                let st = self
                    .client
                    .status_or_examine(&info)
                    .map_err(|e| classify(&sh.account, &format!("STATUS {}", info.name), e))?;
                uidvalidity = Some(st.uidvalidity);
                uid_floor = st.uidnext.unwrap_or(1).max(1);
            }
            let mut known_sources = HashSet::new();
            let mut gone = 0u64;
            if exists {
                let rows = match &self.ledger {
                    Some(l) => l.upload_rows(&sh.key, wire)?,
                    None => Vec::new(),
                };
                // A record proves only that the copy was there once (DESIGN.md invariant 2):
                // the UIDs recorded under the mailbox's UIDVALIDITY are looked up now, and a
                // copy expunged since is uploaded again. Records made under another
                // UIDVALIDITY are of a mailbox since deleted; records without a UID (no
                // APPENDUID) are settled by the listing (Message-ID, size, content).
                let recorded_uids: Vec<u32> = rows
                    .iter()
                    .filter(|r| r.uidvalidity.is_some() && r.uidvalidity == uidvalidity)
                    .filter_map(|r| r.uid)
                    .collect();
                let present: HashSet<u32> = if recorded_uids.is_empty() {
                    HashSet::new()
                } else {
                    self.client
                        .examine(&info)
                        .map_err(|e| classify(&sh.account, &format!("EXAMINE {}", info.name), e))?;
                    self.client
                        .uids_held(&recorded_uids)
                        .map_err(|e| {
                            classify(&sh.account, &format!("{}: UID SEARCH", info.name), e)
                        })?
                        .into_iter()
                        .collect()
                };
                let (counts, sources, lost) = live_uploads(&rows, uidvalidity, &present);
                matcher = MailboxMatch::new(counts);
                known_sources = sources;
                gone = lost;
                // The target messages recorded uploads account for are never candidates for
                // another source message: an identical message of the archive not uploaded
                // yet would otherwise be taken as present (a rerun after a kill with --jobs).
                for uid in present {
                    matcher.claim(uid);
                }
            } else {
                // A mailbox that did not exist holds nothing, whatever was recorded.
                matcher.set_listing(Vec::new());
            }
            self.targets.insert(
                wire.to_string(),
                TargetState {
                    info,
                    uidvalidity,
                    matcher,
                    created: !exists,
                    uid_floor,
                    known_sources,
                    gone,
                },
            );
        }
        Ok(self.targets.get_mut(wire).expect("inserted above"))
    }

    /// Restores source mailbox `i` into its target, filling `out`.
    fn restore_mailbox(
        &mut self,
        source: &mut (dyn ArchiveSource + Send),
        i: usize,
        out: &mut MailboxOut,
    ) -> Result<(), Step> {
        let sh = self.sh;
        let mb = &sh.mailboxes[i];
        let wire = sh.dest[i].wire.as_str();
        let state = self.target_state(wire)?;
        let created = state.created;
        out.report.created = created;
        // Messages recorded by their source identity (under the mailbox's current
        // UIDVALIDITY) are skipped unread; a server source does not even fetch them.
        let known: HashSet<String> = if created {
            HashSet::new()
        } else {
            state.known_sources.clone()
        };
        let gone = std::mem::take(&mut state.gone);
        if gone > 0 {
            out.warnings.push(format!(
                "{}: {gone} message(s) recorded as uploaded are no longer in the target mailbox (expunged, or moved by another client): {}",
                state.info.name,
                if sh.plan.dry_run {
                    "they would be uploaded again"
                } else {
                    "uploaded again"
                }
            ));
        }
        source.skip_known(&known);

        let mut batch = Batch::default();
        let mut stop: Option<Step> = None;
        let mut known_here = 0u64;
        let counts = source.messages(mb, &mut |m: ArchivedMessage| -> Result<()> {
            let step = if sh.stopped() {
                Err(Step::Stopped)
            } else {
                out.report.read += 1;
                if m.source_id.as_ref().is_some_and(|id| known.contains(id)) {
                    known_here += 1;
                    return Ok(());
                }
                self.restore_message(wire, mb, &m, out, &mut batch)
                    .and_then(|()| match batch.is_full() {
                        true => self.flush(wire, mb, out, &mut batch),
                        false => Ok(()),
                    })
            };
            step.map_err(|s| {
                stop = Some(s);
                // Stops the reading; the real reason is in `stop`.
                Error::Usage(String::new())
            })
        });
        // What is in the batch was decided: append and record it, unless this connection or
        // the ledger just failed (then it was never sent, and the rerun does it).
        if !matches!(stop, Some(Step::Fatal(_))) {
            self.flush(wire, mb, out, &mut batch)?;
        }
        if let Some(step) = stop {
            return Err(step);
        }
        let mut counts = counts?;
        for s in counts.take_failures() {
            out.report.failed += 1;
            out.failures.push(Failure {
                mailbox: mb.to_string(),
                message: String::new(),
                error: s.to_string(),
            });
        }
        out.report.read += counts.known;
        out.report.already_present += counts.known + known_here;
        out.dated_from_mtime = counts.dated_from_mtime;
        if counts.dated_from_mtime > 0 {
            out.warnings.push(crate::engine::convert::mtime_warning(
                mb,
                counts.dated_from_mtime,
            ));
        }
        out.report.skipped = counts.skipped.len() as u64;
        for (reason, n) in counts.skipped_by_reason() {
            out.warnings.push(format!(
                "{mb}: {n} message(s) skipped in the archive ({reason})"
            ));
        }
        let dry_run = sh.plan.dry_run;
        if out.deleted_dropped > 0 {
            out.warnings.push(format!(
                "{mb}: {} message(s) marked \\Deleted in the archive {} without that flag",
                out.deleted_dropped,
                if dry_run {
                    "would be uploaded"
                } else {
                    "were uploaded"
                }
            ));
        }
        if out.without_date > 0 {
            out.warnings.push(format!(
                "{mb}: {} message(s) had no usable date (no ledger, file time, From line or Date: header); the server {} the time of the upload",
                out.without_date,
                if dry_run { "would give them" } else { "gave them" }
            ));
        }
        Ok(())
    }

    /// Decides about one message: already there (recorded, or found and added to the batch's
    /// records), or to append (added to the batch; in a dry run, counted).
    fn restore_message(
        &mut self,
        wire: &str,
        mb: &MailboxName,
        m: &ArchivedMessage,
        out: &mut MailboxOut,
        batch: &mut Batch,
    ) -> Result<(), Step> {
        let sh = self.sh;
        let account = sh.account.as_str();
        let raw_crlf = lf_to_crlf(&m.raw);
        let size = raw_crlf.len() as u64;
        let state = self.target_state(wire)?;
        if state.matcher.take_recorded(&m.sha256) {
            out.report.already_present += 1;
            return Ok(());
        }
        let name = state.info.name.clone();
        if state.matcher.needs_listing() {
            let info = state.info.clone();
            let listing = list_target(&mut self.client, account, &info)?;
            self.target_state(wire)?.matcher.set_listing(listing);
        }
        // Parsing the header is needed only when a target message has this size (never in a
        // mailbox this run created).
        let message_id = match self.target_state(wire)?.matcher.may_hold(size) {
            true => message_id_of(&m.raw),
            false => None,
        };
        // Without Message-ID, only a message of the same size and INTERNALDATE can be this one.
        let date = if message_id.is_none() {
            m.internal_date
        } else {
            None
        };
        let presence = self
            .target_state(wire)?
            .matcher
            .presence(&m.sha256, size, date);
        let found = match presence {
            Presence::Recorded => {
                out.report.already_present += 1;
                return Ok(());
            }
            Presence::Absent => None,
            Presence::Candidates(uids) => match &message_id {
                Some(id) => {
                    let hits = self
                        .client
                        .search_message_id(wire, id)
                        .map_err(|e| classify(account, &format!("{name}: SEARCH Message-ID"), e))?;
                    match uids.iter().copied().find(|u| hits.contains(u)) {
                        Some(uid) => Some(uid),
                        // A Message-ID the server's SEARCH does not match as written (spaces
                        // inside, `<a@ b >`, odd quoting): the same bytes are still the same
                        // message, so compare content with the same-size candidates.
                        None => same_content(&mut self.client, account, &name, &uids, &m.sha256)?,
                    }
                }
                None => same_content(&mut self.client, account, &name, &uids, &m.sha256)?,
            },
        };
        let state = self.target_state(wire)?;
        let uidvalidity = state.uidvalidity;
        if let Some(uid) = found {
            state.matcher.claim(uid);
            out.report.already_present += 1;
            out.report.found_on_target += 1;
            if !sh.plan.dry_run {
                batch.found.push(Upload {
                    account: sh.key.clone(),
                    mailbox: wire.to_string(),
                    sha256: m.sha256.clone(),
                    uidvalidity,
                    uid: Some(uid),
                    origin: m.origin.clone(),
                    how: "found".into(),
                    at: now_secs(),
                    source: m.source_id.clone(),
                });
            }
            return Ok(());
        }

        // Append.
        if m.flags.contains(&Flag::Deleted) {
            out.deleted_dropped += 1;
        }
        if m.internal_date.is_none() || m.date_source == DateSource::Unknown {
            out.without_date += 1;
        }
        if sh.plan.dry_run {
            out.report.to_upload += 1;
            return Ok(());
        }
        if lock(&sh.over_quota).is_some() {
            // No APPEND after the server said the account is full (one line in the report,
            // not one refusal per message); a rerun sends it.
            out.report.pending += 1;
            return Ok(());
        }
        // A batch never grows past BATCH_MAX_BYTES with a second message.
        if !batch.appends.is_empty() && batch.bytes + raw_crlf.len() > BATCH_MAX_BYTES {
            self.flush(wire, mb, out, batch)?;
        }
        batch.bytes += raw_crlf.len();
        batch.appends.push(PendingAppend {
            raw_crlf,
            flags: m
                .flags
                .iter()
                .filter(|f| **f != Flag::Deleted)
                .cloned()
                .collect(),
            // The zone of the message's own Date: (or Received:) header when that header gave
            // this date, so `Tue, 4 Mar 2014 10:00:00 +0100` is appended as 10:00 +0100.
            date: m.internal_date.map(|secs| AppendDate {
                secs,
                offset: crate::core::headers::zone_of(
                    &m.raw[..crate::archive::reader::header_end(&m.raw)],
                    secs,
                )
                .unwrap_or(0),
            }),
            sha256: m.sha256.clone(),
            origin: m.origin.clone(),
            source: m.source_id.clone(),
            archive_bytes: m.raw.len() as u64,
        });
        Ok(())
    }

    /// Appends the batch (pipelined, throttling waited out), then records what the server
    /// confirmed and what was found, in one ledger commit. A message the server refused is a
    /// failure of that message; a connection lost on the way is fatal, after the confirmed
    /// ones are recorded.
    fn flush(
        &mut self,
        wire: &str,
        mb: &MailboxName,
        out: &mut MailboxOut,
        batch: &mut Batch,
    ) -> Result<(), Step> {
        let pending = std::mem::take(&mut batch.appends);
        let mut records = std::mem::take(&mut batch.found);
        batch.bytes = 0;
        if pending.is_empty() && records.is_empty() {
            return Ok(());
        }
        let sh = self.sh;
        let (name, uidvalidity, mut uid_floor) = match self.targets.get(wire) {
            Some(t) => (t.info.name.to_string(), t.uidvalidity, t.uid_floor),
            None => (wire.to_string(), None, 1),
        };
        let items: Vec<AppendItem<'_>> = pending
            .iter()
            .map(|p| (p.raw_crlf.as_slice(), &p.flags, p.date))
            .collect();
        let marker = inflight_marker(sh.plan, &sh.key, wire);
        let results = if items.is_empty() {
            Vec::new()
        } else {
            if let Some(m) = &marker {
                // Best effort: without it a rerun right after a kill may append this batch
                // again while the server is still storing it.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(m)
                    .and_then(|mut f| writeln!(f, "{}\n{wire}", sh.key));
            }
            append_batch(&mut self.client, wire, &items)
        };
        let mut fatal: Option<(usize, &PendingAppend, ImapError)> = None;
        for (p, r) in pending.iter().zip(results) {
            match r {
                Ok(appended) => {
                    let uid = uidvalidity
                        .and_then(|v| appended.uid_if_valid(v))
                        .filter(|u| *u >= uid_floor);
                    if let Some(u) = uid {
                        uid_floor = u.saturating_add(1);
                    }
                    records.push(Upload {
                        account: sh.key.clone(),
                        mailbox: wire.to_string(),
                        sha256: p.sha256.clone(),
                        uidvalidity: uid.and(uidvalidity),
                        uid,
                        origin: p.origin.clone(),
                        how: "appended".into(),
                        at: now_secs(),
                        source: p.source.clone(),
                    });
                    out.report.uploaded += 1;
                    out.report.uploaded_bytes += p.archive_bytes;
                    if !appended.dropped_keywords.is_empty() {
                        out.warnings.push(format!(
                            "{mb} {}: keyword(s) {} cannot be sent over IMAP and were left out",
                            p.origin,
                            appended.dropped_keywords.join(", ")
                        ));
                    }
                }
                Err(ImapError::No { text, .. }) | Err(ImapError::Bad { text, .. })
                    if refusal_class(&text) == FaultClass::TargetOverQuota =>
                {
                    let mut q = lock(&sh.over_quota);
                    if q.is_none() {
                        *q = Some(format!("NO {}", fault::without_timing(&text)));
                    }
                    out.report.pending += 1;
                }
                Err(e @ (ImapError::No { .. } | ImapError::Bad { .. })) => {
                    out.report.failed += 1;
                    out.failures.push(Failure {
                        mailbox: mb.to_string(),
                        message: p.origin.clone(),
                        error: refusal_words(&sh.account, &name, e),
                    });
                }
                Err(e) => match &mut fatal {
                    Some((more, _, _)) => *more += 1,
                    None => fatal = Some((0, p, e)),
                },
            }
        }
        if let Some(t) = self.targets.get_mut(wire) {
            t.uid_floor = uid_floor;
        }
        if !records.is_empty() {
            let Some(l) = self.ledger.as_mut() else {
                return Err(Step::Fatal(Error::Usage(
                    "internal error: no uploads ledger in a real run".into(),
                )));
            };
            l.record_uploads(&records)?;
        }
        if fatal.is_none() && !items.is_empty() {
            // Every message of the batch answered and recorded: nothing left in flight.
            if let Some(m) = &marker {
                let _ = std::fs::remove_file(m);
            }
        }
        match fatal {
            None => Ok(()),
            Some((more, p, e)) => {
                let others = match more {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                Err(Step::Fatal(imap_error(
                    &sh.account,
                    &format!(
                        "APPEND to {name} ({}{others}; a rerun checks whether the server stored it)",
                        p.origin
                    ),
                    e,
                )))
            }
        }
    }
}

/// The class of a `NO`/`BAD` to APPEND ([`fault::classify`]).
fn refusal_class(text: &str) -> FaultClass {
    fault::classify(fault::Status::No, fault::Command::Append, text).class
}

/// How a refused APPEND is reported for its message: a refusal of that message in the
/// server's words (`refused by the server (alice@host:993): NO [TOOBIG] Message too large`;
/// Dovecot's timing left out), identical for
/// identical refusals so the human report can count them; a refusal that says more than that
/// (throttling still going on after the retries) keeps its wording.
fn refusal_words(account: &str, name: &str, e: ImapError) -> String {
    let (status, text) = match e {
        ImapError::No { text, .. } if refusal_class(&text).scope() == fault::Scope::Message => {
            ("NO", text)
        }
        ImapError::Bad { text, .. } => ("BAD", text),
        e => return imap_error(account, &format!("APPEND to {name}"), e).to_string(),
    };
    format!(
        "{} ({account}): {status} {}",
        FaultClass::MessageRefused.describe(),
        fault::without_timing(&text)
    )
}

/// Pipelined APPENDs of `items` to `wire` ([`ImapClient::append_many`]), one result per
/// item; messages refused for throttling (case 23) are sent again after the wait the server
/// asks for, up to [`THROTTLE_RETRIES`] times.
/// The marker of a batch sent to `wire` and not yet recorded: a file beside the uploads ledger,
/// `restore-inflight.<16 hex digits of SHA-256 of account and mailbox>`. A run that dies with a
/// batch in flight leaves it; the server may still be storing that batch (it has the whole
/// command even when the client is gone), so the next run waits for the mailbox to settle
/// ([`settle`]) before it lists it, instead of appending those messages a second time.
/// `None` in a dry run or without a state folder.
fn inflight_marker(plan: &RestorePlan, account: &str, wire: &str) -> Option<std::path::PathBuf> {
    if plan.dry_run {
        return None;
    }
    let dir = plan.state_file.parent()?;
    let digest = crate::archive::reader::sha256_hex(format!("{account}\0{wire}").as_bytes());
    Some(dir.join(format!("restore-inflight.{}", &digest[..16])))
}

/// How long a mailbox must keep the same UIDNEXT and message count before a run that found
/// an in-flight marker lists it ([`inflight_marker`]); and the most it waits.
const SETTLE_QUIET: Duration = Duration::from_millis(1500);
const SETTLE_MAX: Duration = Duration::from_secs(30);

/// Polls the STATUS of `info` (UIDNEXT, MESSAGES) until it has not changed for
/// [`SETTLE_QUIET`], or [`SETTLE_MAX`] has passed.
fn settle(client: &mut ImapClient, account: &str, info: &MailboxInfo) -> Result<(), Step> {
    let start = Instant::now();
    let mut last = None;
    let mut since = Instant::now();
    loop {
        let st = client
            .status_or_examine(info)
            .map_err(|e| classify(account, &format!("STATUS {}", info.name), e))?;
        let now = (st.uidnext, st.messages);
        if last != Some(now) {
            last = Some(now);
            since = Instant::now();
        } else if since.elapsed() >= SETTLE_QUIET {
            return Ok(());
        }
        if start.elapsed() >= SETTLE_MAX {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn append_batch(
    client: &mut ImapClient,
    wire: &str,
    items: &[AppendItem<'_>],
) -> Vec<Result<Appended, ImapError>> {
    let mut results = append_many(client, wire, items);
    for _ in 0..THROTTLE_RETRIES {
        let Some((again, wait)) = throttled(&results) else {
            break;
        };
        std::thread::sleep(wait);
        let retry: Vec<AppendItem<'_>> = again.iter().map(|&k| items[k]).collect();
        for (k, r) in again.into_iter().zip(append_many(client, wire, &retry)) {
            results[k] = r;
        }
    }
    results
}

/// [`ImapClient::append_many`], with a session unusable from the start as every item's error.
fn append_many(
    client: &mut ImapClient,
    wire: &str,
    items: &[AppendItem<'_>],
) -> Vec<Result<Appended, ImapError>> {
    match client.append_many(wire, items) {
        Ok(r) => r,
        Err(e) => {
            let why = e.to_string();
            let mut out = vec![Err(e)];
            out.extend((1..items.len()).map(|_| {
                Err(ImapError::Io(std::io::Error::other(format!(
                    "not sent: {why}"
                ))))
            }));
            out
        }
    }
}

/// The items refused for throttling (a `NO` with a suggested backoff that is not a permanent
/// refusal), and how long to wait before sending them again: the longest wait asked for, at
/// most [`THROTTLE_MAX_WAIT`]. `None` when there are none.
fn throttled(results: &[Result<Appended, ImapError>]) -> Option<(Vec<usize>, Duration)> {
    let mut wait = Duration::ZERO;
    let mut again = Vec::new();
    for (k, r) in results.iter().enumerate() {
        if let Err(e) = r {
            if let (false, Some(w)) = (e.is_permanent_refusal(), e.suggested_backoff()) {
                again.push(k);
                wait = wait.max(w);
            }
        }
    }
    (!again.is_empty()).then(|| (again, wait.min(THROTTLE_MAX_WAIT)))
}

/// What the recorded uploads to one target mailbox prove now, given the UIDs `present` there
/// (among those recorded under its current `uidvalidity`): per content, how many target
/// messages recorded uploads without a source identity account for; the source identities
/// whose upload is there; and how many recorded uploads name a message that is gone. A
/// target message counts once, whatever number of records name it. Pure.
fn live_uploads(
    rows: &[UploadRow],
    uidvalidity: Option<u32>,
    present: &HashSet<u32>,
) -> (HashMap<String, u64>, HashSet<String>, u64) {
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut sources = HashSet::new();
    let mut counted = HashSet::new();
    // What is gone and not uploaded again since (a later record of it is there): by source
    // identity, or by content for records without one.
    let mut gone_sources = HashSet::new();
    let mut gone_uids: HashMap<&str, HashSet<u32>> = HashMap::new();
    for r in rows {
        let (Some(v), Some(uid)) = (r.uidvalidity, r.uid) else {
            continue;
        };
        if Some(v) != uidvalidity {
            continue;
        }
        if !present.contains(&uid) {
            match &r.source {
                Some(id) => {
                    gone_sources.insert(id.as_str());
                }
                None => {
                    gone_uids.entry(&r.sha256).or_default().insert(uid);
                }
            }
            continue;
        }
        match &r.source {
            Some(id) => {
                sources.insert(id.clone());
            }
            None => {
                if counted.insert(uid) {
                    *counts.entry(r.sha256.clone()).or_default() += 1;
                }
            }
        }
    }
    let gone = gone_sources
        .iter()
        .filter(|s| !sources.contains(**s))
        .count() as u64
        + gone_uids
            .iter()
            .map(|(sha, uids)| {
                let live = counts.get(*sha).copied().unwrap_or(0);
                (uids.len() as u64).saturating_sub(live)
            })
            .sum::<u64>();
    (counts, sources, gone)
}

/// EXAMINE and list the target mailbox (UID, size, INTERNALDATE).
fn list_target(
    client: &mut ImapClient,
    account: &str,
    info: &MailboxInfo,
) -> Result<Vec<TargetMessage>, Step> {
    client
        .examine(info)
        .map_err(|e| classify(account, &format!("EXAMINE {}", info.name), e))?;
    let listing = client
        .list_messages(None)
        .map_err(|e| classify(account, &format!("{}: UID FETCH (listing)", info.name), e))?;
    // A message marked \Deleted is one EXPUNGE away from gone: never taken for a copy.
    Ok(listing
        .into_iter()
        .filter(|l| !l.flags.contains(&Flag::Deleted))
        .map(|l| TargetMessage {
            uid: l.uid,
            size: l.size,
            internal_date: l.internal_date,
        })
        .collect())
}

/// The first of `uids` (in the examined mailbox) whose content has `sha256` (stored form).
fn same_content(
    client: &mut ImapClient,
    account: &str,
    name: &MailboxName,
    uids: &[u32],
    sha256: &str,
) -> Result<Option<u32>, Step> {
    let mut found = None;
    let r = client.fetch_bodies(uids, &mut |f| -> Result<(), ImapError> {
        if found.is_none() && crate::archive::reader::sha256_hex(&normalize(f.body)) == sha256 {
            found = Some(f.uid);
        }
        Ok(())
    });
    r.map_err(|e| {
        classify(
            account,
            &format!("{name}: UID FETCH (comparing content)"),
            e,
        )
    })?;
    Ok(found)
}

/// The Message-ID of a message (without angle brackets), when it has a non-empty one.
fn message_id_of(raw: &[u8]) -> Option<String> {
    let end = crate::archive::reader::header_end(raw);
    let parsed = mail_parser::MessageParser::default().parse_headers(&raw[..end])?;
    let id = parsed.message_id()?.trim();
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uploads_whose_target_message_is_there_now_count() {
        let row = |sha: &str, v: Option<u32>, uid: Option<u32>, src: Option<&str>| UploadRow {
            sha256: sha.into(),
            uidvalidity: v,
            uid,
            source: src.map(str::to_string),
        };
        let rows = [
            row("aa", Some(7), Some(1), None),
            // The same target message recorded twice counts once.
            row("aa", Some(7), Some(1), None),
            row("aa", Some(7), Some(2), None),
            // Expunged since: gone.
            row("bb", Some(7), Some(3), None),
            row("cc", Some(7), Some(4), Some("imap:x INBOX 1 9")),
            row("dd", Some(7), Some(5), Some("imap:x INBOX 1 10")),
            // Another UIDVALIDITY (a mailbox since recreated), or no UID: proves nothing.
            row("ee", Some(6), Some(1), Some("imap:x INBOX 1 11")),
            row("ff", None, None, None),
        ];
        let present: HashSet<u32> = [1, 2, 4].into_iter().collect();
        let (counts, sources, gone) = live_uploads(&rows, Some(7), &present);
        assert_eq!(counts, HashMap::from([("aa".to_string(), 2)]));
        assert_eq!(sources, HashSet::from(["imap:x INBOX 1 9".to_string()]));
        assert_eq!(gone, 2);
        // Both uploaded again since (UIDs 8, 9): nothing is reported gone any more.
        let mut again = rows.to_vec();
        again.push(row("bb", Some(7), Some(8), None));
        again.push(row("dd", Some(7), Some(9), Some("imap:x INBOX 1 10")));
        let present: HashSet<u32> = [1, 2, 4, 8, 9].into_iter().collect();
        let (_, _, gone) = live_uploads(&again, Some(7), &present);
        assert_eq!(gone, 0);
        let (counts, sources, gone) = live_uploads(&rows, Some(7), &HashSet::new());
        assert!(counts.is_empty() && sources.is_empty());
        assert_eq!(gone, 5);
    }

    #[test]
    fn message_ids() {
        assert_eq!(
            message_id_of(b"Subject: a\nMessage-ID: <x@y>\n\nMessage-ID: <z@w>\n").as_deref(),
            Some("x@y")
        );
        assert_eq!(message_id_of(b"Subject: a\n\nMessage-ID: <z@w>\n"), None);
        assert_eq!(message_id_of(b""), None);
    }

    #[test]
    fn source_mailboxes_mapping_onto_one_target_are_one_unit_of_work() {
        // (target wire names per source mailbox, in archive order) -> groups of indexes
        let cases: Vec<(Vec<&str>, Vec<Vec<usize>>)> = vec![
            (vec![], vec![]),
            (
                vec!["INBOX", "Sent", "Archive"],
                vec![vec![0], vec![1], vec![2]],
            ),
            // `Sent` and `Sent Items` both go to the special-use Sent.
            (vec!["Sent", "INBOX", "Sent"], vec![vec![0, 2], vec![1]]),
            (vec!["inbox", "X", "INBOX"], vec![vec![0, 2], vec![1]]),
            (vec!["a", "A"], vec![vec![0], vec![1]]),
        ];
        for (wires, want) in cases {
            assert_eq!(group_by_target(&wires), want, "{wires:?}");
        }
    }

    #[test]
    fn throttled_appends_are_sent_again_after_the_longest_wait() {
        let no = |text: &str| -> Result<Appended, ImapError> {
            Err(ImapError::No {
                command: "APPEND".into(),
                text: text.into(),
            })
        };
        let ok = || -> Result<Appended, ImapError> { Ok(Appended::default()) };
        let slow = "Request is throttled. Suggested Backoff Time: 4000 milliseconds";
        let results = vec![
            ok(),
            no(slow),
            no("[OVERQUOTA] full"),
            no("Request is throttled. Suggested Backoff Time: 2 s"),
            no("[TOOBIG] Suggested Backoff Time: 1 s"),
            Err(ImapError::Bye("bye".into())),
        ];
        assert_eq!(
            throttled(&results),
            Some((vec![1, 3], Duration::from_millis(4000)))
        );
        assert_eq!(throttled(&[ok(), no("[OVERQUOTA] full")]), None);
        assert_eq!(
            throttled(&[no("Suggested Backoff Time: 900000 milliseconds")]),
            Some((vec![0], THROTTLE_MAX_WAIT))
        );
    }
}
