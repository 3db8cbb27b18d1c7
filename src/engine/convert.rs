//! `convert`: copy every message of one archive into another (issue 5), keeping the message
//! bytes, flags, keywords, INTERNALDATE and folders. The source is any [`ArchiveSource`]
//! (given by an opener, so a server source can be used the same way: `backup … zip:X.zip`);
//! the target is one of:
//!
//! | target | written by | what the target remembers |
//! | --- | --- | --- |
//! | `maildir:PATH`, `mbox:PATH` | [`crate::archive::open`] + its [`crate::archive::writer::Sink`] | its ledger: a real mailkeep archive (locked, kill-safe, flags and dates exact) |
//! | `zip:PATH.zip` | [`crate::archive::zip::writer::ZipOut`] | its `manifest.jsonl`; the old zip is copied into `PATH.zip.partial`, renamed over it when complete |
//! | `eml:DIR` | [`crate::archive::eml::writer::EmlOut`] | its `manifest.jsonl`, appended after each durable batch |
//! | `thunderbird:DIR` | [`crate::archive::thunderbird::writer::ThunderbirdOut`] | nothing: folders are written whole, never appended to |
//!
//! **Identities.** Every message is written under an identity: its
//! [`ArchivedMessage::source_id`] when the source knows one (the ledger of a mailkeep archive,
//! a zip's or eml folder's manifest, a server), else one made up from its content and place,
//! stable from run to run: `convert:<sha256> MAILBOX <mailbox> #<n>`, `n` counting the
//! messages with those bytes in that mailbox in source order (identical copies stay distinct).
//! A message whose identity the target already holds is not written again, so a rerun of the
//! same convert writes nothing (and a killed one finishes the job). The target's known
//! identities are offered to the source ([`ArchiveSource::skip_known`]) before each mailbox, so
//! a server source does not even fetch them.
//!
//! Into a mailkeep archive, a message is recorded in the ledger like a backup records it
//! (staged, placed, made durable, then recorded in batches; the same account, UIDL or
//! UIDVALIDITY and UID when the identity is a POP3 or IMAP one, see [`record_keys`]), so a
//! later `backup` of that account into the converted archive goes on incrementally.
//!
//! Message bytes are never rewritten, except in Thunderbird output, which carries flags as
//! `X-Mozilla-*` header lines (and mboxo quoting), the way Thunderbird itself stores them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use super::now_secs;
use crate::archive::eml::writer::EmlOut;
use crate::archive::ledger::Record;
use crate::archive::reader::ArchivedMessage;
use crate::archive::thunderbird::writer::ThunderbirdOut;
use crate::archive::writer::PlaceMeta;
use crate::archive::zip::writer::ZipOut;
use crate::archive::{self, OpenArchive};
use crate::core::endpoint::{ArchiveKind, ArchiveSpec};
use crate::core::error::{Error, Exit, Result};
use crate::core::headers;
use crate::core::message::MailboxName;
use crate::engine::report::{human_bytes, Failure};

/// A mailkeep archive's ledger is committed after this many messages...
const BATCH_MESSAGES: usize = 200;
/// ...or this many bytes, whichever comes first.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

pub use crate::archive::reader::SourceOpener;

/// Where a conversion writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertTarget {
    /// `maildir:PATH` or `mbox:PATH`: a mailkeep archive.
    Archive(ArchiveSpec),
    /// `zip:PATH.zip`.
    Zip(PathBuf),
    /// `eml:DIR`.
    Eml(PathBuf),
    /// `thunderbird:DIR`: a Local Folders tree.
    Thunderbird(PathBuf),
}

impl ConvertTarget {
    /// The target as users write it.
    pub fn describe(&self) -> String {
        match self {
            ConvertTarget::Archive(a) => a.display(),
            ConvertTarget::Zip(p) => format!("zip:{}", p.display()),
            ConvertTarget::Eml(p) => format!("eml:{}", p.display()),
            ConvertTarget::Thunderbird(p) => format!("thunderbird:{}", p.display()),
        }
    }

    /// The path written to.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ConvertTarget::Archive(a) => &a.path,
            ConvertTarget::Zip(p) | ConvertTarget::Eml(p) | ConvertTarget::Thunderbird(p) => p,
        }
    }
}

