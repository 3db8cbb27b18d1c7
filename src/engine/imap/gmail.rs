//! Gmail backups (`X-GM-EXT-1`): each message stored once, with its labels.
//!
//! Gmail shows each label as a folder, so a message with three labels is in three folders,
//! and `[Gmail]/All Mail` holds every message again. A backup of a Gmail account (unless
//! `--gmail-folders`, `--folder` or `--exclude` ask for folders) reads only the All Mail
//! folder (RFC 6154 `\All`), listing `X-GM-MSGID` and `X-GM-LABELS` with UID, FLAGS,
//! RFC822.SIZE and INTERNALDATE, and:
//! - stores each new message once ([`placement`]): in the folder of its first user label (by
//!   name), else INBOX, Sent or Drafts by its system label, else `Archive` (mail that is only
//!   in All Mail); Spam and Trash (`--gmail-spam-trash`) in their own folders;
//! - records it in the ledger under `{account} GMAIL MSGID {id}` (the stored copy, in that
//!   folder), and once per other label under `{account} GMAIL MSGID {id} IN {mailbox}`, all
//!   pointing at the one copy: every reader of the archive then shows it in each label's
//!   mailbox (a restore to any server puts one copy per label, a `list` counts it in each);
//! - keeps `\Starred` as `\Flagged` and `\Important` as the keyword `$Important`, never as
//!   folders;
//! - brings label and flag changes in on the next run without downloading bodies (labels
//!   removed on the server leave the label's mailbox in the ledger; the stored copy stays);
//! - skips the listing when All Mail's STATUS (with CONDSTORE's HIGHESTMODSEQ, which moves
//!   with every label and flag change) equals what the last complete run saw.
//!
//! A message that left All Mail on the server stays in the archive (it is a backup).
//!
//! May use: `core`, `protocol`, `archive`, `engine::{plan, plans, report, progress}`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{classify, imap_error, SyncError};
use crate::archive::ledger::Record;
use crate::archive::writer::PlaceMeta;
use crate::archive::OpenArchive;
use crate::core::error::{Error, Result};
use crate::core::headers;
use crate::core::message::{Flag, Flags, MailboxName};
use crate::engine::now_secs;
use crate::engine::plan;
use crate::engine::plans::BackupPlan;
use crate::engine::progress::Progress;
use crate::engine::report::{Failure, MailboxReport, RunReport};
use crate::protocol::imap::{Fetched, ImapClient, Listed, MailboxInfo, SpecialUse};

/// A fetch batch holds at most this many messages and about this many bytes.
const BATCH_MESSAGES: usize = 200;
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// The folder of messages that have no label but All Mail...
pub const ARCHIVE_FOLDER: &str = "Archive";
/// ...unless the account has a label of that name: then this one, so that archived mail is
/// never merged into a real label's mailbox.
pub const ARCHIVE_FOLDER_TAKEN: &str = "Archive (only in All Mail)";

/// The ledger's mailbox-state key of a folder read by label (`\u{1}gmail [Gmail]/All Mail`):
/// never a mailbox name (control characters are refused in names).
const STATE_PREFIX: &str = "\u{1}gmail ";

/// The keyword `\Important` becomes.
pub const IMPORTANT_KEYWORD: &str = "$Important";

/// The account's system folders, by special use (RFC 6154) as LIST shows them (their names
/// depend on the account's language: `[Google Mail]/Gesendet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFolders {
    pub sent: MailboxName,
    pub drafts: MailboxName,
    pub spam: MailboxName,
    pub trash: MailboxName,
    /// The mailbox of messages in no label: [`ARCHIVE_FOLDER`], or [`ARCHIVE_FOLDER_TAKEN`]
    /// when a label has that name.
    pub archive: MailboxName,
}

