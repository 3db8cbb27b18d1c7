//! Mail servers read as message sources, for `migrate` (issue 4): the messages stream from
//! the source server straight into the restore engine, one batch at a time, without a local
//! copy.
//!
//! - [`ImapSource`]: every selectable mailbox (LIST, filtered by `--folder`/`--exclude`),
//!   read with EXAMINE (the source is never changed: no `\Seen` set, `BODY.PEEK[]`), flags,
//!   keywords and INTERNALDATE exactly as the server reports them (RFC 3501 2.3). Identity:
//!   [`imap_identity`] (account, mailbox, UIDVALIDITY, UID), as a backup records it.
//! - [`Pop3Source`]: the maildrop as one mailbox, `INBOX` (RFC 1939 has no folders and no
//!   flags). Identity: [`pop3_identity`] (account, UIDL), as a backup records it; a server
//!   without UIDL is refused (nothing would tell a message migrated before from a new one).
//!   INTERNALDATE: the top `Received:` header, else `Date:`; flags: none, or `\Seen` with
//!   `--seen`.
//!
//! Identities given to [`ArchiveSource::skip_known`] are not fetched: a rerun of a migration
//! lists the source and downloads only what the target does not have yet.

use std::collections::HashSet;
use std::io::Read;

use crate::archive::reader::{ArchiveSource, ArchivedMessage, DateSource, Skipped, SourceCounts};
use crate::core::credentials::Password;
use crate::core::error::{Error, Result};
use crate::core::message::{normalize, Flag, Flags, MailboxName};
use crate::engine::imap::{connect as imap_connect, imap_error, imap_identity};
use crate::engine::plan::{batches, FolderFilter};
use crate::engine::plans::ServerPlan;
use crate::engine::pop3::{connect as pop3_connect, pop3_error, pop3_identity};
use crate::protocol::imap::{ImapClient, ImapError, MailboxInfo};
use crate::protocol::pop3::{Pop3Client, Pop3Error};

/// A fetch batch holds at most this many messages...
const BATCH_MESSAGES: usize = 200;
/// ...and about this many bytes (RFC822.SIZE); a larger message is fetched alone.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Connects to the server of `plan` as a source: [`ImapSource`] (folders chosen by `filter`)
/// or [`Pop3Source`] (`seen`: upload as read), with `secret` read once by the caller.
///
/// Errors: those of the connection and login, and of LIST.
pub fn open(
    plan: &ServerPlan,
    secret: &Password,
    filter: &FolderFilter,
    seen: bool,
) -> Result<Box<dyn ArchiveSource + Send>> {
    Ok(match plan.spec.protocol {
        crate::core::endpoint::Protocol::Imap => {
            Box::new(ImapSource::connect(plan, secret, filter.clone())?)
        }
        crate::core::endpoint::Protocol::Pop3 => Box::new(Pop3Source::connect(plan, secret, seen)?),
    })
}

/// An IMAP account read as a source (see the module documentation).
pub struct ImapSource {
    client: ImapClient,
    /// `user@host:port`, for messages.
    account: String,
    /// The ledger key (`imap:alice@host`), for identities.
    key: String,
    mailboxes: Vec<MailboxInfo>,
    known: HashSet<String>,
    /// `--folder`/`--exclude` patterns that matched no mailbox, one line each.
    warnings: Vec<String>,
    /// Gmail (`X-GM-EXT-1`, no folder choice): its All Mail folder and system folders. Label
    /// folders are read as folders; All Mail, Starred, Important, Spam and Trash are not;
    /// the messages in no label folder are read from All Mail as the mailbox `Archive`.
    gmail: Option<(MailboxInfo, crate::engine::imap::gmail::SystemFolders)>,
}