/// Parses a conversion target: `maildir:PATH`, `mbox:PATH`, `zip:PATH`, `eml:DIR` or
/// `thunderbird:DIR` (the kind is required; `~/` is `home`). Pure.
///
/// Errors: [`Error::Usage`] naming the string.
pub fn parse_target(s: &str, home: Option<&std::path::Path>) -> Result<ConvertTarget> {
    let kinds = "maildir:PATH, mbox:PATH, zip:PATH.zip, eml:DIR or thunderbird:DIR";
    let Some((kind, path)) = s.split_once(':') else {
        return Err(Error::Usage(format!("`{s}`: write the target as {kinds}")));
    };
    if path.is_empty() {
        return Err(Error::Usage(format!(
            "`{s}`: the target path is empty (write `{kind}:PATH`)"
        )));
    }
    let path = match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(path),
    };
    Ok(match kind.to_ascii_lowercase().as_str() {
        "maildir" => ConvertTarget::Archive(ArchiveSpec {
            kind: ArchiveKind::Maildir,
            path,
        }),
        "mbox" => ConvertTarget::Archive(ArchiveSpec {
            kind: ArchiveKind::Mbox,
            path,
        }),
        "zip" => ConvertTarget::Zip(path),
        "eml" => ConvertTarget::Eml(path),
        "thunderbird" => ConvertTarget::Thunderbird(path),
        other => {
            return Err(Error::Usage(format!(
                "`{s}`: unknown target kind `{other}:` (write {kinds})"
            )))
        }
    })
}

/// The identity a message is written under (see the module documentation): its source
/// identity, unless missing or already used in this run, else
/// `convert:<sha256> MAILBOX <mailbox> #<n>`. `seen` holds the identities used so far in this
/// run, `occurrences` counts made-up identities per SHA-256 in the current mailbox. Pure.
pub fn identity_for(
    m: &ArchivedMessage,
    seen: &mut HashSet<String>,
    occurrences: &mut HashMap<String, u64>,
) -> String {
    if let Some(id) = &m.source_id {
        if seen.insert(id.clone()) {
            return id.clone();
        }
    }
    loop {
        let n = occurrences.entry(m.sha256.clone()).or_insert(0);
        *n += 1;
        let id = format!("convert:{} MAILBOX {} #{n}", m.sha256, m.mailbox);
        if seen.insert(id.clone()) {
            return id;
        }
    }
}

/// The ledger fields an identity implies: (account, UIDL, UIDVALIDITY, UID). POP3 identities
/// (`pop3:USER@HOST UIDL <uidl>[ SIZE <n>]`, `pop3:USER@HOST CONTENT <key>`) give their
/// account and UIDL, IMAP identities (`imap:USER@HOST MAILBOX <m> UIDVALIDITY <v> UID <u>`)
/// their account, UIDVALIDITY and UID, so a later backup of that account into the converted
/// archive knows them; anything else is account `convert`. Pure.
pub fn record_keys(identity: &str) -> (String, Option<String>, Option<u32>, Option<u32>) {
    let other = || ("convert".to_string(), None, None, None);
    if identity.starts_with("pop3:") {
        for marker in [" UIDL ", " CONTENT "] {
            if let Some((account, rest)) = identity.split_once(marker) {
                let uidl = rest.split(" SIZE ").next().unwrap_or(rest);
                return (account.to_string(), Some(uidl.to_string()), None, None);
            }
        }
        return other();
    }
    if identity.starts_with("imap:") {
        let parsed = (|| {
            let (account, _) = identity.split_once(" MAILBOX ")?;
            let (rest, uid) = identity.rsplit_once(" UID ")?;
            let (_, validity) = rest.rsplit_once(" UIDVALIDITY ")?;
            Some((
                account.to_string(),
                None,
                Some(validity.parse().ok()?),
                Some(uid.parse().ok()?),
            ))
        })();
        return parsed.unwrap_or_else(other);
    }
    other()
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// One mailbox of a conversion.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConvertMailboxReport {
    /// The mailbox, levels joined with `/`.
    pub mailbox: String,
    /// Messages read from the source.
    pub read: u64,
    /// Messages written to the target.
    pub written: u64,
    /// Their size in bytes (stored form, LF line ends).
    pub written_bytes: u64,
    /// Messages the target held already (not written again), including those the source did
    /// not even read because the target knew their identity.
    pub already_present: u64,
    /// Messages the source did not hand out (empty, deleted in Thunderbird, vanished).
    pub skipped: u64,
    /// Messages that could not be converted (see the failures).
    pub failed: u64,
    /// Messages dated by their file's modification time because the file gave no date
    /// ([`crate::archive::reader::SourceCounts::dated_from_mtime`]); left out of the JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub dated_from_mtime: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a conversion did. Sizes in bytes, durations in seconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConvertReport {
    /// `convert`.
    pub command: String,
    /// The source (`maildir:/home/alice/Mail/archive`).
    pub source: String,
    /// The target (`zip:/home/alice/archive.zip`).
    pub target: String,
    pub read: u64,
    pub written: u64,
    pub written_bytes: u64,
    pub already_present: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Messages dated by their file's modification time (the sum of the mailboxes'); left out
    /// of the JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub dated_from_mtime: u64,
    /// Per source mailbox.
    pub mailboxes: Vec<ConvertMailboxReport>,
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
    /// The error that stopped the run, if one did.
    pub error: Option<String>,
    pub duration_secs: f64,
    pub exit: Exit,
    pub exit_code: u8,
}

