//! One mailbox's backup, in the order that keeps every message safe (DESIGN.md invariants 1
//! and 3): [`sync_mailbox`] claims the mailbox's folder, EXAMINEs it, lists UID / FLAGS /
//! RFC822.SIZE / INTERNALDATE and asks the pure [`plan::plan_mailbox`] what to do; then each
//! step of [`MailboxSync`] applies one part of that plan: flag changes and re-keyings
//! ([`MailboxSync::apply_flags`]), messages a killed run had already placed
//! ([`MailboxSync::adopt_placed`]), messages over the size limit
//! ([`MailboxSync::drop_oversized`]), the fetch in batches ([`MailboxSync::fetch`], with
//! [`super::batch`]), `--mirror` removals ([`MailboxSync::mirror`]) and, last, the mailbox's
//! state ([`MailboxSync::finish`]), recorded only when nothing failed, so that an interrupted
//! or partly failed run lists the mailbox again.
//!
//! Every archive write goes through the workers' shared [`Shared`] (one sink and ledger),
//! made durable before it is recorded.
//!
//! May use: `core`, `protocol`, `archive`, `engine::{plan, plans, report}`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::batch::{self, BatchEnd, Refusal};
use super::{classify, imap_identity, lock, Shared, SyncError};
use crate::archive::ledger::Record;
use crate::core::fault;
use crate::core::headers;
use crate::core::message::{Flags, MailboxName};
use crate::engine::now_secs;
use crate::engine::plan::{
    self, ArchivedMessage, KnownMailbox, MailboxNow, MailboxPlan, ServerMessage,
};
use crate::engine::plans::BackupPlan;
use crate::engine::report::{Failure, MailboxReport};
use crate::protocol::imap::{ImapClient, ImapError, MailboxInfo, Selected, Status};

/// A fetch batch holds at most this many messages...
const BATCH_MESSAGES: usize = 500;
/// ...and about this many bytes (RFC822.SIZE); a larger message is fetched alone.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// Backs up one mailbox (`mb`, with the STATUS [`super::skip_unchanged`] saw) on `client`.
///
/// Errors: [`SyncError::Mailbox`] for a fault of this mailbox only (the run goes on; its
/// messages' own failures are already in the report), [`SyncError::Fatal`] for what ends the
/// run (connection lost, archive unwritable).
pub(super) fn sync_mailbox(
    plan: &BackupPlan,
    client: &mut ImapClient,
    shared: &Mutex<Shared<'_>>,
    mb: &MailboxInfo,
    status: Option<Status>,
) -> Result<(), SyncError> {
    let Some(mut sync) = MailboxSync::open(plan, client, shared, mb, status)? else {
        return Ok(());
    };
    sync.apply_flags()?;
    let to_fetch = sync.adopt_placed()?;
    let to_fetch = sync.drop_oversized(to_fetch);
    sync.fetch(client, &to_fetch)?;
    sync.mirror()?;
    sync.finish()
}

/// The state of one mailbox's backup between its steps.
pub(super) struct MailboxSync<'s, 'a, 'p> {
    pub(super) plan: &'p BackupPlan,
    pub(super) shared: &'s Mutex<Shared<'a>>,
    /// `user@host` for messages.
    pub(super) account: String,
    /// The ledger key of the account.
    pub(super) key: String,
    pub(super) name: MailboxName,
    /// `mailbox <name>`, the context of its errors.
    pub(super) ctx: String,
    /// The state recorded by the last complete run.
    known: Option<KnownMailbox>,
    /// The mailbox as EXAMINE saw it.
    pub(super) selected: Selected,
    /// The mailbox's records (those whose file is gone left out: fetched again).
    records: Vec<Record>,
    /// Index of `records` by identity.
    by_identity: HashMap<String, usize>,
    mbplan: MailboxPlan,
    /// Records of older UIDVALIDITYs by SHA-256, which a fetched message may turn out to be.
    pub(super) older_by_sha: HashMap<String, Vec<Record>>,
    pub(super) report: MailboxReport,
    /// Messages stored this run without a valid INTERNALDATE (one warning at the end).
    pub(super) undated: Vec<Undated>,
    /// Something of this mailbox failed: its state is not recorded, the next run lists it.
    pub(super) failed: bool,
}