impl ImapSource {
    /// Connects and logs in with `secret` (read once by the caller, so that a password
    /// command or prompt is not repeated per connection), and lists the mailboxes `filter`
    /// wants.
    ///
    /// Errors: those of [`crate::engine::imap::connect`] (network, TLS, authentication) and of
    /// LIST.
    pub fn connect(plan: &ServerPlan, secret: &Password, filter: FolderFilter) -> Result<Self> {
        let account = plan.spec.account();
        let mut client = imap_connect(plan, secret)?;
        let listed = client
            .list_mailboxes()
            .map_err(|e| imap_error(&account, "LIST", e))?;
        let warnings = filter.check(&account, listed.iter().map(|m| m.name.as_str()))?;
        let mut mailboxes: Vec<MailboxInfo> = listed
            .into_iter()
            .filter(|m| m.selectable && filter.wants(m.name.as_str()))
            .collect();
        mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
        mailboxes.dedup_by(|a, b| a.name == b.name);
        let mut warnings = warnings;
        let mut gmail = None;
        if client.capabilities().has("X-GM-EXT-1") && !filter.is_filtering() {
            use crate::protocol::imap::SpecialUse;
            let folders = crate::engine::imap::gmail::SystemFolders::from_list(&mailboxes);
            let all = mailboxes
                .iter()
                .find(|m| m.special_use == Some(SpecialUse::All))
                .cloned();
            mailboxes.retain(|m| {
                !matches!(
                    m.special_use,
                    Some(
                        SpecialUse::All
                            | SpecialUse::Flagged
                            | SpecialUse::Junk
                            | SpecialUse::Trash
                    )
                ) && !m
                    .attributes
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case("\\Important"))
            });
            if let Some(all) = all {
                warnings.push(format!(
                    "{account}: Gmail: each label folder is copied as a folder (a message with several labels once per label); All Mail, Starred, Important, Spam and Trash are not copied; messages in no label folder go to `{}`",
                    folders.archive
                ));
                gmail = Some((all, folders));
            }
        }
        if mailboxes.is_empty() && filter.is_filtering() {
            // As `backup` into Maildir or mbox: a typo in a cron job's --folder must not back
            // up nothing, silently, every night.
            return Err(Error::Usage(format!(
                "{account}: no mailbox matches --folder/--exclude (`mailkeep list` shows the mailboxes; `Archive` does not include its subfolders, `Archive/**` does)"
            )));
        }
        Ok(ImapSource {
            client,
            key: plan.spec.ledger_key(),
            account,
            mailboxes,
            known: HashSet::new(),
            warnings,
            gmail,
        })
    }

    /// The mailbox of a Gmail source's messages in no label folder (`Archive`, or `Archive
    /// (only in All Mail)` when a label is called `Archive`).
    fn gmail_archive(&self) -> Option<MailboxName> {
        let (_, folders) = self.gmail.as_ref()?;
        let name = folders.archive.clone();
        (!self.mailboxes.iter().any(|m| m.name == name)).then_some(name)
    }
}

/// Why a batch stopped: the server, or the consumer of the messages.
enum Stop {
    Imap(ImapError),
    Consumer(Error),
}

impl From<ImapError> for Stop {
    fn from(e: ImapError) -> Self {
        Stop::Imap(e)
    }
}

impl ImapSource {
    /// Fetches `uids` of the examined `mailbox` and hands each message to `f`, counting in
    /// `counts` and noting in `handed` every UID the server answered for (a message, or
    /// `BODY[] NIL`). UIDs the server did not return are counted as vanished.
    fn fetch_uids(
        &mut self,
        mailbox: &MailboxName,
        selected: &crate::protocol::imap::Selected,
        uids: &[u32],
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
        counts: &mut SourceCounts,
        handed: &mut HashSet<u32>,
    ) -> std::result::Result<(), Stop> {
        let account = self.account.clone();
        let key = &self.key;
        let mut read = 0u64;
        let mut no_body = Vec::new();
        let r = self
            .client
            .fetch_bodies(uids, &mut |m| -> std::result::Result<(), Stop> {
                handed.insert(m.uid);
                if let Some(sent) = m.no_body {
                    // Nothing to upload; a failure, tried again next run.
                    no_body.push(Skipped::NoBody {
                        origin: format!("{account} {mailbox} UID {}", m.uid),
                        sent,
                    });
                    return Ok(());
                }
                let raw = normalize(m.body);
                let sha256 = crate::archive::reader::sha256_hex(&raw);
                let flags = m.flags.clone();
                read += 1;
                // No believable INTERNALDATE: the message's own headers, else none (the
                // target's APPEND time, reported as an unknown date).
                let (internal_date, date_source) = match m.internal_date {
                    Some(t) => (Some(t), DateSource::Server),
                    None => match crate::archive::reader::header_date(&raw) {
                        Some((t, src)) => (Some(t), src),
                        None => (None, DateSource::Unknown),
                    },
                };
                f(ArchivedMessage {
                    mailbox: mailbox.clone(),
                    raw,
                    flags,
                    internal_date,
                    date_source,
                    origin: format!("{account} {mailbox} UID {}", m.uid),
                    sha256,
                    source_id: Some(imap_identity(key, mailbox, selected.uidvalidity, m.uid)),
                })
                .map_err(Stop::Consumer)
            });
        counts.read += read;
        counts.skipped.append(&mut no_body);
        let gone = r?;
        counts
            .skipped
            .extend(gone.into_iter().map(|uid| Skipped::Vanished {
                origin: format!("{account} {mailbox} UID {uid}"),
            }));
        Ok(())
    }
}

