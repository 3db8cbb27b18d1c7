//! `prune`: free space on a server by deleting old messages whose exact bytes are verified in
//! the archive (issue 6).
//!
//! Order is important (DESIGN.md invariant 1): a message is a candidate only when the ledger
//! records it under the identity the server shows now (POP3: account and UIDL, with the size
//! the server reported; IMAP: account, mailbox, UIDVALIDITY and UID), its date is before the
//! cutoff, and its archived copy, read back from the archive, has the SHA-256 the ledger
//! recorded. Only then is it deleted on the server.
//!
//! And the record must prove the server's message is that copy (DESIGN.md invariant 2): an
//! unverified record (adopted without comparing, [`crate::archive::ledger::Record::verified`]) is
//! compared with the server's bytes first (IMAP `BODY.PEEK[]`; POP3 compares every candidate,
//! since a UIDL names a message only as far as the server keeps its word, RFC 1939 7), and
//! promoted when they match; a message whose bytes differ stays on the server and is reported.
//!
//! The deletion is recorded in the ledger (`deleted_at`) just *before* the server is asked,
//! and taken back when the server answers that it did not delete. A record without the
//! deletion would let a later `backup --mirror` take the message for one deleted by someone
//! else and remove its archived copy; so a run that dies between the server's confirmation and
//! the record must find the record already there. A record for a message the server kept only
//! makes `--mirror` keep its copy, which is harmless.
//!
//! The commands:
//! - IMAP: `UID STORE <set> +FLAGS.SILENT (\Deleted)`, then `UID EXPUNGE <set>` (UIDPLUS, RFC
//!   4315), which cannot touch a message someone else marked. Without UIDPLUS a mailbox is
//!   pruned only when no other message in it is marked `\Deleted` (checked before and after
//!   the STORE), because a plain EXPUNGE removes every marked message.
//! - POP3: `DELE` of those messages, then `QUIT` (deletions happen only when the server
//!   confirms QUIT, RFC 1939 6).
//!
//! Without `--yes` (or with `--dry-run`) the same decisions are made and reported, and nothing
//! is changed: IMAP mailboxes are opened with EXAMINE and nothing is stored.
//!
//! A message whose archived copy is missing or does not verify is kept on the server and
//! reported as a failure (exit 1). Messages older than the cutoff that the archive does not
//! hold are kept and counted (`not_archived`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Instant;

use super::now_secs;
use crate::archive::ledger::Record;
use crate::archive::{self, OpenArchive, STATE_DIR};
use crate::core::endpoint::Protocol;
use crate::core::error::{Error, Exit, Result};
use crate::core::message::{normalize, Flag, Flags, MailboxName};
use crate::engine::plans::PrunePlan;
use crate::engine::report::{human_bytes, Failure, QuotaLine};
use crate::protocol::imap::{ImapClient, ImapError, MailboxInfo};

/// One message as the server lists it, reduced to what pruning decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMsg {
    /// IMAP UID, or POP3 message number (valid for this session only).
    pub id: u32,
    /// How a report names it: `UID 42` or `UIDL 0001`.
    pub label: String,
    /// Its identity in the ledger (see the module docs).
    pub identity: String,
    /// Octets as the server reports them (RFC822.SIZE, POP3 LIST).
    pub size: u64,
    /// IMAP INTERNALDATE (seconds since the epoch); `None` for POP3, which has no date: the
    /// archived message's date (newest `Received:`, else `Date:`) is used.
    pub internal_date: Option<i64>,
    /// IMAP: the message is marked `\Deleted` already.
    pub deleted_flag: bool,
}

/// What to do with a listing. Pure: see [`plan_prune`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PruneDecision {
    /// Older than the cutoff and recorded under the identity the server shows: their archived
    /// copies are to be verified, then they are deleted. (Index into the listing, identity of
    /// the matching record.)
    pub candidates: Vec<(usize, String)>,
    /// Older than the cutoff (POP3: of any age, since only the archive knows a POP3 message's
    /// date) but not in the archive, or recorded with another size: kept.
    pub not_archived: Vec<usize>,
    /// Messages whose date is known to be older than the cutoff (candidates and not archived).
    pub older: u64,
}

