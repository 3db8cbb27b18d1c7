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
//! 3. else APPEND, then record the upload (one durable commit) before the next message.
//!
//! Order is important: an APPEND is recorded only after the server confirmed it; a run killed
//! between the two leaves a message on the server without a record, which step 2 finds on the
//! next run.
//!
//! The state (uploads ledger) is not in the archive, which a restore only reads: it is
//! `$XDG_STATE_HOME/mailkeep/uploads.sqlite` ([`crate::config::restore_state_file`]), keyed by
//! the target account's ledger key. Records of a target mailbox whose UIDVALIDITY changed
//! (it was deleted and recreated) no longer count.
//!
//! Flags: `\Recent` is never sent (it is not a flag one can set); `\Deleted` is not restored
//! (a message marked deleted in the archive is uploaded without it, and counted), so a restore
//! never hands an expunge-in-waiting to the server. Messages the server refuses (`NO`, `BAD`:
//! too big, quota, NUL bytes) are reported by mailbox and archive place and the run goes on
//! (exit 1); a lost connection stops the run (exit 4) and a rerun resumes.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use super::imap::{connect, imap_error, read_secret};
use super::now_secs;
use super::restore_plan::{self, MailboxMatch, Presence, TargetMessage};
use crate::config::{Output, RestorePlan};
use crate::error::{self, Error, Exit, Result};
use crate::imap::{
    mailbox_wire_name, wire_name_substitutions, Appended, ImapClient, ImapError, MailboxInfo,
    Namespace, SpecialUse,
};
use crate::ledger::{Ledger, Upload};
use crate::message::{lf_to_crlf, normalize, Flag, Flags, MailboxName};
use crate::report::{Failure, RestoreMailboxReport, RestoreReport};
use crate::source::{ArchiveSource, ArchivedMessage, DateSource};

/// How often a throttled APPEND (`NO ... Suggested Backoff Time`, case 23) is tried again, and
/// the longest wait honoured.
const THROTTLE_RETRIES: usize = 5;
const THROTTLE_MAX_WAIT: Duration = Duration::from_secs(60);

/// Opens a message source (an archive, or a server for `migrate`). Called once per
/// connection the run uses; each call gives a fresh reader.
pub type SourceOpener<'a> = dyn Fn() -> Result<Box<dyn ArchiveSource + Send>> + Sync + 'a;

/// Runs a restore as planned. Always returns a report; its `exit` says how it ended.
pub fn restore(plan: &RestorePlan) -> RestoreReport {
    restore_with(plan, "restore", &|| crate::source::open(&plan.archive))
}

/// Runs a restore from the source `open` gives (`command` names the run in its report:
/// `restore`, `migrate`). Always returns a report; its `exit` says how it ended.
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
        Ok(()) if !report.failures.is_empty() => Exit::Partial,
        Ok(()) => Exit::Ok,
    };
    report.exit_code = report.exit.code();
    report
}

/// Prints a restore's report: warnings and failures on stderr (one line each), then the
/// summary line (after the plan table for `--dry-run`), or the JSON object with `--json`.
pub fn print(report: &RestoreReport, out: Output) {
    let mut stderr = std::io::stderr();
    if !out.quiet {
        for w in &report.warnings {
            let _ = writeln!(stderr, "mailkeep: warning: {w}");
        }
    }
    for f in &report.failures {
        let _ = writeln!(stderr, "mailkeep: {} {}: {}", f.mailbox, f.message, f.error);
    }
    if let Some(e) = &report.error {
        let _ = writeln!(stderr, "mailkeep: {e}");
    }
    let text = if out.json {
        serde_json::to_string(report).expect("a report is plain data")
    } else if out.quiet || (report.error.is_some() && report.uploaded == 0 && !report.dry_run) {
        return;
    } else if report.dry_run {
        format!("{}{report}", report.plan_table())
    } else {
        report.to_string()
    };
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    if let Some(line) = written.err().as_ref().and_then(error::stdout_failure) {
        let _ = writeln!(stderr, "{line}");
    }
}

/// A failure while restoring one mailbox: of this mailbox only (the run goes on), or of the
/// run (connection lost, state file unwritable).
enum Step {
    Mailbox(String),
    Fatal(Error),
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        Step::Fatal(e)
    }
}

/// NO/BAD concern the mailbox; anything else (connection, protocol) the run.
fn classify(account: &str, context: &str, e: ImapError) -> Step {
    match e {
        ImapError::No { .. } | ImapError::Bad { .. } => {
            Step::Mailbox(imap_error(account, context, e).to_string())
        }
        other => Step::Fatal(imap_error(account, context, other)),
    }
}