impl ArchiveSource for ImapSource {
    fn describe(&self) -> String {
        format!("imap:{}", self.account)
    }

    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        let mut out: Vec<MailboxName> = self.mailboxes.iter().map(|m| m.name.clone()).collect();
        out.extend(self.gmail_archive());
        out.sort();
        Ok(out)
    }

    fn skip_known(&mut self, known: &HashSet<String>) {
        self.known = known.clone();
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let mut counts = SourceCounts::default();
        // Gmail's `Archive`: the messages of All Mail in no label folder.
        let archive_of = match (&self.gmail, self.gmail_archive()) {
            (Some((all, folders)), Some(name)) if &name == mailbox => {
                Some((all.clone(), folders.clone()))
            }
            _ => None,
        };
        let info = match &archive_of {
            Some((all, _)) => all.clone(),
            None => match self.mailboxes.iter().find(|m| &m.name == mailbox) {
                Some(m) => m.clone(),
                None => return Ok(counts),
            },
        };
        let account = self.account.clone();
        let selected = self
            .client
            .examine(&info)
            .map_err(|e| imap_error(&account, &format!("EXAMINE {}", info.name), e))?;
        let listing = match &archive_of {
            Some((_, folders)) => {
                let archive = folders.archive.clone();
                self.client
                    .list_gmail()
                    .map_err(|e| {
                        imap_error(&account, &format!("{}: UID FETCH (listing)", info.name), e)
                    })?
                    .into_iter()
                    .filter(|l| {
                        let labels = l
                            .gmail
                            .as_ref()
                            .map(|g| g.labels.clone())
                            .unwrap_or_default();
                        crate::engine::imap::gmail::placement(&labels, folders).storage == archive
                    })
                    .collect()
            }
            None => self
                .client
                .list_messages(None)
                .map_err(|e| imap_error(&account, &format!("{mailbox}: UID FETCH (listing)"), e))?,
        };
        let limit = crate::core::limits::max_message_size();
        let wanted: Vec<_> = listing
            .into_iter()
            .filter(|l| {
                let id = imap_identity(&self.key, mailbox, selected.uidvalidity, l.uid);
                if self.known.contains(&id) {
                    counts.known += 1;
                    false
                } else if l.size > limit {
                    // RFC822.SIZE over --max-message-size: not fetched, a failure.
                    counts.skipped.push(Skipped::TooLarge {
                        origin: format!("{account} {mailbox} UID {}", l.uid),
                        size: Some(l.size),
                    });
                    false
                } else {
                    true
                }
            })
            .collect();
        let sizes: Vec<u64> = wanted.iter().map(|l| l.size).collect();
        for range in batches(&sizes, BATCH_MESSAGES, BATCH_BYTES) {
            let uids: Vec<u32> = wanted[range].iter().map(|l| l.uid).collect();
            let mut handed = HashSet::new();
            let e = match self.fetch_uids(mailbox, &selected, &uids, f, &mut counts, &mut handed) {
                Ok(()) => continue,
                Err(Stop::Consumer(e)) => return Err(e),
                Err(Stop::Imap(e)) => e,
            };
            // A refusal of a batch of several messages: each not handed out is asked for
            // alone, so that one message the server cannot send (a damaged mail file) fails
            // alone; when every one of them is refused too, the mailbox fails, as before.
            let unstored: Vec<u32> = uids
                .iter()
                .copied()
                .filter(|u| !handed.contains(u))
                .collect();
            if uids.len() < 2
                || !crate::engine::imap::refusal_of_messages(&e)
                || self.client.is_broken()
            {
                return Err(imap_error(&account, &format!("{mailbox}: UID FETCH"), e));
            }
            let mut refused = Vec::new();
            let mut answered = false;
            for uid in &unstored {
                match self.fetch_uids(mailbox, &selected, &[*uid], f, &mut counts, &mut handed) {
                    Ok(()) => answered = true,
                    Err(Stop::Consumer(e)) => return Err(e),
                    Err(Stop::Imap(e @ (ImapError::No { .. } | ImapError::Bad { .. })))
                        if crate::engine::imap::refusal_of_messages(&e) =>
                    {
                        refused.push((*uid, e))
                    }
                    Err(Stop::Imap(e)) => {
                        return Err(imap_error(&account, &format!("{mailbox}: UID FETCH"), e))
                    }
                }
            }
            if crate::engine::plan::after_refusal(unstored.len(), refused.len(), answered)
                == crate::engine::plan::AfterRefusal::MailboxStops
            {
                return Err(imap_error(&account, &format!("{mailbox}: UID FETCH"), e));
            }
            for (uid, e) in refused {
                let reply = match e {
                    ImapError::No { command, text } => format!("`NO {text}` to {command}"),
                    ImapError::Bad { command, text } => format!("`BAD {text}` to {command}"),
                    other => other.to_string(),
                };
                counts.skipped.push(Skipped::Refused {
                    origin: format!("{account} {mailbox} UID {uid}"),
                    reply,
                });
            }
        }
        Ok(counts)
    }
}