impl SystemFolders {
    /// From LIST: each special use's mailbox, else Gmail's English name.
    pub fn from_list(mailboxes: &[MailboxInfo]) -> SystemFolders {
        let find = |u: SpecialUse, default: &str| {
            mailboxes
                .iter()
                .find(|m| m.special_use == Some(u))
                .map(|m| m.name.clone())
                .unwrap_or_else(|| MailboxName::from_levels(&split_levels(default)))
        };
        SystemFolders {
            sent: find(SpecialUse::Sent, "[Gmail]/Sent Mail"),
            drafts: find(SpecialUse::Drafts, "[Gmail]/Drafts"),
            spam: find(SpecialUse::Junk, "[Gmail]/Spam"),
            trash: find(SpecialUse::Trash, "[Gmail]/Trash"),
            archive: if mailboxes
                .iter()
                .any(|m| m.name == MailboxName::new(ARCHIVE_FOLDER))
            {
                MailboxName::new(ARCHIVE_FOLDER_TAKEN)
            } else {
                MailboxName::new(ARCHIVE_FOLDER)
            },
        }
    }
}

fn split_levels(s: &str) -> Vec<String> {
    s.split('/').map(str::to_string).collect()
}

/// Where a message is stored and which mailboxes it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The folder holding the stored copy.
    pub storage: MailboxName,
    /// Every mailbox it is in (its labels as mailboxes), `storage` included.
    pub mailboxes: BTreeSet<MailboxName>,
    /// Flags its labels add: `\Flagged` for `\Starred`, `$Important` for `\Important`.
    pub flags: Flags,
}

/// A user label (modified UTF-7, `/` levels) as a mailbox name; a level that is not valid
/// modified UTF-7 is kept as sent.
fn label_name(label: &str) -> MailboxName {
    let levels: Vec<String> = label
        .split('/')
        .map(|l| crate::core::mutf7::decode(l).unwrap_or_else(|_| l.to_string()))
        .collect();
    MailboxName::from_levels(&levels)
}

/// Where a message with `labels` (X-GM-LABELS as sent) is stored and which mailboxes it is in.
/// A user label named like a system label (`Inbox`, `Sent`, `Important`, `Starred`) is a user
/// label. Pure.
pub fn placement(labels: &[String], f: &SystemFolders) -> Placement {
    let mut mailboxes = BTreeSet::new();
    let mut flags = Flags::new();
    let mut user: Vec<MailboxName> = Vec::new();
    let (mut inbox, mut sent, mut drafts, mut spam, mut trash) =
        (false, false, false, false, false);
    for label in labels {
        match label.to_ascii_lowercase().as_str() {
            "\\inbox" => inbox = true,
            "\\sent" => sent = true,
            "\\draft" | "\\drafts" => drafts = true,
            "\\spam" | "\\junk" => spam = true,
            "\\trash" => trash = true,
            "\\starred" | "\\flagged" => flags.insert(Flag::Flagged),
            "\\important" => flags.insert(Flag::Keyword(IMPORTANT_KEYWORD.into())),
            // Another system label (`\All`, unknown ones): no mailbox.
            l if l.starts_with('\\') => {}
            _ if label.is_empty() => {}
            _ => user.push(label_name(label)),
        }
    }
    user.sort();
    user.dedup();
    if inbox {
        mailboxes.insert(MailboxName::inbox());
    }
    if sent {
        mailboxes.insert(f.sent.clone());
    }
    if drafts {
        mailboxes.insert(f.drafts.clone());
    }
    mailboxes.extend(user.iter().cloned());
    let storage = if trash {
        f.trash.clone()
    } else if spam {
        f.spam.clone()
    } else if let Some(first) = user.first() {
        first.clone()
    } else if inbox {
        MailboxName::inbox()
    } else if sent {
        f.sent.clone()
    } else if drafts {
        f.drafts.clone()
    } else {
        f.archive.clone()
    };
    mailboxes.insert(storage.clone());
    Placement {
        storage,
        mailboxes,
        flags,
    }
}

/// The ledger identity of a Gmail message's stored copy.
pub fn gmail_identity(key: &str, msgid: u64) -> String {
    format!("{key} GMAIL MSGID {msgid}")
}

/// The ledger identity of a Gmail message's membership of `mailbox` (another label).
pub fn member_identity(key: &str, msgid: u64, mailbox: &MailboxName) -> String {
    format!("{key} GMAIL MSGID {msgid} IN {mailbox}")
}