impl fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}: {} read, {} written ({}), {} already present",
            if self.command.is_empty() {
                "convert"
            } else {
                &self.command
            },
            self.source,
            self.target,
            self.read,
            self.written,
            human_bytes(self.written_bytes),
            self.already_present
        )?;
        if self.skipped > 0 {
            write!(f, ", {} skipped in the source", self.skipped)?;
        }
        if self.failed > 0 {
            write!(f, ", {} failed", self.failed)?;
        }
        write!(
            f,
            ", {} mailbox{} in {:.1} s",
            self.mailboxes.len(),
            if self.mailboxes.len() == 1 { "" } else { "es" },
            self.duration_secs
        )?;
        if self.error.is_some() {
            // The error itself is on stderr; the counts are only how far the run got.
            write!(f, "; stopped by an error")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

/// A conversion target being written.
trait Target {
    /// Identities the target holds.
    fn known(&self) -> &HashSet<String>;
    /// Checks that `mailbox` gets a folder of its own ([`crate::archive::writer::Sink::claim`]);
    /// `Ok(Err(line))` refuses this mailbox only.
    fn claim(&mut self, mailbox: &MailboxName) -> Result<std::result::Result<(), String>> {
        let _ = mailbox;
        Ok(Ok(()))
    }
    /// Called before the messages of `mailbox`.
    fn start_mailbox(&mut self, mailbox: &MailboxName) -> Result<()>;
    /// Writes one message under `identity`.
    fn put(&mut self, m: &ArchivedMessage, identity: &str) -> Result<()>;
    /// Called after the messages of `mailbox`; `empty` when the source had none in it.
    fn end_mailbox(&mut self, mailbox: &MailboxName, empty: bool) -> Result<()>;
    /// Makes everything durable and in place.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// `maildir:`/`mbox:`: a mailkeep archive, written like a backup writes it.
struct ArchiveTarget {
    archive: OpenArchive,
    known: HashSet<String>,
    batch: Vec<Record>,
    batch_bytes: u64,
    /// The current batch appends to an mbox file (its pending length is recorded).
    appends: Option<bool>,
}

/// Refuses to turn a folder of someone else's files into an archive: a `maildir:`/`mbox:`
/// target must be missing, empty, a mailkeep archive (it has `mailkeep/`), or, for
/// `maildir:`, a Maildir already (`cur/` or `new/`: adding message files is what Maildir is
/// made for), so a typo such as `maildir:~` does not scatter `cur/ new/ tmp/ mailkeep/` into a
/// home folder, nor `mbox:` new files and a ledger among another program's mbox files.
///
/// Errors: [`Error::Archive`] naming the folder and a file it holds.
fn check_target_folder(spec: &ArchiveSpec) -> Result<()> {
    let root = &spec.path;
    crate::archive::eml::writer::check_ancestors(root, false)?;
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(()); // missing, or not a folder: archive::open says what is wrong
    };
    let mut first = None;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let fits = match spec.kind {
            _ if name == archive::STATE_DIR && is_dir => true,
            ArchiveKind::Maildir => is_dir && matches!(name.as_str(), "cur" | "new"),
            ArchiveKind::Mbox => false,
        };
        if fits {
            return Ok(());
        }
        // The first name in sort order, so the message does not depend on directory order.
        first = Some(match first {
            Some(f) if f <= name => f,
            _ => name,
        });
    }
    let Some(example) = first else {
        return Ok(()); // empty
    };
    let what = match spec.kind {
        ArchiveKind::Maildir => " nor a Maildir (no cur/ or new/)",
        ArchiveKind::Mbox => "",
    };
    Err(Error::archive(
        root,
        format!(
            "is not empty (it holds `{example}`) and is not a mailkeep archive (no mailkeep/ folder){what}; convert into a new or empty folder"
        ),
    ))
}