/// A POP3 maildrop read as a source (see the module documentation).
pub struct Pop3Source {
    client: Option<Pop3Client>,
    account: String,
    key: String,
    /// `--seen`: upload as read.
    seen: bool,
    known: HashSet<String>,
}

impl Pop3Source {
    /// Connects and logs in with `secret`.
    ///
    /// Errors: those of the POP3 login (network, TLS, authentication).
    pub fn connect(plan: &ServerPlan, secret: &Password, seen: bool) -> Result<Self> {
        let (client, account) = pop3_connect(plan, secret)?;
        Ok(Pop3Source {
            client: Some(client),
            account,
            key: plan.spec.ledger_key(),
            seen,
            known: HashSet::new(),
        })
    }
}

impl Drop for Pop3Source {
    fn drop(&mut self) {
        // QUIT without DELE changes nothing; it ends the session cleanly (and releases the
        // maildrop lock some servers hold).
        if let Some(c) = self.client.take() {
            let _ = c.quit();
        }
    }
}

/// Why a RETR stopped.
enum Pop3Stop {
    Pop3(Pop3Error),
    Consumer(Error),
}

impl From<Pop3Error> for Pop3Stop {
    fn from(e: Pop3Error) -> Self {
        Pop3Stop::Pop3(e)
    }
}