/// Decides which listed messages may be deleted: those with a record for their identity
/// (with the size the server reports, when the record has one; a POP3 message whose UIDL the
/// server reused for another size is recorded as `<identity> SIZE <octets>`) and a date before
/// `cutoff` (seconds since the epoch): the server's INTERNALDATE, else the record's date.
/// A message listed twice is decided once. Pure.
pub fn plan_prune(
    listing: &[ServerMsg],
    records: &HashMap<String, Record>,
    cutoff: i64,
) -> PruneDecision {
    let mut out = PruneDecision::default();
    let mut seen = HashSet::new();
    for (i, m) in listing.iter().enumerate() {
        if !seen.insert(m.identity.as_str()) {
            continue;
        }
        let fits = |r: &&Record| r.wire_size.is_none_or(|w| w == m.size || m.size == 0);
        let record = records.get(&m.identity).filter(fits).or_else(|| {
            records
                .get(&format!("{} SIZE {}", m.identity, m.size))
                .filter(fits)
        });
        let date = m.internal_date.or(record.map(|r| r.internal_date));
        match (date, record) {
            (Some(d), Some(r)) if d < cutoff => {
                out.older += 1;
                out.candidates.push((i, r.identity.clone()));
            }
            (Some(d), None) if d < cutoff => {
                out.older += 1;
                out.not_archived.push(i);
            }
            (None, None) => out.not_archived.push(i),
            _ => {}
        }
    }
    out
}

/// One mailbox of a prune.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneMailbox {
    /// The mailbox, decoded, levels joined with `/` (`INBOX` for POP3).
    pub mailbox: String,
    /// Messages on the server.
    pub on_server: u64,
    /// Messages older than the cutoff.
    pub older: u64,
    /// Messages older than the cutoff (POP3: any) that the archive does not hold: kept.
    pub not_archived: u64,
    /// Archived messages whose archived copy is missing or does not verify: kept, reported.
    pub damaged: u64,
    /// Messages verified in the archive and older than the cutoff: deleted (with `--yes`) or
    /// that would be deleted.
    pub to_delete: u64,
    /// Their size on the server, bytes.
    pub to_delete_bytes: u64,
    /// Messages the server confirmed deleted.
    pub deleted: u64,
    /// Their size on the server, bytes.
    pub freed_bytes: u64,
}

/// What a prune did (or, without `--yes`, would do). Sizes in bytes, durations in seconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// `prune`.
    pub command: String,
    /// The account (`alice@imap.example.com:993`).
    pub source: String,
    /// The archive checked against (`maildir:/home/alice/Mail/archive`).
    pub archive: String,
    /// `--older-than` as given (`365d`).
    pub older_than: String,
    /// Messages dated before this instant (seconds since the epoch) were considered.
    pub cutoff: i64,
    /// True when nothing was to be changed (`--dry-run`, or no `--yes`).
    pub dry_run: bool,
    pub listed: u64,
    pub older: u64,
    pub not_archived: u64,
    pub damaged: u64,
    pub to_delete: u64,
    pub to_delete_bytes: u64,
    pub deleted: u64,
    pub freed_bytes: u64,
    /// Per mailbox (IMAP: those with archived messages).
    pub mailboxes: Vec<PruneMailbox>,
    /// IMAP: quota usage after the prune, when the server reports it.
    pub quota: Vec<QuotaLine>,
    /// Messages kept because their archived copy did not verify, and mailboxes that failed.
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
    /// The error that stopped the run, if one did.
    pub error: Option<String>,
    pub duration_secs: f64,
    pub exit: Exit,
    pub exit_code: u8,
}

impl PruneReport {
    fn add(&mut self, m: PruneMailbox) {
        self.listed += m.on_server;
        self.older += m.older;
        self.not_archived += m.not_archived;
        self.damaged += m.damaged;
        self.to_delete += m.to_delete;
        self.to_delete_bytes += m.to_delete_bytes;
        self.deleted += m.deleted;
        self.freed_bytes += m.freed_bytes;
        self.mailboxes.push(m);
    }

    /// One line per mailbox with something deleted, to delete or damaged.
    pub fn mailbox_lines(&self) -> String {
        let mut out = String::new();
        for m in &self.mailboxes {
            if m.to_delete == 0 && m.damaged == 0 {
                continue;
            }
            if self.dry_run {
                out.push_str(&format!(
                    "  {}: {} would be deleted ({})",
                    m.mailbox,
                    m.to_delete,
                    human_bytes(m.to_delete_bytes)
                ));
            } else {
                out.push_str(&format!(
                    "  {}: {} deleted ({} freed)",
                    m.mailbox,
                    m.deleted,
                    human_bytes(m.freed_bytes)
                ));
            }
            if m.damaged > 0 {
                out.push_str(&format!(
                    ", {} kept (archived copy damaged, missing or not the server's message)",
                    m.damaged
                ));
            }
            out.push('\n');
        }
        out
    }
}

