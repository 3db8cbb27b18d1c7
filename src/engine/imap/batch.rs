//! One batch of a mailbox's new messages: `UID FETCH <set> (... BODY.PEEK[])`, each message
//! written to the archive's `tmp/` as it arrives, fsync'd by the pool, placed by the placer
//! thread once that is done ([`crate::archive::staging::placer`]), and the whole batch made
//! durable, then recorded, whatever ended it (DESIGN.md invariant 1). [`fetch_batch`] says how
//! the batch ended ([`BatchEnd`]); the pure [`crate::engine::plan::after_refusal`] decides what
//! a refusal of the batch means once its messages were asked for one at a time.
//!
//! May use: `core`, `protocol`, `archive`, `engine::{plan, report}`.

use std::collections::HashSet;

use super::mailbox::{MailboxSync, Undated};
use super::{classify, imap_identity, lock, refusal_of_messages, SyncError};
use crate::archive::ledger::Record;
use crate::archive::staging::fsync_pool::{FsyncPool, Pending};
use crate::archive::staging::placer;
use crate::archive::writer::{PlaceMeta, StagedMessage};
use crate::core::error::Error;
use crate::core::headers;
use crate::core::message::Flags;
use crate::engine::now_secs;
use crate::engine::plan::ServerMessage;
use crate::protocol::imap::{Fetched, ImapClient, ImapError};

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

/// How a batch ended, once what arrived is durable and recorded.
pub(super) enum BatchEnd {
    /// Every message stored, or accounted for (expunged meanwhile: said; held back, sent
    /// without a body: failures of their UIDs, already in the report).
    Done,
    /// The server refused the `UID FETCH` of the batch (`NO`/`BAD` about this mailbox, or an
    /// answer that cannot be used); the session is still in step.
    Refused(Refusal),
    /// The mailbox cannot go on with this session (a message over the size limit, a session
    /// out of step): `failed` fail with `error`, `unfetched` as "not fetched".
    Stopped(Stop),
}

/// A refused batch: the messages it did not store and the server's words, as a failure line.
pub(super) struct Refusal {
    pub(super) unstored: Vec<u32>,
    pub(super) error: String,
}