/// Which date a message without a valid INTERNALDATE got, for the mailbox's warning and the
/// ledger's note.
pub(super) struct Undated {
    pub(super) uid: u32,
    /// What the server sent (`NIL`, `"garbage"`, `nothing`).
    pub(super) sent: String,
    /// [`headers::DateSource::DateHeader`] or [`headers::DateSource::Now`].
    pub(super) from: headers::DateSource,
}

impl<'s, 'a, 'p> MailboxSync<'s, 'a, 'p> {
    /// Claims the mailbox's folder, EXAMINEs and lists it, and plans it. `None` when the
    /// mailbox was deleted on the server after LIST (said in the report, not failed).
    fn open(
        plan: &'p BackupPlan,
        client: &mut ImapClient,
        shared: &'s Mutex<Shared<'a>>,
        mb: &MailboxInfo,
        status: Option<Status>,
    ) -> Result<Option<Self>, SyncError> {
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
        let mut report = MailboxReport {
            mailbox: name.to_string(),
            on_server: status.map_or(0, |s| u64::from(s.messages)),
            ..MailboxReport::default()
        };
        // Unchanged mailboxes never get here: `skip_unchanged` decided on this same STATUS.
        let selected = match client.examine(mb) {
            Ok(s) => s,
            // Deleted on the server between LIST and EXAMINE (RFC 5530 NONEXISTENT): nothing
            // of it can be archived, and nothing of it is listed; said, not failed. Unless
            // LIST still shows it: then the server cannot open a mailbox it has (a name
            // listed in one form and opened in another), and leaving it out without a failure
            // would leave its mail out of every run.
            Err(e @ ImapError::No { .. })
                if e.response_code().as_deref() == Some("NONEXISTENT") =>
            {
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
                return Ok(None);
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
        let mbplan = plan::plan_mailbox(selected.uidvalidity, &listing, &archived_of(&records));
        report.on_server = listing.len() as u64;
        report.already_archived =
            mbplan.unchanged + mbplan.set_flags.len() as u64 + mbplan.rekey.len() as u64;
        let by_identity = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.identity.clone(), i))
            .collect();
        Ok(Some(MailboxSync {
            plan,
            shared,
            account,
            key,
            name: name.clone(),
            ctx,
            known,
            selected,
            records,
            by_identity,
            mbplan,
            older_by_sha: HashMap::new(),
            report,
            undated: Vec::new(),
            failed: false,
        }))
    }

    /// The record of `identity` (one the plan named, so it exists).
    fn record(&self, identity: &str) -> &Record {
        &self.records[self.by_identity[identity]]
    }

    /// The failure of one message (`UID n`) of this mailbox, in the run's report.
    pub(super) fn fail_message(&mut self, uid: u32, error: String) {
        self.failed = true;
        lock(self.shared).report.failures.push(Failure {
            mailbox: self.name.to_string(),
            message: format!("UID {uid}"),
            error,
        });
    }