/// `2024-11-30` for seconds since the epoch (UTC).
fn day(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} {} (archived in {}, older than {}: before {}): ",
            self.command,
            if self.dry_run { " (dry run)" } else { "" },
            self.source,
            self.archive,
            self.older_than,
            day(self.cutoff)
        )?;
        if self.dry_run {
            write!(
                f,
                "{} would be deleted ({})",
                self.to_delete,
                human_bytes(self.to_delete_bytes)
            )?;
        } else {
            write!(
                f,
                "{} deleted from the server ({} freed)",
                self.deleted,
                human_bytes(self.freed_bytes)
            )?;
        }
        if self.damaged > 0 {
            write!(
                f,
                ", {} kept because the archived copy is missing, damaged or not the server's message",
                self.damaged
            )?;
        }
        if self.not_archived > 0 {
            write!(f, ", {} kept because not archived", self.not_archived)?;
        }
        // What the server holds now: after a prune, what it did not delete. Mailboxes never
        // backed up into this archive are not looked at, so they are not counted.
        let n = self.mailboxes.len();
        write!(
            f,
            ", {} {} in {n} archived {} in {:.1} s",
            self.listed.saturating_sub(self.deleted),
            if self.dry_run {
                "on server"
            } else {
                "left on server"
            },
            if n == 1 { "mailbox" } else { "mailboxes" },
            self.duration_secs
        )?;
        for q in &self.quota {
            write!(f, "; quota {}", q.describe())?;
        }
        if self.dry_run {
            write!(f, "; nothing was changed")?;
            if self.to_delete > 0 {
                write!(f, " (to delete them, run again with --yes)")?;
            }
        }
        Ok(())
    }
}

/// Runs a prune as planned. Always returns a report; its `exit` says how it ended.
pub fn prune(plan: &PrunePlan) -> PruneReport {
    let started = Instant::now();
    let mut report = PruneReport {
        command: "prune".into(),
        source: plan.source.spec.account(),
        archive: plan.archive.display(),
        older_than: plan.older_than.clone(),
        cutoff: now_secs() - plan.older_than_secs,
        dry_run: !plan.act,
        ..PruneReport::default()
    };
    let result = match plan.source.spec.protocol {
        Protocol::Imap => prune_imap(plan, &mut report),
        Protocol::Pop3 => prune_pop3(plan, &mut report),
    };
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

/// Opens the archive for the prune (locked: a backup and a prune never interleave). It must
/// exist: a prune never creates an archive.
fn open_archive(plan: &PrunePlan) -> Result<OpenArchive> {
    let ledger = plan.archive.path.join(STATE_DIR).join("ledger.sqlite");
    if !ledger.is_file() && plan.archive.path.join(STATE_DIR).join("kind").is_file() {
        return Err(Error::Usage(format!(
            "{}: its ledger ({STATE_DIR}/ledger.sqlite) is missing: back {} up into it first to rebuild it (files found in the archive are compared with the server before anything is deleted)",
            plan.archive.display(),
            plan.source.spec.account()
        )));
    }
    if !ledger.is_file() {
        return Err(Error::Usage(format!(
            "{} is not a mailkeep archive (no {STATE_DIR}/ledger.sqlite): back {} up into it first",
            plan.archive.display(),
            plan.source.spec.account()
        )));
    }
    let archive = archive::open(&plan.archive)?;
    // A prune against an archive of another account (or the same one under another host name)
    // would find nothing to delete, every night, without a word.
    let key = plan.source.spec.ledger_key();
    let accounts = archive.ledger.accounts()?;
    if !accounts.is_empty() && !accounts.contains(&key) {
        return Err(Error::Usage(format!(
            "{} holds no message of {key} (it holds {}): back this account up into it first, or name the account as it was backed up (the same user and host name)",
            plan.archive.display(),
            accounts.join(", ")
        )));
    }
    Ok(archive)
}

/// The candidates whose archived copy reads back with the recorded SHA-256; the others are
/// reported as failures (kept on the server).
fn verified(
    archive: &mut OpenArchive,
    mailbox: &MailboxName,
    listing: &[ServerMsg],
    decision: &PruneDecision,
    records: &HashMap<String, Record>,
    m: &mut PruneMailbox,
    failures: &mut Vec<Failure>,
) -> Vec<(usize, String)> {
    let archive_name = archive.spec.display();
    let mut ok = Vec::new();
    for (i, identity) in &decision.candidates {
        let r = &records[identity];
        let flags = Flags::from_imap_list(&r.flags);
        let problem = match archive
            .sink
            .verify_stored(mailbox, &r.location, &flags, &r.sha256)
        {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "the archived copy ({}) is missing or does not match its recorded SHA-256: kept on the server; `mailkeep verify {}` tells which, and the next backup fetches a missing copy again (move a damaged one aside first)",
                r.location,
                archive_name
            )),
            Err(e) => Some(format!(
                "the archived copy cannot be read ({e}): kept on the server"
            )),
        };
        match problem {
            None => ok.push((*i, identity.clone())),
            Some(error) => {
                m.damaged += 1;
                failures.push(Failure {
                    mailbox: mailbox.to_string(),
                    message: listing[*i].label.clone(),
                    error,
                });
            }
        }
    }
    m.to_delete = ok.len() as u64;
    m.to_delete_bytes = ok.iter().map(|(i, _)| listing[*i].size).sum();
    ok
}