/// One target mailbox during the run (several source mailboxes may map onto it).
struct TargetState {
    info: MailboxInfo,
    /// UIDVALIDITY when known (after STATUS; `None` in a dry run for a missing mailbox).
    uidvalidity: Option<u32>,
    matcher: MailboxMatch,
    /// Created by this run (or, in a dry run, would be).
    created: bool,
}

/// What the whole run shares.
struct Ctx<'a> {
    plan: &'a RestorePlan,
    client: ImapClient,
    /// `None` only in a dry run without a state file.
    ledger: Option<Ledger>,
    account: String,
    key: String,
    ns: Namespace,
    /// Wire names of the target's mailboxes at the start.
    existing: Vec<String>,
    special: Vec<(SpecialUse, MailboxName)>,
    targets: HashMap<String, TargetState>,
}

fn run(plan: &RestorePlan, open: &SourceOpener<'_>, report: &mut RestoreReport) -> Result<()> {
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
    let special = listed
        .iter()
        .filter(|m| m.selectable)
        .filter_map(|m| Some((m.special_use?, m.name.clone())))
        .collect();
    let mut ctx = Ctx {
        plan,
        client,
        ledger,
        key: plan.target.spec.ledger_key(),
        account,
        ns,
        existing: listed.into_iter().map(|m| m.wire).collect(),
        special,
        targets: HashMap::new(),
    };
    for mb in &mailboxes {
        let mut mreport = RestoreMailboxReport {
            mailbox: mb.to_string(),
            ..RestoreMailboxReport::default()
        };
        let r = restore_mailbox(&mut ctx, source.as_mut(), mb, &mut mreport, report);
        report.read += mreport.read;
        report.uploaded += mreport.uploaded;
        report.uploaded_bytes += mreport.uploaded_bytes;
        report.to_upload += mreport.to_upload;
        report.already_present += mreport.already_present;
        report.found_on_target += mreport.found_on_target;
        report.failed += mreport.failed;
        report.skipped += mreport.skipped;
        report.mailboxes.push(mreport);
        match r {
            Ok(()) => {}
            Err(Step::Mailbox(e)) => report.failures.push(Failure {
                mailbox: mb.to_string(),
                message: String::new(),
                error: e,
            }),
            Err(Step::Fatal(e)) => return Err(e),
        }
    }
    report.warnings.extend(source.warnings());
    let _ = ctx.client.logout();
    Ok(())
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

/// The target mailbox for `wire`, set up on first use: created when missing (not in a dry
/// run), its UIDVALIDITY read, its upload records loaded.
fn target_state<'c>(ctx: &'c mut Ctx<'_>, wire: &str) -> Result<&'c mut TargetState, Step> {
    if !ctx.targets.contains_key(wire) {
        let exists = ctx.existing.iter().any(|w| {
            w == wire || (w.eq_ignore_ascii_case("INBOX") && wire.eq_ignore_ascii_case("INBOX"))
        });
        let info = MailboxInfo::from_list(wire, ctx.ns.delimiter, Vec::new());
        let mut matcher = MailboxMatch::default();
        let mut uidvalidity = None;
        if !exists && !ctx.plan.dry_run {
            ctx.client
                .create_mailbox(wire)
                .map_err(|e| classify(&ctx.account, &format!("CREATE {}", info.name), e))?;
        }
        if exists || !ctx.plan.dry_run {
            let st = ctx
                .client
                .status(&info)
                .map_err(|e| classify(&ctx.account, &format!("STATUS {}", info.name), e))?;
            uidvalidity = Some(st.uidvalidity);
        }
        if exists {
            // Records made under another UIDVALIDITY are of a mailbox since deleted.
            let mut recorded: HashMap<String, u64> = HashMap::new();
            if let Some(l) = &ctx.ledger {
                for ((sha, v), n) in l.upload_counts(&ctx.key, wire)? {
                    if v.is_none() || v == uidvalidity {
                        *recorded.entry(sha).or_default() += n;
                    }
                }
            }
            matcher = MailboxMatch::new(recorded);
        } else {
            // A mailbox that did not exist holds nothing, whatever was recorded.
            matcher.set_listing(Vec::new());
        }
        ctx.targets.insert(
            wire.to_string(),
            TargetState {
                info,
                uidvalidity,
                matcher,
                created: !exists,
            },
        );
    }
    Ok(ctx.targets.get_mut(wire).expect("inserted above"))
}

fn restore_mailbox(
    ctx: &mut Ctx<'_>,
    source: &mut (dyn crate::source::ArchiveSource + Send),
    mb: &MailboxName,
    mreport: &mut RestoreMailboxReport,
    report: &mut RestoreReport,
) -> Result<(), Step> {
    let mapped = restore_plan::map_mailbox(mb, &ctx.plan.rules, &ctx.special);
    let levels: Vec<&str> = mapped.levels.iter().map(String::as_str).collect();
    let wire = mailbox_wire_name(&levels, &ctx.ns);
    mreport.target = MailboxName::new(&mapped.levels.join("/")).to_string();
    mreport.target_wire = wire.clone();
    mreport.rule = mapped.rule.to_string();
    for level in wire_name_substitutions(&levels, &ctx.ns) {
        report.warnings.push(format!(
            "{mb}: the folder level `{level}` contains the server's hierarchy delimiter; it is created as `{wire}`"
        ));
    }
    let state = target_state(ctx, &wire)?;
    let created = state.created;
    let uidvalidity = state.uidvalidity;
    mreport.created = created;
    // Messages recorded by their source identity (under the mailbox's current UIDVALIDITY)
    // are skipped unread; a server source does not even fetch them.
    let mut known: HashSet<String> = HashSet::new();
    if let (false, Some(l)) = (created, &ctx.ledger) {
        for (id, v) in l.upload_sources(&ctx.key, &wire)? {
            if v.is_none() || v == uidvalidity {
                known.insert(id);
            }
        }
    }
    source.skip_known(&known);

    let mut stop: Option<Step> = None;
    let mut deleted_dropped = 0u64;
    let mut without_date = 0u64;
    let mut known_here = 0u64;
    let counts = source.messages(mb, &mut |m: ArchivedMessage| -> Result<()> {
        mreport.read += 1;
        if m.source_id.as_ref().is_some_and(|id| known.contains(id)) {
            known_here += 1;
            return Ok(());
        }
        match restore_message(ctx, &wire, mb, &m, mreport, report) {
            Ok(outcome) => {
                if outcome.deleted_dropped {
                    deleted_dropped += 1;
                }
                if outcome.without_date {
                    without_date += 1;
                }
                Ok(())
            }
            Err(step) => {
                stop = Some(step);
                // Stops the reading; the real error is in `stop`.
                Err(Error::Usage(String::new()))
            }
        }
    });
    report.deleted_flag_dropped += deleted_dropped;
    report.without_date += without_date;
    if let Some(step) = stop {
        return Err(step);
    }
    let counts = counts?;
    mreport.read += counts.known;
    mreport.already_present += counts.known + known_here;
    mreport.skipped = counts.skipped.len() as u64;
    for (reason, n) in counts.skipped_by_reason() {
        report.warnings.push(format!(
            "{mb}: {n} message(s) skipped in the archive ({reason})"
        ));
    }
    if deleted_dropped > 0 {
        report.warnings.push(format!(
            "{mb}: {deleted_dropped} message(s) marked \\Deleted in the archive {} without that flag",
            if ctx.plan.dry_run { "would be uploaded" } else { "were uploaded" }
        ));
    }
    if without_date > 0 {
        report.warnings.push(format!(
            "{mb}: {without_date} message(s) had no usable date (no ledger, file time, From line or Date: header); the server {} the time of the upload",
            if ctx.plan.dry_run { "would give them" } else { "gave them" }
        ));
    }
    Ok(())
}

/// What happened to one message besides the counts.
#[derive(Default)]
struct Outcome {
    deleted_dropped: bool,
    without_date: bool,
}

fn restore_message(
    ctx: &mut Ctx<'_>,
    wire: &str,
    mb: &MailboxName,
    m: &ArchivedMessage,
    mreport: &mut RestoreMailboxReport,
    report: &mut RestoreReport,
) -> Result<Outcome, Step> {
    let mut outcome = Outcome::default();
    let account = ctx.account.clone();
    let raw_crlf = lf_to_crlf(&m.raw);
    let size = raw_crlf.len() as u64;
    let state = target_state(ctx, wire)?;
    if state.matcher.take_recorded(&m.sha256) {
        mreport.already_present += 1;
        return Ok(outcome);
    }
    let name = state.info.name.clone();
    if state.matcher.needs_listing() {
        let info = state.info.clone();
        let listing = list_target(&mut ctx.client, &account, &info)?;
        let state = target_state(ctx, wire)?;
        state.matcher.set_listing(listing);
    }
    let message_id = message_id_of(&m.raw);
    // Without Message-ID, only a message of the same size and INTERNALDATE can be this one.
    let date = if message_id.is_none() {
        m.internal_date
    } else {
        None
    };
    let presence = target_state(ctx, wire)?
        .matcher
        .presence(&m.sha256, size, date);
    let found = match presence {
        Presence::Recorded => {
            mreport.already_present += 1;
            return Ok(outcome);
        }
        Presence::Absent => None,
        Presence::Candidates(uids) => match &message_id {
            Some(id) => {
                let hits = ctx
                    .client
                    .search_message_id(wire, id)
                    .map_err(|e| classify(&account, &format!("{name}: SEARCH Message-ID"), e))?;
                uids.into_iter().find(|u| hits.contains(u))
            }
            None => same_content(&mut ctx.client, &account, &name, &uids, &m.sha256)?,
        },
    };
    let state = target_state(ctx, wire)?;
    let uidvalidity = state.uidvalidity;
    if let Some(uid) = found {
        state.matcher.claim(uid);
        mreport.already_present += 1;
        mreport.found_on_target += 1;
        if let (false, Some(l)) = (ctx.plan.dry_run, ctx.ledger.as_mut()) {
            l.record_upload(&Upload {
                account: ctx.key.clone(),
                mailbox: wire.to_string(),
                sha256: m.sha256.clone(),
                uidvalidity,
                uid: Some(uid),
                origin: m.origin.clone(),
                how: "found".into(),
                at: now_secs(),
                source: m.source_id.clone(),
            })?;
        }
        return Ok(outcome);
    }

    // Append.
    outcome.deleted_dropped = m.flags.contains(&Flag::Deleted);
    outcome.without_date = m.internal_date.is_none() || m.date_source == DateSource::Unknown;
    if ctx.plan.dry_run {
        mreport.to_upload += 1;
        return Ok(outcome);
    }
    let flags: Flags = m
        .flags
        .iter()
        .filter(|f| **f != Flag::Deleted)
        .cloned()
        .collect();
    match append_throttled(&mut ctx.client, wire, &raw_crlf, &flags, m.internal_date) {
        Ok(appended) => {
            let uid = uidvalidity.and_then(|v| appended.uid_if_valid(v));
            let l = ctx.ledger.as_mut().expect("a real run has a state file");
            l.record_upload(&Upload {
                account: ctx.key.clone(),
                mailbox: wire.to_string(),
                sha256: m.sha256.clone(),
                uidvalidity: uid.and(uidvalidity),
                uid,
                origin: m.origin.clone(),
                how: "appended".into(),
                at: now_secs(),
                source: m.source_id.clone(),
            })?;
            mreport.uploaded += 1;
            mreport.uploaded_bytes += m.raw.len() as u64;
            if !appended.dropped_keywords.is_empty() {
                report.warnings.push(format!(
                    "{mb} {}: keyword(s) {} cannot be sent over IMAP and were left out",
                    m.origin,
                    appended.dropped_keywords.join(", ")
                ));
            }
            Ok(outcome)
        }
        Err(e @ (ImapError::No { .. } | ImapError::Bad { .. })) => {
            mreport.failed += 1;
            report.failures.push(Failure {
                mailbox: mb.to_string(),
                message: m.origin.clone(),
                error: imap_error(&account, &format!("APPEND to {name}"), e).to_string(),
            });
            Ok(outcome)
        }
        Err(e) => Err(Step::Fatal(imap_error(
            &account,
            &format!(
                "APPEND to {name} ({}; a rerun checks whether the server stored it)",
                m.origin
            ),
            e,
        ))),
    }
}

/// APPEND, waiting and trying again while the server says it is throttling (case 23).
fn append_throttled(
    client: &mut ImapClient,
    wire: &str,
    raw_crlf: &[u8],
    flags: &Flags,
    date: Option<i64>,
) -> Result<Appended, ImapError> {
    let mut tries = 0;
    loop {
        match client.append(wire, raw_crlf, flags, date) {
            Err(e) if tries < THROTTLE_RETRIES && !e.is_permanent_refusal() => {
                let Some(wait) = e.suggested_backoff() else {
                    return Err(e);
                };
                tries += 1;
                std::thread::sleep(wait.min(THROTTLE_MAX_WAIT));
            }
            r => return r,
        }
    }
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
    Ok(listing
        .into_iter()
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
        if found.is_none() && crate::source::sha256_hex(&normalize(f.body)) == sha256 {
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
    let end = crate::source::header_end(raw);
    let parsed = mail_parser::MessageParser::default().parse_headers(&raw[..end])?;
    let id = parsed.message_id()?.trim();
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        assert_eq!(
            message_id_of(b"Subject: a\nMessage-ID: <x@y>\n\nMessage-ID: <z@w>\n").as_deref(),
            Some("x@y")
        );
        assert_eq!(message_id_of(b"Subject: a\n\nMessage-ID: <z@w>\n"), None);
        assert_eq!(message_id_of(b""), None);
    }
}