/// Where a mailbox's fetch stopped: `failed` UIDs fail with `error`; `unfetched` UIDs (and
/// every later batch) fail as "not fetched".
pub(super) struct Stop {
    pub(super) failed: Vec<u32>,
    pub(super) error: String,
    pub(super) unfetched: Vec<u32>,
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

/// Fetches `batch` (messages of the examined mailbox, none recorded) and stores what arrives:
/// placed, made durable, recorded, counted in the mailbox's report. Messages the server did
/// not return are checked with `UID SEARCH` (expunged meanwhile: a warning; still there: a
/// failure of that UID).
///
/// Errors: [`SyncError::Fatal`] for what ends the run (the connection lost, the archive not
/// writable), after what arrived before it was recorded.
pub(super) fn fetch_batch(
    sync: &mut MailboxSync<'_, '_, '_>,
    client: &mut ImapClient,
    batch: &[ServerMessage],
) -> Result<BatchEnd, SyncError> {
    let shared = sync.shared;
    let name = sync.name.clone();
    let key = sync.key.clone();
    let account = sync.account.clone();
    let ctx = sync.ctx.clone();
    let uidvalidity = sync.selected.uidvalidity;
    let dedup = sync.plan.imap.dedup;
    let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
    let started = {
        let mut sh = lock(shared);
        let t = sh.archive.sink.tail(&name)?;
        if let Some(mark) = &t {
            crate::archive::check_mbox_known(&sh.archive, mark)?;
            sh.archive.ledger.set_pending(mark)?;
        }
        t
    };
    let appends = started.is_some();
    let older_by_sha = &mut sync.older_by_sha;
    let mut records: Vec<Record> = Vec::new();
    let mut rekeys = Vec::new();
    let mut batch_undated: Vec<Undated> = Vec::new();
    let mut no_body: Vec<(u32, String)> = Vec::new();
    // The UID of the message being stored, for an archive error's line.
    let mut storing = None;
    // Each message is written to `tmp/` as it arrives (without holding the archive, so the
    // other connections write meanwhile), its fsync handed to the pool, and the message to
    // the placer thread, which places it once the fsync is done.
    let mut place_fetched = |u: Unplaced, fsync: Pending| -> crate::core::error::Result<()> {
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
        let identity = imap_identity(&key, &name, uidvalidity, uid);
        if let Some(old) = older_by_sha.get_mut(&msg.sha256).and_then(Vec::pop) {
            // The same message under the old UIDVALIDITY: re-key, do not store it again;
            // bring its flags up to date (the rename is made durable by the batch sync).
            msg.discard();
            let old_flags = Flags::from_imap_list(&old.flags);
            if old_flags != flags && !sh.archive.ledger.location_shared(&old.location)? {
                sh.archive
                    .sink
                    .set_flags(&name, &old.location, &old_flags, &flags)?;
            }
            rekeys.push((
                old.identity.clone(),
                identity,
                uidvalidity,
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
            uidvalidity: Some(uidvalidity),
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
        if dedup {
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
                let mut staged = lock(shared).archive.sink.stage(&name)?;
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
        let tails = crate::archive::batch_tails(started.as_ref(), sh.archive.sink.sync()?);
        sh.archive.ledger.record_batch(&records, &tails)?;
        sh.archive.ledger.update_records(&[], &rekeys)?;
        sync.report.fetched += records.len() as u64;
        sync.report.fetched_bytes += records.iter().map(|r| r.size).sum::<u64>();
        sync.report.already_archived += rekeys.len() as u64;
        // The ledger says which date each stored message without a valid INTERNALDATE got
        // (a note: the record's own date column holds the date used).
        let stored: HashSet<u32> = records.iter().filter_map(|r| r.uid).collect();
        for u in batch_undated.drain(..).filter(|u| stored.contains(&u.uid)) {
            let text = format!(
                "mailbox {name} UIDVALIDITY {uidvalidity} UID {}: no valid INTERNALDATE (the server sent {}); dated from {}",
                u.uid,
                u.sent,
                match u.from {
                    headers::DateSource::DateHeader => "its Date: header",
                    _ => "the archiving time",
                }
            );
            sh.archive.ledger.note_once(&key, &text, now_secs())?;
            match u.from {
                headers::DateSource::DateHeader => sync.report.dated_from_header += 1,
                _ => sync.report.dated_at_archiving += 1,
            }
            sync.undated.push(u);
        }
    }
    for (uid, sent) in no_body {
        sync.fail_message(
            uid,
            format!(
                "{account}: mailbox {name} UID {uid}: the server sent no message ({sent}); the next run tries again"
            ),
        );
    }
    match result {
        Ok(missing) if missing.is_empty() => Ok(BatchEnd::Done),
        Ok(missing) => {
            // Asked for, not returned (expunged meanwhile, or an answer the reader could not
            // tie to its UID): the mailbox's state is not recorded, so the next run lists it
            // again and fetches what is still there.
            sync.failed = true;
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
            if !gone.is_empty() {
                sync.report.on_server = sync.report.on_server.saturating_sub(gone.len() as u64);
                lock(shared).report.warnings.push(format!(
                    "{account}: mailbox {name}: {} expunged on the server during the run: not archived",
                    gone.join(", ")
                ));
            }
            for uid in still {
                sync.fail_message(
                    uid,
                    format!(
                        "{account}: mailbox {name} UID {uid}: the server did not return this message, which it still holds; the next run asks again"
                    ),
                );
            }
            Ok(BatchEnd::Done)
        }
        Err(FetchFailure::Archive(e)) => {
            // Name the message being stored (`storing`, set by the closure above).
            let what = match storing {
                Some(uid) => format!("{account} mailbox {name} UID {uid}"),
                None => format!("{account} mailbox {name}"),
            };
            sync.count_stored();
            Err(SyncError::Fatal(crate::archive::writer::storing(e, &what)))
        }
        Err(FetchFailure::Imap(e)) => {
            // The messages of the batch not handed over (delivery order is the server's, not
            // necessarily the batch's).
            let done: HashSet<u32> = records
                .iter()
                .filter_map(|r| r.uid)
                .chain(rekeys.iter().map(|r| r.3))
                .collect();
            let unstored: Vec<u32> = uids.iter().copied().filter(|u| !done.contains(u)).collect();
            // A message over the limit is that message's failure.
            let too_large = match &e {
                ImapError::TooLarge { uid: Some(u), .. } => Some(*u),
                _ => None,
            };
            // A refusal of the batch is about the command (it names every UID); anything else
            // (a lost connection, a literal over the limit) is said at the message it stopped
            // at.
            let batch_refused = refusal_of_messages(&e) || matches!(e, ImapError::Unusable { .. });
            let context = match (too_large, unstored.first()) {
                (Some(u), _) => format!("{ctx} UID {u}"),
                (None, _) if batch_refused => ctx.clone(),
                (None, at) => format!("{ctx} UID {}", at.copied().unwrap_or_default()),
            };
            match classify(&account, &context, e) {
                SyncError::Mailbox(error) if batch_refused && !client.is_broken() => {
                    Ok(BatchEnd::Refused(Refusal { unstored, error }))
                }
                SyncError::Mailbox(error) => {
                    let failed: Vec<u32> = match too_large {
                        Some(u) => vec![u],
                        None => unstored.clone(),
                    };
                    let unfetched = unstored
                        .iter()
                        .copied()
                        .filter(|u| !failed.contains(u))
                        .collect();
                    Ok(BatchEnd::Stopped(Stop {
                        failed,
                        error,
                        unfetched,
                    }))
                }
                fatal => {
                    sync.count_stored();
                    Err(fatal)
                }
            }
        }
    }
}