/// The failure of a candidate whose server bytes are not its archived copy's.
fn unlike_server(location: &str) -> String {
    format!(
        "the server's message is not the archived copy ({location}: recorded without comparing with the server, after a lost or older ledger or an interrupted run, or the server reused the identity): kept on the server; move that file out of the archive and back up again"
    )
}

// ---------------------------------------------------------------------------------------------
// IMAP
// ---------------------------------------------------------------------------------------------

/// A failure of one mailbox (the run goes on) or of the session (the run stops).
enum MailboxError {
    Mailbox(String),
    Fatal(Error),
}

impl From<Error> for MailboxError {
    fn from(e: Error) -> Self {
        MailboxError::Fatal(e)
    }
}

/// NO/BAD to a command about one mailbox fails that mailbox; throttling, `[UNAVAILABLE]`,
/// `[INUSE]`, a used-up allowance ([`super::imap::wider_than_mailbox`]) and everything else
/// (connection lost) stop the run.
fn classify(account: &str, context: &str, e: ImapError) -> MailboxError {
    match e {
        ImapError::No { ref text, .. }
        | ImapError::Bad { ref text, .. }
        | ImapError::Unusable { ref text, .. }
            if !super::imap::wider_than_mailbox(&e, text) =>
        {
            MailboxError::Mailbox(super::imap::imap_error(account, context, e).to_string())
        }
        other => MailboxError::Fatal(super::imap::imap_error(account, context, other)),
    }
}

fn prune_imap(plan: &PrunePlan, report: &mut PruneReport) -> Result<()> {
    use super::imap::{connect, imap_error, read_secret};
    // The secret first: a command that waits must not hold the archive's lock meanwhile.
    let secret = read_secret(&plan.source)?;
    let mut archive = open_archive(plan)?;
    report.warnings.append(&mut archive.repairs);
    let account = plan.source.spec.account();
    let key = plan.source.spec.ledger_key();
    let mut client = connect(&plan.source, &secret)?;
    let listed = client
        .list_mailboxes()
        .map_err(|e| imap_error(&account, "LIST", e))?;
    // A --folder that matches nothing is an error; an --exclude that matches nothing is said
    // once the error below (nothing left at all) is ruled out.
    let unmatched = plan
        .filter
        .check(&account, listed.iter().map(|m| m.name.as_str()))?;
    let mailboxes: Vec<MailboxInfo> = listed
        .into_iter()
        .filter(|m| m.selectable && plan.filter.wants(m.name.as_str()))
        .collect();
    // Two server mailboxes whose names come out the same share records: neither is pruned.
    let mut wires_of: HashMap<&str, HashSet<&str>> = HashMap::new();
    for m in &mailboxes {
        wires_of.entry(m.name.as_str()).or_default().insert(&m.wire);
    }
    let shared: HashSet<String> = wires_of
        .into_iter()
        .filter(|(_, wires)| wires.len() > 1)
        .map(|(name, _)| name.to_string())
        .collect();
    let (refused, mailboxes): (Vec<MailboxInfo>, Vec<MailboxInfo>) = mailboxes
        .into_iter()
        .partition(|m| shared.contains(m.name.as_str()));
    for m in refused {
        report.failures.push(Failure {
            mailbox: m.name.to_string(),
            message: String::new(),
            error: format!(
                "{account}: {}: another server mailbox has the same name once decoded (not valid modified UTF-7): not pruned",
                crate::core::endpoint::escape_controls(&m.wire)
            ),
        });
    }
    if mailboxes.is_empty() && plan.filtered {
        return Err(Error::Usage(format!(
            "{account}: no mailbox matches --folder/--exclude (`mailkeep list` shows the mailboxes)"
        )));
    }
    report.warnings.extend(unmatched);
    if !client.capabilities().has("UIDPLUS") {
        report.warnings.push(format!(
            "{account}: the server has no UIDPLUS (RFC 4315): a mailbox is pruned only when no other message in it is marked \\Deleted"
        ));
    }
    // Through another port than the backups: perhaps another server (SSH tunnels), whose
    // UIDVALIDITY and UIDs may equal the archived ones: every candidate is compared.
    let same_port = archive::same_source_port(&archive, &plan.source.spec)?;
    if !same_port {
        report.warnings.push(format!(
            "{account}: this archive was backed up through another port: every message is compared with this server's bytes before it is deleted"
        ));
    }
    for mb in &mailboxes {
        let records: HashMap<String, Record> = archive
            .ledger
            .mailbox_records(&key, mb.name.as_str())?
            .into_iter()
            .map(|r| (r.identity.clone(), r))
            .collect();
        if records.is_empty() {
            // Never backed up into this archive: nothing here can be verified.
            continue;
        }
        match prune_mailbox(
            plan,
            &mut client,
            &mut archive,
            mb,
            &records,
            same_port,
            report,
        ) {
            Ok(m) => report.add(m),
            Err(MailboxError::Mailbox(e)) => report.failures.push(Failure {
                mailbox: mb.name.to_string(),
                message: String::new(),
                error: e,
            }),
            Err(MailboxError::Fatal(e)) => return Err(e),
        }
    }
    // Quota after the prune, so the report shows the space the server now has.
    if client.capabilities().has("QUOTA") {
        if let Some(inbox) = mailboxes.iter().find(|m| m.name.is_inbox()) {
            if let Ok(roots) = client.quota_roots(inbox) {
                report.quota = roots.iter().flat_map(QuotaLine::from_root).collect();
            }
        }
    }
    let _ = client.logout();
    Ok(())
}