    /// Flag changes and re-keyings of archived messages: sink first (renames), made durable,
    /// then recorded. Also collects the older UIDVALIDITY's records that fetched messages may
    /// turn out to be.
    fn apply_flags(&mut self) -> Result<(), SyncError> {
        let (account, name, uidvalidity) = (&self.account, &self.name, self.selected.uidvalidity);
        let mut sh = lock(self.shared);
        if self.mbplan.uidvalidity_changed {
            // The UIDVALIDITY of the first archived message, as the plan saw them.
            let old = self
                .records
                .iter()
                .find_map(|r| r.uid.and(r.uidvalidity))
                .unwrap_or_default();
            sh.report.warnings.push(format!(
                "{account}: {name}: UIDVALIDITY changed from {old} to {uidvalidity} (the mailbox was recreated); archived messages are matched by size, date and content, and only new ones are stored"
            ));
        }
        let mut set = Vec::new();
        for (identity, flags) in &self.mbplan.set_flags {
            let r = self.record(identity);
            let old = Flags::from_imap_list(&r.flags);
            // A file shared by several mailboxes (`--dedup`) keeps its name: the flags of
            // each mailbox's copy live in the ledger.
            if !sh.archive.ledger.location_shared(&r.location)? {
                sh.archive.sink.set_flags(name, &r.location, &old, flags)?;
            }
            set.push((identity.clone(), flags.to_imap_list(), r.location.clone()));
        }
        let mut rekey = Vec::new();
        for (identity, uid, flags) in &self.mbplan.rekey {
            let r = self.record(identity);
            let old = Flags::from_imap_list(&r.flags);
            sh.archive.sink.set_flags(name, &r.location, &old, flags)?;
            rekey.push((
                identity.clone(),
                imap_identity(&self.key, name, uidvalidity, *uid),
                uidvalidity,
                *uid,
                flags.to_imap_list(),
                r.location.clone(),
            ));
        }
        sh.archive.sink.sync()?;
        sh.archive.ledger.update_records(&set, &rekey)?;
        drop(sh);
        self.report.flags_updated = set.len() as u64;
        if self.mbplan.uidvalidity_changed {
            let rekeyed: HashSet<&str> = self
                .mbplan
                .rekey
                .iter()
                .map(|(i, _, _)| i.as_str())
                .collect();
            for r in self.records.iter().filter(|r| {
                r.uidvalidity != Some(uidvalidity) && !rekeyed.contains(r.identity.as_str())
            }) {
                self.older_by_sha
                    .entry(r.sha256.clone())
                    .or_default()
                    .push(r.clone());
            }
        }
        Ok(())
    }

    /// Messages a killed run had already placed (Maildir: found by the name derived from
    /// their identity) are recorded without downloading them again (unverified: adopted
    /// without comparing bytes with the server). Returns the messages left to fetch.
    fn adopt_placed(&mut self) -> Result<Vec<ServerMessage>, SyncError> {
        let uidvalidity = self.selected.uidvalidity;
        let mut to_fetch = Vec::with_capacity(self.mbplan.fetch.len());
        let mut sh = lock(self.shared);
        let mut found = Vec::new();
        for m in &self.mbplan.fetch {
            let identity = imap_identity(&self.key, &self.name, uidvalidity, m.uid);
            match sh.archive.sink.find_unrecorded(&self.name, &identity)? {
                Some((stored, sha256, size)) => {
                    // The file carries the flags of the killed run's listing: renamed to the
                    // flags the server shows now, which the record says (a Maildir reader
                    // believes the file name when the two disagree).
                    sh.archive
                        .sink
                        .set_flags(&self.name, &stored.location, &m.flags, &m.flags)?;
                    found.push(Record {
                        account: self.key.clone(),
                        mailbox: self.name.to_string(),
                        uidl: None,
                        uidvalidity: Some(uidvalidity),
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
                    })
                }
                None => to_fetch.push(m.clone()),
            }
        }
        if !found.is_empty() {
            sh.archive.sink.sync()?;
            sh.archive.ledger.record_batch(&found, &[])?;
            sh.report.recovered += found.len() as u64;
            self.report.already_archived += found.len() as u64;
        }
        Ok(to_fetch)
    }

    /// RFC822.SIZE over the limit: not fetched, that message's failure (docs/limits.md).
    fn drop_oversized(&mut self, mut to_fetch: Vec<ServerMessage>) -> Vec<ServerMessage> {
        let limit = crate::core::limits::max_message_size();
        let (account, name) = (self.account.clone(), self.name.clone());
        let mut over = Vec::new();
        to_fetch.retain(|m| {
            if m.size <= limit {
                return true;
            }
            over.push((m.uid, m.size));
            false
        });
        for (uid, size) in over {
            self.fail_message(
                uid,
                format!(
                    "{account}: mailbox {name} UID {uid}: {}",
                    crate::core::limits::too_large(Some(size), limit)
                ),
            );
        }
        to_fetch
    }