/// The msgid of a Gmail identity (either form), if it is one of `key`'s.
fn msgid_of(key: &str, identity: &str) -> Option<u64> {
    let rest = identity.strip_prefix(key)?.strip_prefix(" GMAIL MSGID ")?;
    rest.split(' ').next()?.parse().ok()
}

/// True when the backup of this account goes by label: the server is Gmail and no folder
/// choice asks for folders.
pub fn by_label(plan: &BackupPlan, client: &ImapClient) -> bool {
    client.capabilities().has("X-GM-EXT-1") && !plan.imap.filtered && !plan.imap.gmail_folders
}

/// The warning for a Gmail account backed up folder by folder because `--folder` or
/// `--exclude` was given (not `--gmail-folders`), with All Mail among the folders: every
/// message is then stored again in All Mail, which people who only meant to skip a folder do
/// not expect. `None` otherwise (not Gmail, by label, `--gmail-folders`, All Mail excluded or
/// the only folder, `--dedup`).
pub fn all_mail_by_folder_warning(
    plan: &BackupPlan,
    client: &ImapClient,
    queue: &std::collections::VecDeque<MailboxInfo>,
) -> Option<String> {
    if !client.capabilities().has("X-GM-EXT-1")
        || !plan.imap.filtered
        || plan.imap.gmail_folders
        || plan.imap.dedup
    {
        return None;
    }
    let all = queue
        .iter()
        .find(|m| m.special_use == Some(SpecialUse::All))?;
    if queue.len() < 2 {
        // `--folder '[Gmail]/All Mail'`: one copy of everything, as asked.
        return None;
    }
    Some(format!(
        "{}: Gmail backed up folder by folder because --folder/--exclude was given, `{}` included: each message is stored once per folder it is in and again in All Mail (without --folder/--exclude a Gmail account is backed up by label, each message once; or add --exclude '{}', or --dedup)",
        plan.source.spec.account(),
        all.name,
        all.name
    ))
}

/// Backs up a Gmail account by label (see the module documentation) on `client`, into
/// `archive`, filling `report`.
///
/// Errors: what ends the run (the connection lost, the archive not writable); a refusal of
/// All Mail's EXAMINE or listing is that mailbox's failure, in `report`.
pub fn backup(
    plan: &BackupPlan,
    client: &mut ImapClient,
    archive: &mut OpenArchive,
    mailboxes: &[MailboxInfo],
    progress: &mut Progress,
    report: &mut RunReport,
) -> Result<()> {
    let account = plan.source.spec.account();
    let key = plan.source.spec.ledger_key();
    let folders = SystemFolders::from_list(mailboxes);
    let all = mailboxes
        .iter()
        .find(|m| m.special_use == Some(SpecialUse::All))
        .or_else(|| {
            mailboxes
                .iter()
                .find(|m| m.name.as_str().ends_with("/All Mail") && m.selectable)
        })
        .cloned()
        .ok_or_else(|| Error::Protocol {
            account: account.clone(),
            detail: "the server says it is Gmail (X-GM-EXT-1) but lists no All Mail folder (\\All); back it up folder by folder with --gmail-folders".into(),
        })?;
    let mut sources = vec![all];
    if plan.imap.gmail_spam_trash {
        for u in [SpecialUse::Junk, SpecialUse::Trash] {
            if let Some(m) = mailboxes.iter().find(|m| m.special_use == Some(u)) {
                sources.push(m.clone());
            }
        }
    }
    if plan.imap.mirror {
        report.warnings.push(format!(
            "{account}: --mirror has no effect on a Gmail backup by label: messages deleted on the server stay in the archive"
        ));
    }
    if plan.imap.dedup {
        report.warnings.push(format!(
            "{account}: --dedup has no effect on a Gmail backup by label: each message is stored once already"
        ));
    }
    // What the archive holds of this account: msgid -> its records.
    let mut known: HashMap<u64, Vec<Record>> = HashMap::new();
    for r in archive.ledger.account_records(&key)? {
        if let Some(id) = msgid_of(&key, &r.identity) {
            known.entry(id).or_default().push(r);
        }
    }
    progress.start(&account, 0, 0);
    // HIGHESTMODSEQ (RFC 7162) moves with every label and flag change on Gmail: with it, an
    // unchanged All Mail is not listed at all.
    let _ = client.enable_condstore();
    for source in &sources {
        let mut mreport = MailboxReport {
            mailbox: source.name.to_string(),
            ..MailboxReport::default()
        };
        match backup_folder(
            plan,
            client,
            archive,
            source,
            &folders,
            &mut known,
            progress,
            report,
            &mut mreport,
        ) {
            Ok(()) => {}
            Err(SyncError::Mailbox(e)) => report.failures.push(Failure {
                mailbox: source.name.to_string(),
                message: String::new(),
                error: e,
            }),
            Err(SyncError::Fatal(e)) => {
                report.fetched += mreport.fetched;
                report.fetched_bytes += mreport.fetched_bytes;
                return Err(e);
            }
        }
        report.listed += mreport.on_server;
        report.fetched += mreport.fetched;
        report.fetched_bytes += mreport.fetched_bytes;
        report.already_archived += mreport.already_archived;
        report.flags_updated += mreport.flags_updated;
        report.mailboxes.push(mreport);
    }
    Ok(())
}