impl ArchiveTarget {
    fn open(spec: &ArchiveSpec, warnings: &mut Vec<String>) -> Result<ArchiveTarget> {
        check_target_folder(spec)?;
        let mut archive = archive::open(spec)?;
        warnings.append(&mut archive.repairs);
        let known = archive
            .ledger
            .records()?
            .into_iter()
            .map(|r| r.identity)
            .collect();
        Ok(ArchiveTarget {
            archive,
            known,
            batch: Vec::new(),
            batch_bytes: 0,
            appends: None,
        })
    }

    /// Durable first, then recorded.
    fn flush(&mut self) -> Result<()> {
        let tails = self.archive.sink.sync()?;
        self.archive.ledger.record_batch(&self.batch, &tails)?;
        self.known.extend(self.batch.drain(..).map(|r| r.identity));
        self.batch_bytes = 0;
        self.appends = None;
        Ok(())
    }
}

impl Target for ArchiveTarget {
    fn known(&self) -> &HashSet<String> {
        &self.known
    }

    fn claim(&mut self, mailbox: &MailboxName) -> Result<std::result::Result<(), String>> {
        self.archive.sink.claim(mailbox)
    }

    fn start_mailbox(&mut self, _mailbox: &MailboxName) -> Result<()> {
        Ok(())
    }

    fn put(&mut self, m: &ArchivedMessage, identity: &str) -> Result<()> {
        let (account, uidl, uidvalidity, uid) = record_keys(identity);
        let internal_date = m.internal_date.unwrap_or_else(now_secs);
        let record = |size: u64, sha256: String, location: String| Record {
            account: account.clone(),
            mailbox: m.mailbox.to_string(),
            uidl: uidl.clone(),
            uidvalidity,
            uid,
            identity: identity.to_string(),
            size,
            wire_size: None,
            sha256,
            internal_date,
            flags: m.flags.to_imap_list(),
            location,
            stored_at: now_secs(),
            // Compared with the source archive, never with the server the identity names: a
            // converted archive's records are unverified (prune fetches and compares first).
            verified: false,
        };
        // Maildir: a file a killed run placed but did not record is found by its name.
        if let Some((stored, sha256, size)) =
            self.archive.sink.find_unrecorded(&m.mailbox, identity)?
        {
            if sha256 == m.sha256
                || sha256
                    == crate::archive::reader::sha256_hex(&crate::core::message::normalize(&m.raw))
            {
                self.batch.push(record(size, sha256, stored.location));
                return Ok(());
            }
        }
        if self.appends.is_none() {
            let tail = self.archive.sink.tail(&m.mailbox)?;
            if let Some(mark) = &tail {
                archive::check_mbox_known(&self.archive, mark)?;
                self.archive.ledger.set_pending(mark)?;
            }
            self.appends = Some(tail.is_some());
        }
        let mut staged = self.archive.sink.stage(&m.mailbox)?;
        let path = staged.path().to_path_buf();
        // A write that fails (disk full) names the message being stored too.
        let storing = |e| crate::archive::writer::storing(Error::archive_io(&path, e), &m.origin);
        staged.write_all(&m.raw).map_err(storing)?;
        let msg = staged.finish().map_err(storing)?;
        // Sources hand out the stored form (crate::core::message::normalize, idempotent), so the
        // sink stores exactly those bytes.
        if msg.sha256 != m.sha256 {
            msg.discard();
            return Err(Error::archive(
                &path,
                format!(
                    "{}: the stored bytes differ from the source's (a bug)",
                    m.origin
                ),
            ));
        }
        let meta = PlaceMeta {
            mailbox: m.mailbox.clone(),
            flags: m.flags.clone(),
            internal_date,
            envelope_from: headers::envelope_from(&msg.header),
            identity: identity.to_string(),
        };
        let (size, sha256) = (msg.size, msg.sha256.clone());
        let stored = self
            .archive
            .sink
            .place(msg, &meta)
            .map_err(|e| crate::archive::writer::storing(e, &m.origin))?;
        let r = record(size, sha256, stored.location);
        if self.appends == Some(true) {
            // mbox: noted, so a crash before the batch commit keeps what was appended.
            self.archive.ledger.record_placed(&r)?;
        }
        self.batch.push(r);
        self.batch_bytes += size;
        if self.batch.len() >= BATCH_MESSAGES || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn end_mailbox(&mut self, mailbox: &MailboxName, empty: bool) -> Result<()> {
        if empty {
            // An empty mailbox is kept: staging creates its folder (Maildir) or file (mbox);
            // the unfinished staged file is removed when dropped.
            drop(self.archive.sink.stage(mailbox)?);
        }
        self.flush()
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush()
    }
}

/// `zip:`.
struct ZipTarget(ZipOut);

impl Target for ZipTarget {
    fn known(&self) -> &HashSet<String> {
        self.0.known()
    }