fn prune_mailbox(
    plan: &PrunePlan,
    client: &mut ImapClient,
    archive: &mut OpenArchive,
    mb: &MailboxInfo,
    records: &HashMap<String, Record>,
    same_port: bool,
    report: &mut PruneReport,
) -> Result<PruneMailbox, MailboxError> {
    use super::imap::imap_identity;
    let account = plan.source.spec.account();
    let key = plan.source.spec.ledger_key();
    let name = &mb.name;
    // Without --yes nothing may change, not even \Recent: EXAMINE.
    let selected = if plan.act {
        client.select(mb)
    } else {
        client.examine(mb)
    }
    .map_err(|e| {
        let verb = if plan.act { "SELECT" } else { "EXAMINE" };
        classify(&account, &format!("{verb} {name}"), e)
    })?;
    let listing: Vec<ServerMsg> = client
        .list_messages(None)
        .map_err(|e| classify(&account, &format!("mailbox {name}: UID FETCH (listing)"), e))?
        .into_iter()
        .map(|l| ServerMsg {
            id: l.uid,
            label: format!("UID {}", l.uid),
            identity: imap_identity(&key, name, selected.uidvalidity, l.uid),
            size: l.size,
            internal_date: l.internal_date,
            deleted_flag: l.flags.contains(&Flag::Deleted),
        })
        .collect();
    let decision = plan_prune(&listing, records, report.cutoff);
    let mut m = PruneMailbox {
        mailbox: name.to_string(),
        on_server: listing.len() as u64,
        older: decision.older,
        not_archived: decision.not_archived.len() as u64,
        ..PruneMailbox::default()
    };
    let mut ok = verified(
        archive,
        name,
        &listing,
        &decision,
        records,
        &mut m,
        &mut report.failures,
    );
    // Unverified records (adopted without comparing: a lost or older ledger, an interrupted
    // run) prove nothing: the server's message is fetched and compared first.
    let doubtful: Vec<u32> = ok
        .iter()
        .filter(|(_, id)| !same_port || !records[id].verified)
        .map(|(i, _)| listing[*i].id)
        .collect();
    if !doubtful.is_empty() {
        let mut now_sha: HashMap<u32, String> = HashMap::new();
        client
            .fetch_bodies(&doubtful, &mut |f| -> Result<(), ImapError> {
                now_sha.insert(
                    f.uid,
                    crate::archive::reader::sha256_hex(&normalize(f.body)),
                );
                Ok(())
            })
            .map_err(|e| {
                classify(
                    &account,
                    &format!("mailbox {name}: UID FETCH (comparing with the archive)"),
                    e,
                )
            })?;
        let mut promote = Vec::new();
        ok.retain(|(i, id)| {
            let r = &records[id];
            if r.verified && same_port {
                return true;
            }
            match now_sha.get(&listing[*i].id) {
                Some(sha) if *sha == r.sha256 => {
                    promote.push(id.clone());
                    true
                }
                _ => {
                    m.damaged += 1;
                    report.failures.push(Failure {
                        mailbox: name.to_string(),
                        message: listing[*i].label.clone(),
                        error: unlike_server(&r.location),
                    });
                    false
                }
            }
        });
        m.to_delete = ok.len() as u64;
        m.to_delete_bytes = ok.iter().map(|(i, _)| listing[*i].size).sum();
        if plan.act {
            archive.ledger.set_verified(&promote)?;
        }
    }
    if !plan.act || ok.is_empty() {
        return Ok(m);
    }
    let uids: Vec<u32> = ok.iter().map(|(i, _)| listing[*i].id).collect();
    let ours: HashSet<u32> = uids.iter().copied().collect();
    let uidplus = client.capabilities().has("UIDPLUS");
    if !uidplus {
        let others = listing
            .iter()
            .filter(|l| l.deleted_flag && !ours.contains(&l.id))
            .count();
        if others > 0 {
            return Err(MailboxError::Mailbox(format!(
                "{account}: {name}: not pruned: the server has no UIDPLUS and {others} other message(s) are marked \\Deleted, which an EXPUNGE would remove too"
            )));
        }
    }
    let flagged_before: HashSet<u32> = listing
        .iter()
        .filter(|l| l.deleted_flag)
        .map(|l| l.id)
        .collect();
    // Our marks, to take back when the expunge cannot go ahead; messages that were marked
    // before keep their mark.
    let unmark: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| !flagged_before.contains(u))
        .collect();
    let ids: Vec<String> = ok.iter().map(|(_, id)| id.clone()).collect();
    let ctx = |verb: &str| format!("mailbox {name}: {verb}");
    // Recorded before the server is asked (see the module docs), taken back when the server
    // answered that it did not delete. After a lost connection the record stays: whether the
    // server deleted is unknown, and the record only keeps the archived copy.
    archive.ledger.mark_deleted(&ids, now_secs())?;
    // Only what the mailbox still holds is taken back: a server may expunge and then answer
    // NO (untagged EXPUNGEs first); a record taken back for a message that went would let a
    // later `--mirror` remove its archived copy. When the server cannot say, the records stay.
    let take_back = |client: &mut ImapClient, archive: &mut OpenArchive, err: MailboxError| {
        if let MailboxError::Mailbox(_) = err {
            let _ = client.uid_store_deleted(&unmark, false);
            if let Ok(still) = client.uids_present(&uids) {
                let back: Vec<String> = ok
                    .iter()
                    .filter(|(i, _)| still.contains(&listing[*i].id))
                    .map(|(_, id)| id.clone())
                    .collect();
                archive.ledger.clear_deleted(&back)?;
            }
        }
        Err(err)
    };
    if let Err(e) = client.uid_store_deleted(&uids, true) {
        let err = classify(&account, &ctx("UID STORE +FLAGS.SILENT (\\Deleted)"), e);
        return take_back(client, archive, err);
    }
    let expunged = if uidplus {
        client.uid_expunge(&uids)
    } else {
        match client.uid_search("DELETED") {
            Ok(marked) if marked.iter().all(|u| ours.contains(u)) => client.expunge(),
            Ok(marked) => {
                let err = MailboxError::Mailbox(format!(
                    "{account}: {name}: not pruned: another client marked {} message(s) \\Deleted meanwhile, and without UIDPLUS an EXPUNGE would remove them too",
                    marked.iter().filter(|u| !ours.contains(u)).count()
                ));
                return take_back(client, archive, err);
            }
            Err(e) => Err(e),
        }
    };
    if let Err(e) = expunged {
        let verb = if uidplus { "UID EXPUNGE" } else { "EXPUNGE" };
        let err = classify(&account, &ctx(verb), e);
        return take_back(client, archive, err);
    }
    // Exactly what went: the UIDs the mailbox no longer holds.
    let still: BTreeSet<u32> = client
        .uids_present(&uids)
        .map_err(|e| classify(&account, &ctx("UID SEARCH (after expunge)"), e))?;
    type Verified<'a> = Vec<&'a (usize, String)>;
    let (gone, kept): (Verified, Verified) = ok
        .iter()
        .partition(|(i, _)| !still.contains(&listing[*i].id));
    let kept_ids: Vec<String> = kept.iter().map(|(_, id)| id.clone()).collect();
    archive.ledger.clear_deleted(&kept_ids)?;
    m.deleted = gone.len() as u64;
    m.freed_bytes = gone.iter().map(|(i, _)| listing[*i].size).sum();
    if !still.is_empty() {
        report.warnings.push(format!(
            "{account}: {name}: {} message(s) marked \\Deleted are still on the server after the expunge (first: UID {})",
            still.len(),
            still.iter().next().copied().unwrap_or_default()
        ));
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// POP3
// ---------------------------------------------------------------------------------------------

fn prune_pop3(plan: &PrunePlan, report: &mut PruneReport) -> Result<()> {
    use super::pop3::{connect, list, pop3_error};
    let password = plan.source.password.read(&plan.source.spec.account())?;
    let mut archive = open_archive(plan)?;
    report.warnings.append(&mut archive.repairs);
    let (mut client, account) = connect(&plan.source, &password)?;
    let key = plan.source.spec.ledger_key();
    let inbox = MailboxName::inbox();
    let records: HashMap<String, Record> = archive
        .ledger
        .mailbox_records(&key, inbox.as_str())?
        .into_iter()
        .map(|r| (r.identity.clone(), r))
        .collect();
    let recorded_sha: HashMap<String, String> = records
        .iter()
        .map(|(id, r)| (id.clone(), r.sha256.clone()))
        .collect();
    let mut listed = list(
        &mut client,
        &account,
        &key,
        &mut report.warnings,
        &recorded_sha,
    )?;
    // A message that could not be named (its content was needed and refused) is not a
    // candidate: nothing is known of it.
    listed.retain(|l| l.refused.is_none());
    let listing: Vec<ServerMsg> = listed
        .iter()
        .map(|l| ServerMsg {
            id: l.number,
            label: format!("UIDL {}", l.uidl),
            identity: l.identity.clone(),
            size: l.octets,
            internal_date: None,
            deleted_flag: false,
        })
        .collect();
    let decision = plan_prune(&listing, &records, report.cutoff);
    let mut m = PruneMailbox {
        mailbox: inbox.to_string(),
        on_server: listing.len() as u64,
        older: decision.older,
        not_archived: decision.not_archived.len() as u64,
        ..PruneMailbox::default()
    };
    let mut ok = verified(
        &mut archive,
        &inbox,
        &listing,
        &decision,
        &records,
        &mut m,
        &mut report.failures,
    );
    // A UIDL names a message only as far as the server keeps its word (RFC 1939 7), and an
    // unverified record proves nothing: every candidate's bytes are fetched and compared.
    let candidates: Vec<super::pop3::Listed> = ok.iter().map(|(i, _)| listed[*i].clone()).collect();
    let now_sha = super::pop3::server_sha256(&mut client, &account, &candidates)?;
    let mut promote = Vec::new();
    ok.retain(|(i, id)| {
        let r = &records[id];
        match now_sha.get(&listing[*i].id) {
            Some(sha) if *sha == r.sha256 => {
                if !r.verified {
                    promote.push(id.clone());
                }
                true
            }
            _ => {
                m.damaged += 1;
                report.failures.push(Failure {
                    mailbox: inbox.to_string(),
                    message: listing[*i].label.clone(),
                    error: unlike_server(&r.location),
                });
                false
            }
        }
    });
    m.to_delete = ok.len() as u64;
    m.to_delete_bytes = ok.iter().map(|(i, _)| listing[*i].size).sum();
    if plan.act {
        archive.ledger.set_verified(&promote)?;
    }
    if plan.act && !ok.is_empty() {
        let numbers: Vec<u32> = ok.iter().map(|(i, _)| listing[*i].id).collect();
        let ids: Vec<String> = ok.iter().map(|(_, id)| id.clone()).collect();
        // Recorded before the server is asked (see the module docs). A failed DELE ends the
        // session without QUIT, which deletes nothing (RFC 1939 6): the record is taken back.
        // A QUIT without answer leaves it unknown whether the server deleted: it stays.
        archive.ledger.mark_deleted(&ids, now_secs())?;
        if let Err(e) = client.dele(&numbers) {
            archive.ledger.clear_deleted(&ids)?;
            return Err(pop3_error(&account, "DELE", e));
        }
        client.quit().map_err(|e| {
            pop3_error(
                &account,
                "QUIT (the server did not confirm the deletions)",
                e,
            )
        })?;
        m.deleted = ok.len() as u64;
        m.freed_bytes = m.to_delete_bytes;
    } else {
        client.quit().map_err(|e| pop3_error(&account, "QUIT", e))?;
    }
    report.add(m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u32, size: u64, date: Option<i64>) -> ServerMsg {
        ServerMsg {
            id,
            label: format!("UID {id}"),
            identity: format!("k UID {id}"),
            size,
            internal_date: date,
            deleted_flag: false,
        }
    }

    fn rec(identity: &str, wire_size: Option<u64>, date: i64) -> (String, Record) {
        (
            identity.to_string(),
            Record {
                account: "k".into(),
                mailbox: "INBOX".into(),
                uidl: None,
                uidvalidity: Some(1),
                uid: Some(1),
                identity: identity.into(),
                size: 10,
                wire_size,
                sha256: "00".into(),
                internal_date: date,
                flags: String::new(),
                location: "cur/x".into(),
                stored_at: 0,
                verified: true,
            },
        )
    }

    #[test]
    fn only_old_archived_messages_with_the_same_identity_and_size_are_candidates() {
        let cutoff = 1_000;
        let records: HashMap<String, Record> = [
            rec("k UID 1", Some(100), 500),
            rec("k UID 2", Some(100), 1_500),
            rec("k UID 3", Some(999), 500),
            rec("k UID 5", None, 500),
            rec("k UID 7 SIZE 70", Some(70), 10),
            rec("k UID 8", Some(80), 10),
        ]
        .into_iter()
        .collect();
        // (listing, candidate ids, not-archived ids, older)
        type Case = (Vec<ServerMsg>, Vec<u32>, Vec<u32>, u64);
        let cases: Vec<Case> = vec![
            (vec![], vec![], vec![], 0),
            // IMAP: the server's INTERNALDATE decides; exactly at the cutoff is not older.
            (vec![msg(1, 100, Some(999))], vec![1], vec![], 1),
            (vec![msg(1, 100, Some(1_000))], vec![], vec![], 0),
            // A recorded message the server now dates after the cutoff stays.
            (vec![msg(1, 100, Some(2_000))], vec![], vec![], 0),
            // The record's size differs: not the archived message.
            (vec![msg(3, 100, Some(10))], vec![], vec![3], 1),
            // Old, not in the archive (another UIDVALIDITY gives another identity).
            (vec![msg(4, 100, Some(10))], vec![], vec![4], 1),
            // Recent and not archived: nothing to say.
            (vec![msg(4, 100, Some(5_000))], vec![], vec![], 0),
            // A record without a server size matches any size.
            (vec![msg(5, 123, Some(10))], vec![5], vec![], 1),
            // POP3: no server date, the record's date decides.
            (vec![msg(1, 100, None)], vec![1], vec![], 1),
            (vec![msg(2, 100, None)], vec![], vec![], 0),
            // POP3, not archived: age unknown, counted as not archived but not as older.
            (vec![msg(9, 100, None)], vec![], vec![9], 0),
            // A reused POP3 UIDL archived as `<identity> SIZE <octets>`.
            (vec![msg(7, 70, None)], vec![7], vec![], 1),
            // Listed twice: decided once.
            (vec![msg(8, 80, None), msg(8, 80, None)], vec![8], vec![], 1),
        ];
        for (n, (listing, cand, not_arch, older)) in cases.into_iter().enumerate() {
            let d = plan_prune(&listing, &records, cutoff);
            let ids = |v: Vec<usize>| v.into_iter().map(|i| listing[i].id).collect::<Vec<_>>();
            assert_eq!(
                ids(d.candidates.iter().map(|(i, _)| *i).collect()),
                cand,
                "case {n}"
            );
            assert_eq!(ids(d.not_archived.clone()), not_arch, "case {n}");
            assert_eq!(d.older, older, "case {n}");
        }
        // The candidate carries the identity of the matching record.
        let d = plan_prune(&[msg(7, 70, None)], &records, cutoff);
        assert_eq!(d.candidates, vec![(0, "k UID 7 SIZE 70".to_string())]);
    }

    #[test]
    fn summary_lines() {
        let mut r = PruneReport {
            command: "prune".into(),
            source: "a@h:993".into(),
            archive: "maildir:/a".into(),
            older_than: "365d".into(),
            cutoff: 1_700_000_000,
            dry_run: true,
            ..PruneReport::default()
        };
        r.add(PruneMailbox {
            mailbox: "INBOX".into(),
            on_server: 5,
            older: 3,
            to_delete: 2,
            to_delete_bytes: 2_000,
            damaged: 1,
            ..PruneMailbox::default()
        });
        assert_eq!(
            r.to_string(),
            "prune (dry run) a@h:993 (archived in maildir:/a, older than 365d: before 2023-11-14): 2 would be deleted (2.0 kB), 1 kept because the archived copy is missing, damaged or not the server's message, 5 on server in 1 archived mailbox in 0.0 s; nothing was changed (to delete them, run again with --yes)"
        );
        assert_eq!(
            r.mailbox_lines(),
            "  INBOX: 2 would be deleted (2.0 kB), 1 kept (archived copy damaged, missing or not the server's message)\n"
        );
        r.dry_run = false;
        r.deleted = 2;
        r.freed_bytes = 2_000;
        r.mailboxes[0].deleted = 2;
        r.mailboxes[0].freed_bytes = 2_000;
        assert_eq!(
            r.mailbox_lines(),
            "  INBOX: 2 deleted (2.0 kB freed), 1 kept (archived copy damaged, missing or not the server's message)\n"
        );
        // After deleting, the summary counts what is left, not what was listed.
        assert_eq!(
            r.to_string(),
            "prune a@h:993 (archived in maildir:/a, older than 365d: before 2023-11-14): 2 deleted from the server (2.0 kB freed), 1 kept because the archived copy is missing, damaged or not the server's message, 3 left on server in 1 archived mailbox in 0.0 s"
        );
        r.add(PruneMailbox {
            mailbox: "Sent".into(),
            on_server: 4,
            ..PruneMailbox::default()
        });
        assert!(
            r.to_string()
                .contains(", 7 left on server in 2 archived mailboxes in "),
            "{r}"
        );
    }
}