impl ArchiveSource for Pop3Source {
    fn describe(&self) -> String {
        format!("pop3:{}", self.account)
    }

    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        Ok(vec![MailboxName::inbox()])
    }

    fn skip_known(&mut self, known: &HashSet<String>) {
        self.known = known.clone();
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let mut counts = SourceCounts::default();
        if !mailbox.is_inbox() {
            return Ok(counts);
        }
        let account = self.account.clone();
        let client = self.client.as_mut().ok_or_else(|| Error::Network {
            account: account.clone(),
            detail: "the POP3 session was lost earlier in this run".into(),
        })?;
        let sizes = client.list().map_err(|e| pop3_error(&account, "LIST", e))?;
        let Some(uidls) = client.uidl().map_err(|e| pop3_error(&account, "UIDL", e))? else {
            return Err(Error::Protocol {
                account,
                detail: "the server has no UIDL (RFC 1939 7): a migration could not tell a message it copied before from a new one; back it up with `mailkeep backup` and restore the archive instead".into(),
            });
        };
        // A UIDL listed for several messages names none of them: those are read and told
        // apart by content (`<identity> SHA <16 hex>`, crate::engine::plan::pop3_content_twin),
        // as a backup does; so is a UIDL whose duplicates an earlier run copied.
        let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (_, uidl) in &uidls {
            *count.entry(uidl.as_str()).or_default() += 1;
        }
        // A message LIST shows and the UIDL listing leaves out has no name to copy it under:
        // a failure (never skipped in silence), tried again next run.
        let named: HashSet<u32> = uidls.iter().map(|(n, _)| *n).collect();
        for (number, _) in &sizes {
            if !named.contains(number) {
                counts.skipped.push(Skipped::NoBody {
                    origin: format!("{account} message {number}"),
                    sent: "LIST shows it, the UIDL listing leaves it out".into(),
                });
            }
        }
        let mut fetch: Vec<(u32, String)> = Vec::new();
        // Bases told apart by content, with whether they are repeated in this listing.
        let mut by_content: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
        for (number, uidl) in &uidls {
            let id = pop3_identity(&self.key, uidl);
            let repeated = count[uidl.as_str()] > 1;
            let twinned = self
                .known
                .iter()
                .any(|k| k.rsplit_once(" SHA ").is_some_and(|(b, _)| b == id));
            if !repeated && self.known.contains(&id) {
                counts.known += 1;
                continue;
            }
            if repeated || twinned {
                by_content.insert(*number, repeated);
            }
            fetch.push((*number, id));
        }
        let numbers: Vec<u32> = fetch.iter().map(|(n, _)| *n).collect();
        let ids: std::collections::HashMap<u32, String> = fetch.into_iter().collect();
        let known = &self.known;
        let mut known_now = 0u64;
        let flags: Flags = if self.seen {
            [Flag::Seen].into_iter().collect()
        } else {
            Flags::new()
        };
        let now = crate::engine::now_secs();
        let mut read = 0u64;
        let r = client.retr_each(
            &numbers,
            |n, body: &mut dyn Read| -> std::result::Result<(), Pop3Stop> {
                let mut wire = Vec::new();
                body.read_to_end(&mut wire)
                    .map_err(|e| Pop3Stop::Pop3(Pop3Error::Io(e)))?;
                let raw = normalize(&wire);
                drop(wire);
                let end = crate::archive::reader::header_end(&raw);
                let (date, source) = match crate::core::headers::arrival_date(&raw[..end], now) {
                    (_, crate::core::headers::DateSource::Now) => (None, DateSource::Unknown),
                    (t, crate::core::headers::DateSource::Received) => {
                        (Some(t), DateSource::Received)
                    }
                    (t, crate::core::headers::DateSource::DateHeader) => {
                        (Some(t), DateSource::DateHeader)
                    }
                };
                let sha256 = crate::archive::reader::sha256_hex(&raw);
                let mut id = ids.get(&n).cloned();
                if let (Some(base), Some(repeated)) = (&id, by_content.get(&n)) {
                    let twin = crate::engine::plan::pop3_content_twin(base, &sha256);
                    if known.contains(&twin) {
                        known_now += 1;
                        return Ok(());
                    }
                    if *repeated {
                        id = Some(twin);
                    }
                }
                read += 1;
                f(ArchivedMessage {
                    mailbox: mailbox.clone(),
                    raw,
                    flags: flags.clone(),
                    internal_date: date,
                    date_source: source,
                    origin: format!(
                        "{account} message {n}{}",
                        id.as_deref()
                            .and_then(|i| i.rsplit_once(" UIDL "))
                            .map(|(_, u)| format!(" (UIDL {u})"))
                            .unwrap_or_default()
                    ),
                    sha256,
                    source_id: id,
                })
                .map_err(Pop3Stop::Consumer)
            },
        );
        counts.read += read;
        counts.known += known_now;
        match r {
            Ok(()) => Ok(counts),
            Err(Pop3Stop::Consumer(e)) => Err(e),
            Err(Pop3Stop::Pop3(e)) => Err(pop3_error(&account, "RETR", e)),
        }
    }
}