    fn start_mailbox(&mut self, _mailbox: &MailboxName) -> Result<()> {
        Ok(())
    }

    fn put(&mut self, m: &ArchivedMessage, identity: &str) -> Result<()> {
        self.0
            .add(
                &m.mailbox,
                &m.raw,
                &m.flags,
                m.internal_date,
                m.date_source,
                identity,
                &m.sha256,
            )
            .map(|_| ())
    }

    fn end_mailbox(&mut self, mailbox: &MailboxName, empty: bool) -> Result<()> {
        if empty {
            self.0.add_mailbox(mailbox)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.0.finish().map(|_| ())
    }
}

/// `eml:`.
struct EmlTarget(EmlOut);

impl Target for EmlTarget {
    fn known(&self) -> &HashSet<String> {
        self.0.known()
    }

    fn start_mailbox(&mut self, _mailbox: &MailboxName) -> Result<()> {
        Ok(())
    }

    fn put(&mut self, m: &ArchivedMessage, identity: &str) -> Result<()> {
        self.0
            .add(
                &m.mailbox,
                &m.raw,
                &m.flags,
                m.internal_date,
                m.date_source,
                identity,
                &m.sha256,
            )
            .map(|_| ())
    }

    fn end_mailbox(&mut self, mailbox: &MailboxName, empty: bool) -> Result<()> {
        if empty {
            self.0.add_mailbox(mailbox)?;
        }
        self.0.flush()
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.0.finish()
    }
}

/// `thunderbird:`.
struct ThunderbirdTarget {
    out: ThunderbirdOut,
    known: HashSet<String>,
}

impl Target for ThunderbirdTarget {
    fn known(&self) -> &HashSet<String> {
        &self.known
    }

    fn start_mailbox(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.out.start_mailbox(mailbox)
    }

    fn put(&mut self, m: &ArchivedMessage, _identity: &str) -> Result<()> {
        self.out.add(&m.raw, &m.flags, m.internal_date)
    }