    /// Fetches `to_fetch` in batches bounded by count and bytes, each made durable, then
    /// recorded ([`batch::fetch_batch`]). A batch the server refuses as a whole is asked for
    /// again one message at a time, so that one message the server cannot send (a damaged
    /// file on its side) fails alone ([`plan::after_refusal`]); what stops the mailbox (a
    /// refusal of every message, a message over the limit, a session out of step) names every
    /// message it leaves unfetched, so that `on server = fetched + already + failed` holds.
    fn fetch(
        &mut self,
        client: &mut ImapClient,
        to_fetch: &[ServerMessage],
    ) -> Result<(), SyncError> {
        let sizes: Vec<u64> = to_fetch.iter().map(|m| m.size).collect();
        lock(self.shared)
            .progress
            .add_work(to_fetch.len() as u64, sizes.iter().sum::<u64>());
        for range in plan::batches(&sizes, BATCH_MESSAGES, BATCH_BYTES) {
            let rest = &to_fetch[range.end..];
            let batch = &to_fetch[range];
            match batch::fetch_batch(self, client, batch)? {
                BatchEnd::Done => {}
                // A batch of one message: its refusal is that message's.
                BatchEnd::Refused(refusal) if batch.len() == 1 => {
                    self.fail_message(batch[0].uid, refusal.error);
                }
                BatchEnd::Refused(refusal) => {
                    if let Some(stop) = self.refetch_one_by_one(client, batch, refusal)? {
                        self.stop(&stop, rest);
                        break;
                    }
                }
                BatchEnd::Stopped(stop) => {
                    self.stop(&stop, rest);
                    break;
                }
            }
        }
        Ok(())
    }

    /// After the server refused a batch of several messages: each message of it not stored
    /// asked for alone (also when only one is left: its failure then names its own command,
    /// and a passing fault gets a second chance). A message refused alone is that message's
    /// failure (named with the server's words);
    /// when every one of several is refused, the refusal is about the mailbox, not its
    /// messages, and the mailbox stops (the returned [`batch::Stop`]).
    fn refetch_one_by_one(
        &mut self,
        client: &mut ImapClient,
        batch: &[ServerMessage],
        refusal: Refusal,
    ) -> Result<Option<batch::Stop>, SyncError> {
        let mut refused: Vec<(u32, String)> = Vec::new();
        let mut answered = false;
        let mut left = refusal.unstored.iter();
        while let Some(uid) = left.next() {
            let Some(m) = batch.iter().find(|m| m.uid == *uid) else {
                continue;
            };
            match batch::fetch_batch(self, client, std::slice::from_ref(m))? {
                BatchEnd::Done => answered = true,
                BatchEnd::Refused(r) => refused.push((*uid, r.error)),
                BatchEnd::Stopped(mut stop) => {
                    for (uid, error) in refused {
                        self.fail_message(uid, error);
                    }
                    stop.unfetched.extend(left.copied());
                    return Ok(Some(stop));
                }
            }
        }
        match plan::after_refusal(refusal.unstored.len(), refused.len(), answered) {
            plan::AfterRefusal::MessagesFail => {
                for (uid, error) in refused {
                    self.fail_message(uid, error);
                }
                Ok(None)
            }
            plan::AfterRefusal::MailboxStops => {
                // The server's words to the whole batch, once per message.
                for uid in &refusal.unstored {
                    self.fail_message(*uid, refusal.error.clone());
                }
                Ok(Some(batch::Stop {
                    failed: Vec::new(),
                    error: refusal.error,
                    unfetched: Vec::new(),
                }))
            }
        }
    }