/// Backs up one folder (All Mail, Spam or Trash) by label.
#[allow(clippy::too_many_arguments)]
fn backup_folder(
    plan: &BackupPlan,
    client: &mut ImapClient,
    archive: &mut OpenArchive,
    source: &MailboxInfo,
    folders: &SystemFolders,
    known: &mut HashMap<u64, Vec<Record>>,
    progress: &mut Progress,
    report: &mut RunReport,
    mreport: &mut MailboxReport,
) -> Result<(), SyncError> {
    let account = plan.source.spec.account();
    let key = plan.source.spec.ledger_key();
    let name = &source.name;
    // The folder's state as the last complete run saw it, under a key of its own (a folder
    // backup of the same account keeps its own state for `[Gmail]/All Mail`).
    let state_key = format!("{STATE_PREFIX}{name}");
    if let Ok(Some(st)) = client.status(source) {
        let now = plan::MailboxNow {
            uidvalidity: st.uidvalidity,
            uidnext: st.uidnext,
            highestmodseq: st.highestmodseq,
            messages: st.messages,
        };
        let known_state = archive.ledger.mailbox_state(&key, &state_key)?;
        if plan::unchanged(known_state.as_ref(), &now, false) {
            mreport.on_server = u64::from(st.messages);
            mreport.already_archived = mreport.on_server;
            return Ok(());
        }
    }
    let failures_before = report.failures.len();
    let selected = client
        .examine(source)
        .map_err(|e| classify(&account, &format!("EXAMINE {name}"), e))?;
    let listing = client
        .list_gmail()
        .map_err(|e| classify(&account, &format!("mailbox {name}: UID FETCH (listing)"), e))?;
    mreport.on_server = listing.len() as u64;
    // The system label of the folder itself, which Gmail leaves out of X-GM-LABELS there.
    let own_label = match source.special_use {
        Some(SpecialUse::Junk) => Some("\\Spam"),
        Some(SpecialUse::Trash) => Some("\\Trash"),
        _ => None,
    };
    let mut new: Vec<(Listed, Placement)> = Vec::new();
    let mut set: Vec<(String, String, String)> = Vec::new();
    let mut added: Vec<Record> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    // A message without an X-GM-MSGID, or with the msgid of a message listed before it, has
    // no identity of its own: it fails (named, counted, asked for again next run) instead of
    // being taken for another message.
    let mut first_uid: HashMap<u64, u32> = HashMap::new();
    for l in listing {
        let problem = match &l.gmail {
            None => Some("the server sent no X-GM-MSGID for it".to_string()),
            Some(gm) => match first_uid.insert(gm.msgid, l.uid) {
                Some(uid) => {
                    first_uid.insert(gm.msgid, uid);
                    Some(format!(
                        "the server sent X-GM-MSGID {} for it and for UID {uid}",
                        gm.msgid
                    ))
                }
                None => None,
            },
        };
        if let Some(problem) = problem {
            report.failures.push(Failure {
                mailbox: name.to_string(),
                message: format!("UID {}", l.uid),
                error: format!(
                    "{account}: mailbox {name} UID {}: {problem}: not archived; the next run tries again",
                    l.uid
                ),
            });
            continue;
        }
        let gm = l.gmail.clone().unwrap_or_default();
        let mut labels = gm.labels.clone();
        if let Some(own) = own_label {
            labels.push(own.to_string());
        }
        let p = placement(&labels, folders);
        let mut flags = l.flags.clone();
        for f in p.flags.iter() {
            flags.insert(f.clone());
        }
        let Some(records) = known.get(&gm.msgid) else {
            new.push((l, p));
            continue;
        };
        mreport.already_archived += 1;
        let Some(stored) = records
            .iter()
            .find(|r| r.identity == gmail_identity(&key, gm.msgid))
            .cloned()
        else {
            // Memberships without their stored copy (a damaged ledger): leave them.
            continue;
        };
        let mut changed = false;
        let wanted: BTreeSet<String> = p.mailboxes.iter().map(|m| m.to_string()).collect();
        let have: BTreeSet<String> = records.iter().map(|r| r.mailbox.clone()).collect();
        for m in wanted.difference(&have) {
            let mb = MailboxName::new(m);
            added.push(Record {
                mailbox: m.clone(),
                identity: member_identity(&key, gm.msgid, &mb),
                flags: flags.to_imap_list(),
                stored_at: now_secs(),
                ..stored.clone()
            });
            changed = true;
        }
        for r in records.iter().filter(|r| !wanted.contains(&r.mailbox)) {
            // The stored copy's own record stays (its folder holds the file).
            if r.identity != stored.identity {
                removed.push(r.identity.clone());
                changed = true;
            }
        }
        let new_flags = flags.to_imap_list();
        if records.iter().any(|r| r.flags != new_flags) {
            let old = Flags::from_imap_list(&stored.flags);
            let storage = MailboxName::new(&stored.mailbox);
            if old != flags {
                archive
                    .sink
                    .set_flags(&storage, &stored.location, &old, &flags)?;
            }
            for r in records {
                set.push((
                    r.identity.clone(),
                    new_flags.clone(),
                    stored.location.clone(),
                ));
            }
            changed = true;
        }
        if changed {
            mreport.flags_updated += 1;
        }
    }
    // Flag and label changes: the renames made durable, then recorded.
    archive.sink.sync()?;
    archive.ledger.update_records(&set, &[])?;
    archive.ledger.record_batch(&added, &[])?;
    archive.ledger.remove_records(&removed)?;

    // Messages a killed run had already stored (Maildir: the file named from the identity,
    // in the storage folder) are recorded without downloading them again (unverified), their
    // file renamed to the flags the server shows now.
    let mut adopted: Vec<Record> = Vec::new();
    let mut to_fetch = Vec::with_capacity(new.len());
    for (l, p) in new {
        let gm = l.gmail.clone().unwrap_or_default();
        let identity = gmail_identity(&key, gm.msgid);
        let Some((stored, sha256, size)) = archive.sink.find_unrecorded(&p.storage, &identity)?
        else {
            to_fetch.push((l, p));
            continue;
        };
        let mut flags = l.flags.clone();
        for f in p.flags.iter() {
            flags.insert(f.clone());
        }
        archive
            .sink
            .set_flags(&p.storage, &stored.location, &flags, &flags)?;
        let base = Record {
            account: key.clone(),
            mailbox: p.storage.to_string(),
            uidl: None,
            uidvalidity: Some(selected.uidvalidity),
            uid: Some(l.uid),
            identity,
            size,
            wire_size: Some(l.size),
            sha256,
            // Adopted without fetching: no header to date it from.
            internal_date: l.internal_date.unwrap_or_else(now_secs),
            flags: flags.to_imap_list(),
            location: stored.location,
            stored_at: now_secs(),
            verified: false,
        };
        for m in p.mailboxes.iter().filter(|m| **m != p.storage) {
            adopted.push(Record {
                mailbox: m.to_string(),
                identity: member_identity(&key, gm.msgid, m),
                ..base.clone()
            });
        }
        adopted.push(base);
        mreport.already_archived += 1;
        report.recovered += 1;
    }
    if !adopted.is_empty() {
        archive.sink.sync()?;
        archive.ledger.record_batch(&adopted, &[])?;
        for r in &adopted {
            if let Some(id) = msgid_of(&key, &r.identity) {
                known.entry(id).or_default().push(r.clone());
            }
        }
    }
    let mut new = to_fetch;

    // New messages, in batches: each stored once, then recorded with its memberships.
    let limit = crate::core::limits::max_message_size();
    new.retain(|(l, _)| {
        if l.size <= limit {
            return true;
        }
        report.failures.push(Failure {
            mailbox: name.to_string(),
            message: format!("UID {}", l.uid),
            error: format!(
                "{account}: mailbox {name} UID {}: {}",
                l.uid,
                crate::core::limits::too_large(Some(l.size), limit)
            ),
        });
        false
    });
    let sizes: Vec<u64> = new.iter().map(|(l, _)| l.size).collect();
    progress.add_work(new.len() as u64, sizes.iter().sum());
    for range in plan::batches(&sizes, BATCH_MESSAGES, BATCH_BYTES) {
        let batch = &new[range];
        fetch_batch(
            plan,
            client,
            archive,
            name,
            selected.uidvalidity,
            batch,
            known,
            progress,
            report,
            mreport,
        )?;
    }
    // Recorded only after a pass with no failure: the next run lists the folder again
    // otherwise.
    if report.failures.len() == failures_before {
        let seen = plan::MailboxNow {
            uidvalidity: selected.uidvalidity,
            uidnext: selected.uidnext,
            highestmodseq: selected.highestmodseq,
            messages: selected.exists,
        };
        archive.ledger.set_mailbox_state(&key, &state_key, &seen)?;
    }
    Ok(())
}