    fn end_mailbox(&mut self, _mailbox: &MailboxName, _empty: bool) -> Result<()> {
        self.out.end_mailbox()
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.finish()
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Runs a conversion as planned. Always returns a report; its `exit` says how it ended.
pub fn convert(plan: &crate::engine::plans::ConvertPlan) -> ConvertReport {
    convert_with(
        &|| crate::archive::reader::open(&plan.source),
        &plan.target,
        plan.store,
    )
}

/// Converts what `open` gives into `target` (`store`: zip entries uncompressed). Always
/// returns a report; its `exit` says how it ended.
pub fn convert_with(open: &SourceOpener<'_>, target: &ConvertTarget, store: bool) -> ConvertReport {
    let started = Instant::now();
    let mut report = ConvertReport {
        command: "convert".into(),
        target: target.describe(),
        ..ConvertReport::default()
    };
    let result = run(open, target, store, &mut report);
    if result.is_err() && matches!(target, ConvertTarget::Zip(_)) {
        // A zip is put in place whole or not at all: a stopped run added nothing to it.
        report.written = 0;
        report.written_bytes = 0;
        for m in &mut report.mailboxes {
            m.written = 0;
            m.written_bytes = 0;
        }
    }
    report.duration_secs = started.elapsed().as_secs_f64();
    report.exit = match &result {
        Err(e) => {
            report.error = Some(e.to_string());
            e.exit()
        }
        Ok(()) if report.failed > 0 || !report.failures.is_empty() => Exit::Partial,
        Ok(()) => Exit::Ok,
    };
    report.exit_code = report.exit.code();
    report
}

fn run(
    open: &SourceOpener<'_>,
    target: &ConvertTarget,
    store: bool,
    report: &mut ConvertReport,
) -> Result<()> {
    let mut source = open()?;
    report.source = source.describe();
    let mailboxes = source.mailboxes()?;
    let mut out: Box<dyn Target> = match target {
        ConvertTarget::Archive(spec) => Box::new(ArchiveTarget::open(spec, &mut report.warnings)?),
        ConvertTarget::Zip(p) => Box::new(ZipTarget(ZipOut::open(p, store)?)),
        ConvertTarget::Eml(p) => Box::new(EmlTarget(EmlOut::open(p)?)),
        ConvertTarget::Thunderbird(p) => Box::new(ThunderbirdTarget {
            out: ThunderbirdOut::open(p, &mailboxes)?,
            known: HashSet::new(),
        }),
    };
    let mut seen: HashSet<String> = HashSet::new();
    for mb in &mailboxes {
        let mut mr = ConvertMailboxReport {
            mailbox: mb.to_string(),
            ..ConvertMailboxReport::default()
        };
        if let Err(line) = out.claim(mb)? {
            // Its own folder or none: this mailbox is not converted, the others are.
            report.failures.push(Failure {
                mailbox: mb.to_string(),
                message: String::new(),
                error: line,
            });
            report.mailboxes.push(mr);
            continue;
        }
        source.skip_known(out.known());
        out.start_mailbox(mb)?;
        let mut occurrences: HashMap<String, u64> = HashMap::new();
        let mut result = source.messages(mb, &mut |m: ArchivedMessage| {
            mr.read += 1;
            let identity = identity_for(&m, &mut seen, &mut occurrences);
            if out.known().contains(&identity) {
                mr.already_present += 1;
                return Ok(());
            }
            out.put(&m, &identity)?;
            mr.written += 1;
            mr.written_bytes += m.raw.len() as u64;
            Ok(())
        });
        let ended = match &result {
            Ok(counts) => out.end_mailbox(mb, counts.read == 0 && counts.known == 0),
            Err(_) => Ok(()),
        };
        if let Ok(counts) = &mut result {
            for s in counts.take_failures() {
                mr.failed += 1;
                report.failures.push(Failure {
                    mailbox: mb.to_string(),
                    message: String::new(),
                    error: s.to_string(),
                });
            }
            mr.already_present += counts.known;
            mr.skipped = counts.skipped.len() as u64;
            mr.dated_from_mtime = counts.dated_from_mtime;
            if counts.dated_from_mtime > 0 {
                report
                    .warnings
                    .push(mtime_warning(mb, counts.dated_from_mtime));
            }
            for (reason, n) in counts.skipped_by_reason() {
                let first = counts
                    .skipped
                    .iter()
                    .find(|s| s.reason() == reason)
                    .map(|s| s.origin().to_string())
                    .unwrap_or_default();
                report.warnings.push(format!(
                    "{mb}: {n} message(s) skipped in the source: {reason} (first: {first})"
                ));
            }
        }
        if matches!(target, ConvertTarget::Thunderbird(_)) && (result.is_err() || ended.is_err()) {
            // A Thunderbird folder is put in place whole: this one was not.
            mr.written = 0;
            mr.written_bytes = 0;
        }
        report.read += mr.read;
        report.written += mr.written;
        report.written_bytes += mr.written_bytes;
        report.already_present += mr.already_present;
        report.skipped += mr.skipped;
        report.failed += mr.failed;
        report.dated_from_mtime += mr.dated_from_mtime;
        report.mailboxes.push(mr);
        result?;
        ended?;
    }
    report.warnings.extend(source.warnings());
    out.finish()
}

/// The warning for `n` (> 0) messages of mailbox `mb` dated by their file's modification
/// time. Pure.
pub fn mtime_warning(mb: &MailboxName, n: u64) -> String {
    format!(
        "{mb}: {n} message(s) had no date in the file (no From line date, no readable Date: or Received: header); dated from the file's modification time"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::reader::DateSource;
    use crate::core::message::Flags;

    fn msg(mailbox: &str, sha: &str, source_id: Option<&str>) -> ArchivedMessage {
        ArchivedMessage {
            mailbox: MailboxName::new(mailbox),
            raw: b"x\n".to_vec(),
            flags: Flags::new(),
            internal_date: None,
            date_source: DateSource::Unknown,
            origin: String::new(),
            sha256: sha.into(),
            source_id: source_id.map(str::to_string),
        }
    }

    #[test]
    fn identities_are_stable_and_distinct() {
        let mut seen = HashSet::new();
        let mut occ = HashMap::new();
        let ids: Vec<String> = [
            msg("INBOX", "aa", None),
            msg("INBOX", "aa", None),
            msg("INBOX", "bb", Some("pop3:a@h UIDL 1")),
            msg("INBOX", "bb", Some("pop3:a@h UIDL 1")),
            msg("INBOX", "cc", Some("convert:aa MAILBOX INBOX #1")),
        ]
        .iter()
        .map(|m| identity_for(m, &mut seen, &mut occ))
        .collect();
        assert_eq!(
            ids,
            [
                "convert:aa MAILBOX INBOX #1",
                "convert:aa MAILBOX INBOX #2",
                "pop3:a@h UIDL 1",
                "convert:bb MAILBOX INBOX #1",
                "convert:cc MAILBOX INBOX #1",
            ]
        );
        // Another mailbox counts on its own; the mailbox is part of the identity.
        let mut occ = HashMap::new();
        assert_eq!(
            identity_for(&msg("Sent", "aa", None), &mut seen, &mut occ),
            "convert:aa MAILBOX Sent #1"
        );
    }

    #[test]
    fn ledger_keys_of_identities() {
        type Keys<'a> = (&'a str, Option<&'a str>, Option<u32>, Option<u32>);
        let cases: &[(&str, Keys)] = &[
            ("pop3:a@h UIDL 0001", ("pop3:a@h", Some("0001"), None, None)),
            (
                "pop3:a@h UIDL x SIZE 12",
                ("pop3:a@h", Some("x"), None, None),
            ),
            (
                "pop3:a@h CONTENT content-1f",
                ("pop3:a@h", Some("content-1f"), None, None),
            ),
            (
                "imap:a@h MAILBOX Archive/2023 UID 9 UIDVALIDITY 77 UID 42",
                ("imap:a@h", None, Some(77), Some(42)),
            ),
            (
                "imap:a@h MAILBOX INBOX UIDVALIDITY x UID 1",
                ("convert", None, None, None),
            ),
            ("convert:ab MAILBOX INBOX #1", ("convert", None, None, None)),
            ("pop3:weird", ("convert", None, None, None)),
        ];
        for (id, (account, uidl, v, u)) in cases {
            assert_eq!(
                record_keys(id),
                (account.to_string(), uidl.map(str::to_string), *v, *u),
                "{id}"
            );
        }
    }

    #[test]
    fn summary_lines() {
        let mut r = ConvertReport {
            command: "convert".into(),
            source: "mbox:/m".into(),
            target: "zip:/z.zip".into(),
            read: 3,
            written: 2,
            written_bytes: 2000,
            already_present: 1,
            mailboxes: vec![ConvertMailboxReport::default()],
            duration_secs: 0.25,
            ..ConvertReport::default()
        };
        assert_eq!(
            r.to_string(),
            "convert mbox:/m -> zip:/z.zip: 3 read, 2 written (2.0 kB), 1 already present, 1 mailbox in 0.2 s"
        );
        r.command = "backup".into();
        r.error = Some("archive /x: boom".into());
        r.mailboxes.push(ConvertMailboxReport::default());
        assert_eq!(
            r.to_string(),
            "backup mbox:/m -> zip:/z.zip: 3 read, 2 written (2.0 kB), 1 already present, 2 mailboxes in 0.2 s; stopped by an error"
        );
    }

    #[test]
    fn targets_parse() {
        let home = std::path::Path::new("/home/a");
        let t = |s: &str| parse_target(s, Some(home));
        assert_eq!(
            t("zip:~/x.zip").unwrap(),
            ConvertTarget::Zip("/home/a/x.zip".into())
        );
        assert_eq!(
            t("MBOX:/m").unwrap(),
            ConvertTarget::Archive(ArchiveSpec {
                kind: ArchiveKind::Mbox,
                path: "/m".into()
            })
        );
        assert_eq!(t("eml:d").unwrap().describe(), "eml:d");
        assert_eq!(
            t("thunderbird:/t").unwrap(),
            ConvertTarget::Thunderbird("/t".into())
        );
        for bad in ["zip:", "/x", "imaps://a@h", "maildr:/x"] {
            let e = t(bad).unwrap_err();
            assert_eq!(e.exit(), Exit::Usage, "{bad}");
        }
    }
}