    /// The mailbox stops at `stop`: its messages fail with its error, the batch's other
    /// unstored messages and every later one (`rest`) as "not fetched".
    fn stop(&mut self, stop: &batch::Stop, rest: &[ServerMessage]) {
        let stopped = format!(
            "{}: {}: not fetched: the fetch of this mailbox stopped at an earlier failure; the next run tries again",
            self.account, self.ctx
        );
        for uid in &stop.failed {
            self.fail_message(*uid, stop.error.clone());
        }
        for uid in stop
            .unfetched
            .iter()
            .copied()
            .chain(rest.iter().map(|m| m.uid))
            .collect::<Vec<_>>()
        {
            self.fail_message(uid, stopped.clone());
        }
    }

    /// `--mirror`: removes what the server deleted, only after this complete listing.
    /// Messages `prune` deleted from the server (recorded with their deletion) are what the
    /// archive is for: they stay.
    fn mirror(&mut self) -> Result<(), SyncError> {
        if !self.plan.imap.mirror || self.mbplan.gone.is_empty() || self.failed {
            return Ok(());
        }
        let (account, name) = (&self.account, &self.name);
        let mut sh = lock(self.shared);
        let times = sh.archive.ledger.stored_times(&self.key)?;
        // A ledger once found older than the archive may lack the deletions prune recorded
        // since its copy was taken: copies it recorded before then are never removed.
        let trusted_after: i64 = sh
            .archive
            .ledger
            .meta(crate::archive::OLDER_LEDGER_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::MIN);
        let (gone, kept): (Vec<String>, Vec<String>) = self
            .mbplan
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
            let r = self.record(identity);
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
        drop(sh);
        self.report.removed = removed.len() as u64;
        Ok(())
    }

    /// Warns about undated messages, records the mailbox's state when nothing failed (and it
    /// changed), and adds the mailbox's counts to the run's report.
    fn finish(self) -> Result<(), SyncError> {
        let mut sh = lock(self.shared);
        if !self.undated.is_empty() {
            let list: Vec<(u32, String, bool)> = self
                .undated
                .into_iter()
                .map(|u| (u.uid, u.sent, u.from == headers::DateSource::DateHeader))
                .collect();
            sh.report
                .warnings
                .push(undated_warning(&self.account, self.name.as_str(), &list));
        }
        // The state as EXAMINE saw it (after the server synced its view of the mailbox,
        // which can move HIGHESTMODSEQ past what STATUS showed before): the next run's STATUS
        // then matches it when nothing changed. Written only when it changed, so a run with
        // nothing new changes no byte of the archive.
        let seen = MailboxNow {
            uidvalidity: self.selected.uidvalidity,
            uidnext: self.selected.uidnext,
            highestmodseq: self.selected.highestmodseq,
            messages: self.selected.exists,
        };
        let same_state = self.known.as_ref().is_some_and(|k| {
            k.uidvalidity == seen.uidvalidity
                && k.uidnext == seen.uidnext
                && k.highestmodseq == seen.highestmodseq
                && k.messages == Some(seen.messages)
        });
        if !self.failed && !same_state {
            sh.archive
                .ledger
                .set_mailbox_state(&self.key, self.name.as_str(), &seen)?;
        }
        let m = self.report;
        sh.report.listed += m.on_server;
        sh.report.fetched += m.fetched;
        sh.report.fetched_bytes += m.fetched_bytes;
        sh.report.already_archived += m.already_archived;
        sh.report.flags_updated += m.flags_updated;
        sh.report.removed += m.removed;
        sh.report.mailboxes.push(m);
        Ok(())
    }

    /// Counts what the mailbox stored before an error ended the run, so that the report (and
    /// the `totals` of `mailkeep run` over its attempts) says what this attempt did archive.
    pub(super) fn count_stored(&self) {
        let mut sh = lock(self.shared);
        sh.report.fetched += self.report.fetched;
        sh.report.fetched_bytes += self.report.fetched_bytes;
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