/// Fetches and stores one batch of new messages, then records each with its memberships.
#[allow(clippy::too_many_arguments)]
fn fetch_batch(
    plan: &BackupPlan,
    client: &mut ImapClient,
    archive: &mut OpenArchive,
    name: &MailboxName,
    uidvalidity: u32,
    batch: &[(Listed, Placement)],
    known: &mut HashMap<u64, Vec<Record>>,
    progress: &mut Progress,
    report: &mut RunReport,
    mreport: &mut MailboxReport,
) -> Result<(), SyncError> {
    let account = plan.source.spec.account();
    let key = plan.source.spec.ledger_key();
    // Each storage folder claimed, and each mbox file's tail marked pending, before any
    // byte is appended.
    // A folder the archive refuses (its name too long for the file system, taken by
    // another mailbox) fails the messages stored there, not the rest of All Mail.
    let mut started = Vec::new();
    let storages: BTreeSet<&MailboxName> = batch.iter().map(|(_, p)| &p.storage).collect();
    let mut refused: BTreeSet<&MailboxName> = BTreeSet::new();
    for s in storages {
        if let Err(line) = archive.sink.claim(s)? {
            for (l, _) in batch.iter().filter(|(_, p)| &p.storage == s) {
                report.failures.push(Failure {
                    mailbox: name.to_string(),
                    message: format!("UID {}", l.uid),
                    error: format!("{account}: {line}"),
                });
            }
            refused.insert(s);
            continue;
        }
        if let Some(mark) = archive.sink.tail(s)? {
            crate::archive::check_mbox_known(archive, &mark)?;
            archive.ledger.set_pending(&mark)?;
            started.push(mark);
        }
    }
    let by_uid: BTreeMap<u32, &(Listed, Placement)> = batch
        .iter()
        .filter(|(_, p)| !refused.contains(&p.storage))
        .map(|m| (m.0.uid, m))
        .collect();
    if by_uid.is_empty() {
        return Ok(());
    }
    let uids: Vec<u32> = by_uid.keys().copied().collect();
    let mut records: Vec<Record> = Vec::new();
    let mut no_body: Vec<(u32, String)> = Vec::new();
    let result = client.fetch_bodies(
        &uids,
        &mut |f: Fetched<'_>| -> Result<(), super::FetchFailure> {
            progress.message_done(f.size);
            let Some((l, p)) = by_uid.get(&f.uid).copied() else {
                return Ok(());
            };
            if let Some(sent) = f.no_body {
                no_body.push((f.uid, sent));
                return Ok(());
            }
            let gm = l.gmail.clone().unwrap_or_default();
            let internal_date = f
                .internal_date
                .or(l.internal_date)
                .unwrap_or_else(|| headers::fallback_date(f.body, now_secs()).0);
            let mut flags = f.flags.clone();
            for fl in p.flags.iter() {
                flags.insert(fl.clone());
            }
            let identity = gmail_identity(&key, gm.msgid);
            let mut staged = archive.sink.stage(&p.storage)?;
            let path = staged.path().to_path_buf();
            std::io::Write::write_all(&mut staged, f.body)
                .map_err(|e| Error::archive_io(&path, e))?;
            let msg = staged.finish().map_err(|e| Error::archive_io(&path, e))?;
            let (size, sha256) = (msg.size, msg.sha256.clone());
            let meta = PlaceMeta {
                mailbox: p.storage.clone(),
                flags: flags.clone(),
                internal_date,
                envelope_from: headers::envelope_from(&msg.header),
                identity: identity.clone(),
            };
            let stored = archive.sink.place(msg, &meta)?;
            let base = Record {
                account: key.clone(),
                mailbox: p.storage.to_string(),
                uidl: None,
                uidvalidity: Some(uidvalidity),
                uid: Some(f.uid),
                identity,
                size,
                wire_size: Some(f.size),
                sha256,
                internal_date,
                flags: flags.to_imap_list(),
                location: stored.location,
                stored_at: now_secs(),
                verified: true,
            };
            for m in p.mailboxes.iter().filter(|m| **m != p.storage) {
                records.push(Record {
                    mailbox: m.to_string(),
                    identity: member_identity(&key, gm.msgid, m),
                    ..base.clone()
                });
            }
            records.push(base);
            Ok(())
        },
    );
    // Durable first, then recorded: whatever was stored before an error is kept.
    let mut tails = archive.sink.sync()?;
    for mark in &started {
        tails = crate::archive::batch_tails(Some(mark), tails);
    }
    archive.ledger.record_batch(&records, &tails)?;
    for r in &records {
        if let Some(id) = msgid_of(&key, &r.identity) {
            known.entry(id).or_default().push(r.clone());
        }
    }
    let stored: Vec<&Record> = records
        .iter()
        .filter(|r| !r.identity.contains(" IN "))
        .collect();
    mreport.fetched += stored.len() as u64;
    mreport.fetched_bytes += stored.iter().map(|r| r.size).sum::<u64>();
    let failed_alone: Vec<u32> = no_body.iter().map(|(uid, _)| *uid).collect();
    for (uid, sent) in no_body {
        report.failures.push(Failure {
            mailbox: name.to_string(),
            message: format!("UID {uid}"),
            error: format!(
                "{account}: mailbox {name} UID {uid}: the server sent no message ({sent}); the next run tries again"
            ),
        });
    }
    match result {
        Ok(missing) => {
            for uid in missing {
                report.failures.push(Failure {
                    mailbox: name.to_string(),
                    message: format!("UID {uid}"),
                    error: format!(
                        "{account}: mailbox {name} UID {uid}: the server did not return this message; the next run asks again"
                    ),
                });
            }
            Ok(())
        }
        Err(super::FetchFailure::Archive(e)) => Err(SyncError::Fatal(e)),
        // A refusal of these messages (not the server throttling or unavailable: that ends
        // the run, to be tried later).
        Err(super::FetchFailure::Imap(e)) if super::refusal_of_messages(&e) => {
            // The batch refused: each message not stored (nor failed already) is asked for
            // again alone, so that one damaged message fails alone; refused alone, it is a
            // failure of its UID, named with the server's words; the next run asks again.
            let text = imap_error(&account, &format!("mailbox {name}"), e).to_string();
            let mut done: BTreeSet<u32> = records.iter().filter_map(|r| r.uid).collect();
            done.extend(failed_alone.iter().copied());
            if batch.len() > 1 {
                for m in batch.iter().filter(|m| !done.contains(&m.0.uid)) {
                    fetch_batch(
                        plan,
                        client,
                        archive,
                        name,
                        uidvalidity,
                        std::slice::from_ref(m),
                        known,
                        progress,
                        report,
                        mreport,
                    )?;
                }
                return Ok(());
            }
            for uid in uids.iter().filter(|u| !done.contains(u)) {
                report.failures.push(Failure {
                    mailbox: name.to_string(),
                    message: format!("UID {uid}"),
                    error: text.clone(),
                });
            }
            Ok(())
        }
        Err(super::FetchFailure::Imap(e)) => Err(classify(&account, &format!("mailbox {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders() -> SystemFolders {
        SystemFolders {
            sent: MailboxName::from_levels(&["[Gmail]", "Sent Mail"]),
            drafts: MailboxName::from_levels(&["[Gmail]", "Drafts"]),
            spam: MailboxName::from_levels(&["[Gmail]", "Spam"]),
            trash: MailboxName::from_levels(&["[Gmail]", "Trash"]),
            archive: MailboxName::new(ARCHIVE_FOLDER),
        }
    }

    #[test]
    fn where_a_gmail_message_is_stored_and_which_mailboxes_it_is_in() {
        // (labels, storage folder, mailboxes, added flags)
        let table: &[(&[&str], &str, &[&str], &str)] = &[
            (&["\\Inbox"], "INBOX", &["INBOX"], ""),
            (&[], "Archive", &["Archive"], ""),
            (&["\\Important"], "Archive", &["Archive"], "$Important"),
            (&["\\Sent"], "[Gmail]/Sent Mail", &["[Gmail]/Sent Mail"], ""),
            (&["\\Draft"], "[Gmail]/Drafts", &["[Gmail]/Drafts"], ""),
            // The first user label by name holds the copy; system labels are memberships.
            (
                &["\\Inbox", "Work", "Receipts/2024", "\\Starred"],
                "Receipts/2024",
                &["INBOX", "Receipts/2024", "Work"],
                "\\Flagged",
            ),
            // Non-ASCII labels in modified UTF-7.
            (
                &["Rechnungen/&AOQ-rger"],
                "Rechnungen/ärger",
                &["Rechnungen/ärger"],
                "",
            ),
            // A user label named like a system one is a user label (Gmail refuses a user
            // label `Inbox`; `inbox` in any case is INBOX, RFC 3501 5.1).
            (
                &["Starred", "Important"],
                "Important",
                &["Important", "Starred"],
                "",
            ),
            // Trash and Spam hold their messages whatever the labels.
            (
                &["Work", "\\Trash"],
                "[Gmail]/Trash",
                &["Work", "[Gmail]/Trash"],
                "",
            ),
            (&["\\Spam"], "[Gmail]/Spam", &["[Gmail]/Spam"], ""),
            (&["\\Inbox", "\\Inbox"], "INBOX", &["INBOX"], ""),
        ];
        for (labels, storage, mailboxes, flags) in table {
            let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
            let p = placement(&labels, &folders());
            assert_eq!(p.storage.as_str(), *storage, "{labels:?}");
            let got: Vec<&str> = p.mailboxes.iter().map(|m| m.as_str()).collect();
            assert_eq!(got, *mailboxes, "{labels:?}");
            assert_eq!(p.flags.to_imap_list(), *flags, "{labels:?}");
        }
    }

    #[test]
    fn gmail_identities() {
        let k = "imap:a@imap.gmail.com";
        assert_eq!(
            gmail_identity(k, 17),
            "imap:a@imap.gmail.com GMAIL MSGID 17"
        );
        let inbox = MailboxName::inbox();
        let m = member_identity(k, 17, &inbox);
        assert_eq!(m, "imap:a@imap.gmail.com GMAIL MSGID 17 IN INBOX");
        assert_eq!(msgid_of(k, &m), Some(17));
        assert_eq!(msgid_of(k, &gmail_identity(k, 17)), Some(17));
        assert_eq!(msgid_of("imap:b@h", &m), None);
        assert_eq!(
            msgid_of(k, "imap:a@imap.gmail.com MAILBOX INBOX UID 3"),
            None
        );
    }
}
