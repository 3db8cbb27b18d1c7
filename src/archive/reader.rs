//! Archives as message sources: the restore side of the engine. A source lists an archive's
//! mailboxes and streams its messages, one at a time, with the flags, keywords and
//! INTERNALDATE the archive knows, so that the engine can APPEND them to a server.
//!
//! Five kinds, written the way users write them (DESIGN.md, "One engine, many endpoints"):
//!
//! | spec | reader |
//! | --- | --- |
//! | `maildir:PATH` | [`maildir::MaildirSource`]: Maildir++ and plain nested layouts |
//! | `mbox:PATH` | [`mbox::MboxSource`]: one mbox file, or a directory tree of `*.mbox` files |
//! | `eml:DIR` | [`eml::EmlSource`]: a directory tree of single-message files |
//! | `thunderbird:PATH` | [`thunderbird::ThunderbirdSource`]: `Mail/Local Folders`, `ImapMail/<server>` |
//! | `zip:PATH.zip` | [`zip::ZipSource`]: a zip of `.eml` files with mailkeep's `manifest.jsonl` |
//!
//! Contracts shared by every source:
//! - A source never writes to the archive it reads: no renames, no lock file created, no ledger
//!   change (the ledger of a mailkeep archive is opened read-only, see [`ledger_view`]). The
//!   `maildir:` and `mbox:` readers of a mailkeep archive hold its existing `mailkeep/lock`
//!   shared while they live ([`crate::archive::lock::ArchiveLock::acquire_shared`]: exit 5 while a
//!   writer holds it), `eml:` a folder mailkeep wrote likewise; an mbox file with an append
//!   pending is read only up to its committed end ([`mbox`]).
//! - Nothing outside the tree is read (DESIGN.md invariant 11): no symbolic link below the
//!   root is followed ([`sorted_entries`], files opened with `O_NOFOLLOW`); each link met is
//!   skipped and reported as one warning naming it. The root the user named may be a link.
//! - [`ArchivedMessage::raw`] is the stored form ([`crate::core::message::normalize`]: CRLF turned
//!   into LF, a final LF added), so its SHA-256 is the content hash of DESIGN.md invariant 3 and
//!   equals the ledger's `sha256` for a message mailkeep stored. The wire form is
//!   [`crate::core::message::lf_to_crlf`] of it. Bare CRs are kept as they are.
//! - INTERNALDATE is never silently "now" or 1970: a date before 1971 or more than a day in the
//!   future is not believed, and when nothing gives a date, `internal_date` is `None` with
//!   [`DateSource::Unknown`], for the engine to report.
//! - Messages a source deliberately does not hand out are counted in [`SourceCounts::skipped`]
//!   with their reason; nothing is dropped silently.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::core::error::{Error, Result};
use crate::core::message::{Flags, MailboxName};

/// Where a message's INTERNALDATE came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateSource {
    /// The ledger of a mailkeep archive: the exact INTERNALDATE the server reported.
    Ledger,
    /// The file's modification time (Maildir convention; `eml:` as a last resort).
    FileMtime,
    /// The date of the mbox `From ` separator line (the delivery time the writer recorded).
    MboxFromLine,
    /// The `Date:` header (RFC 5322 3.6.1): when the sender wrote the message.
    DateHeader,
    /// The top (newest) `Received:` header: when the last server accepted it.
    Received,
    /// The source server's INTERNALDATE (IMAP, RFC 3501 2.3.3), exact (`migrate`).
    Server,
    /// Nothing gave a believable date: `internal_date` is `None`; the server will use the time
    /// of the APPEND, and the engine should say so.
    Unknown,
}

/// One message read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedMessage {
    /// The mailbox it belongs to in the archive (before any `--into`/`--map`).
    pub mailbox: MailboxName,
    /// The stored bytes: LF line ends, ending in LF (see the module documentation).
    pub raw: Vec<u8>,
    /// Flags and keywords (may hold [`crate::core::message::Flag::Deleted`], from a Maildir `T`
    /// letter or Thunderbird's IMAP-deleted bit: the engine decides what to do with it).
    pub flags: Flags,
    /// INTERNALDATE in seconds since the UNIX epoch (UTC); `None` when unknown.
    pub internal_date: Option<i64>,
    /// Where `internal_date` came from.
    pub date_source: DateSource,
    /// Where the message is, for messages and reports: a file path, or `path:offset` (the
    /// byte offset of the mbox separator line).
    pub origin: String,
    /// Lower-case hex SHA-256 of `raw`.
    pub sha256: String,
    /// The identity of the message at its origin when known (DESIGN.md invariant 3):
    /// `pop3:alice@host UIDL 0001`, `imap:alice@host INBOX 1700000000 42`; from the ledger of a
    /// mailkeep archive, or from a server source. Uploads are recorded with it, so a rerun
    /// skips the message without reading its content again, and `migrate
    /// --delete-after-migrate` deletes exactly what the target holds.
    pub source_id: Option<String>,
}

/// A message a source did not hand out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Skipped {
    /// Thunderbird marked it expunged (`X-Mozilla-Status` bit 0x0008): deleted by the user,
    /// still in the file because the folder was not compacted.
    MozillaDeleted { origin: String },
    /// The message is empty (a zero-byte file or mbox entry): nothing to upload.
    Empty { origin: String },
    /// The file disappeared between listing and reading (another program renamed or removed
    /// it, e.g. a mail server changing a Maildir file's flags).
    Vanished { origin: String },
    /// The message is `size` bytes (`None`: unknown, a zip entry that inflated past the
    /// limit), more than `--max-message-size` ([`crate::core::limits`]): it was not read into memory.
    /// Unlike the other reasons this is a failure: the engines count it as failed (exit 1) and
    /// the next run tries again.
    TooLarge { origin: String, size: Option<u64> },
    /// A server sent no message for a UID (`BODY[] NIL`, or a `BODY[]` of 0 octets): `sent`
    /// says which. A failure, like [`Skipped::TooLarge`]: the next run tries again.
    NoBody { origin: String, sent: String },
    /// A server refused to send the message (`reply`: its words and the command, e.g.
    /// `` `NO [SERVERBUG] Internal error` to UID FETCH 5 (...) ``), asked for alone after the
    /// batch it was in was refused: a mail file damaged on the server. A failure: the next
    /// run tries again.
    Refused { origin: String, reply: String },
}

impl Skipped {
    /// The reason as a short kebab-case word (`mozilla-deleted`, `empty`, `vanished`).
    pub fn reason(&self) -> &'static str {
        match self {
            Skipped::MozillaDeleted { .. } => "mozilla-deleted",
            Skipped::Empty { .. } => "empty",
            Skipped::Vanished { .. } => "vanished",
            Skipped::TooLarge { .. } => "too-large",
            Skipped::NoBody { .. } => "no-body",
            Skipped::Refused { .. } => "refused",
        }
    }

    /// True for a message that was refused, not deliberately left out ([`Skipped::TooLarge`]):
    /// the engines count it as a failure.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Skipped::TooLarge { .. } | Skipped::NoBody { .. } | Skipped::Refused { .. }
        )
    }

    /// Where the skipped message is.
    pub fn origin(&self) -> &str {
        match self {
            Skipped::MozillaDeleted { origin }
            | Skipped::Empty { origin }
            | Skipped::Vanished { origin }
            | Skipped::TooLarge { origin, .. }
            | Skipped::NoBody { origin, .. }
            | Skipped::Refused { origin, .. } => origin,
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self {
            Skipped::MozillaDeleted { .. } => {
                "skipped: deleted in Thunderbird (X-Mozilla-Status expunged bit)"
            }
            Skipped::Empty { .. } => "skipped: empty message",
            Skipped::Vanished { .. } => "skipped: the file disappeared while reading",
            Skipped::NoBody { sent, .. } => {
                return write!(
                    f,
                    "{}: the server sent no message ({sent}); the next run tries again",
                    self.origin()
                )
            }
            Skipped::Refused { reply, .. } => {
                return write!(
                    f,
                    "{}: refused by the server: {reply}; the next run tries again",
                    self.origin()
                )
            }
            Skipped::TooLarge { size, .. } => {
                return write!(
                    f,
                    "{}: {}",
                    self.origin(),
                    crate::core::limits::too_large(*size, crate::core::limits::max_message_size())
                )
            }
        };
        write!(f, "{}: {why}", self.origin())
    }
}

/// What reading one mailbox gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceCounts {
    /// Messages handed to the callback.
    pub read: u64,
    /// Messages not handed out, each with its reason.
    pub skipped: Vec<Skipped>,
    /// Messages not handed out because their `source_id` was in the set given to
    /// [`ArchiveSource::skip_known`] (already uploaded; a server source does not fetch them).
    pub known: u64,
    /// Messages handed out dated by their file's modification time only because nothing in
    /// the message gave a date (`eml:`: no `From ` line date, no readable `Date:` or
    /// `Received:` header; see [`crate::core::date`] for the forms read). An exported file's mtime
    /// is often the export's time, so the engines warn with this count. Not counted for
    /// Maildir, where the mtime is the INTERNALDATE by convention.
    pub dated_from_mtime: u64,
}

impl SourceCounts {
    /// Takes the refused messages ([`Skipped::is_failure`]: over the size limit) out of
    /// `skipped`, for the engine to count as failures.
    pub fn take_failures(&mut self) -> Vec<Skipped> {
        let (failed, kept) = std::mem::take(&mut self.skipped)
            .into_iter()
            .partition(Skipped::is_failure);
        self.skipped = kept;
        failed
    }

    /// Number of skipped messages per reason.
    pub fn skipped_by_reason(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for s in &self.skipped {
            *m.entry(s.reason()).or_insert(0) += 1;
        }
        m
    }
}

/// An archive read as a message source.
pub trait ArchiveSource {
    /// The archive as users write it (`maildir:/path`).
    fn describe(&self) -> String;

    /// The archive's mailboxes, sorted, without repeats. Empty mailboxes are listed too
    /// (a Maildir folder or mbox file with no messages).
    fn mailboxes(&mut self) -> Result<Vec<MailboxName>>;

    /// Streams every message of `mailbox` to `f`, one at a time, in archive order (Maildir:
    /// by file name; mbox: file order). An error returned by `f` stops the reading and is
    /// returned as is; an error reading the archive (a damaged mbox, an unreadable file) is
    /// [`Error::Archive`]/[`Error::ArchiveIo`] naming the path. A mailbox that is not in the
    /// archive gives zero messages.
    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts>;

    /// Source identities (see [`ArchivedMessage::source_id`]) the engine already has for the
    /// mailbox read next: a source that knows a message's identity before reading its content
    /// (a server) skips those and counts them in [`SourceCounts::known`]. The default does
    /// nothing: the engine filters what it is handed.
    fn skip_known(&mut self, _known: &std::collections::HashSet<String>) {}

    /// Things the user should know that are not errors (files that are not mailboxes, ...),
    /// one line each, gathered so far.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens a message source (an archive, or a server for `migrate` and `backup … zip:`): the
/// engines of restore and convert take one. Restore calls it once per connection the run uses
/// (`--jobs`), from that connection's thread; each call gives a fresh reader, whose
/// [`ArchiveSource::messages`] must work without a prior [`ArchiveSource::mailboxes`] (only
/// the first reader is asked for the mailboxes).
pub type SourceOpener<'a> = dyn Fn() -> Result<Box<dyn ArchiveSource + Send>> + Sync + 'a;

/// Opens an archive for reading from a spec: `maildir:PATH`, `mbox:PATH` (a file or a
/// directory), `eml:DIR`, `thunderbird:PATH`, `zip:PATH.zip`. A leading `~/` is the home
/// directory.
///
/// Errors: [`Error::Usage`] for an unknown kind or an empty path; [`Error::Archive`] when the
/// path does not exist or has the wrong type.
pub fn open(spec: &str) -> Result<Box<dyn ArchiveSource + Send>> {
    const KINDS: &str = "maildir:PATH, mbox:PATH, eml:DIR, thunderbird:PATH or zip:PATH.zip";
    let Some((kind, path)) = spec.split_once(':') else {
        return Err(Error::Usage(format!(
            "`{spec}`: write the archive as {KINDS}"
        )));
    };
    if path.is_empty() {
        return Err(Error::Usage(format!(
            "`{spec}`: the archive path is empty (write `{kind}:PATH`)"
        )));
    }
    let kind = kind.to_ascii_lowercase();
    let unknown = || {
        Error::Usage(format!(
            "`{spec}`: unknown archive kind `{kind}:` (use maildir:, mbox:, eml:, thunderbird: or zip:)"
        ))
    };
    if !["maildir", "mbox", "eml", "thunderbird", "zip"].contains(&kind.as_str()) {
        return Err(unknown());
    }
    let path = expand_home(path);
    if !path.exists() {
        return Err(Error::archive(&path, "does not exist"));
    }
    Ok(match kind.as_str() {
        "maildir" => Box::new(crate::archive::maildir::reader::MaildirSource::open(&path)?),
        "mbox" => Box::new(crate::archive::mbox::reader::MboxSource::open(&path)?),
        "eml" => Box::new(crate::archive::eml::reader::EmlSource::open(&path)?),
        "thunderbird" => {
            Box::new(crate::archive::thunderbird::reader::ThunderbirdSource::open(&path)?)
        }
        "zip" => Box::new(crate::archive::zip::reader::ZipSource::open(&path)?),
        _ => return Err(unknown()),
    })
}

fn expand_home(path: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        (None, Some(h)) if path == "~" => h,
        _ => PathBuf::from(path),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the sources
// ---------------------------------------------------------------------------------------------

/// Reads a whole message file of at most [`crate::core::limits::max_message_size`] bytes, with its
/// metadata: `Ok(Err(size))` when it is larger (nothing more than the limit is ever read,
/// even from a file growing meanwhile). Opened with [`open_nofollow`]: a symbolic link gives
/// the error [`is_symlink_error`] tells.
pub(crate) fn read_message_file(
    path: &Path,
) -> std::io::Result<std::result::Result<(Vec<u8>, std::fs::Metadata), u64>> {
    use std::io::Read;
    let limit = crate::core::limits::max_message_size();
    // Never through a link (a file replaced by one since the listing): `ELOOP`.
    let file = open_nofollow(path)?;
    let md = file.metadata()?;
    if md.len() > limit {
        return Ok(Err(md.len()));
    }
    let mut data = Vec::with_capacity(md.len() as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Ok(Err(data.len() as u64));
    }
    Ok(Ok((data, md)))
}

/// Lower-case hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// True for a date worth believing as an INTERNALDATE: after 1970 (a zero or tiny date is a
/// placeholder such as public-inbox's `From mboxrd@z Thu Jan  1 00:00:00 1970`) and at most a
/// day in the future.
pub(crate) fn plausible_date(t: i64) -> bool {
    t > 31_536_000 && t < now_secs() + 86_400
}

/// The `Date:` header's date, else the top `Received:` header's date, when believable
/// ([`plausible_date`]); read by [`crate::core::date::parse`] (RFC 5322 3.3 and 4.3, asctime, ISO
/// 8601 and the broken forms listed there).
pub fn header_date(raw: &[u8]) -> Option<(i64, DateSource)> {
    let end = header_end(raw);
    let header = &raw[..end];
    if let Some(d) = crate::core::headers::date_header(header).filter(|d| plausible_date(d.secs)) {
        return Some((d.secs, DateSource::DateHeader));
    }
    crate::core::headers::received_date(header)
        .filter(|d| plausible_date(d.secs))
        .map(|d| (d.secs, DateSource::Received))
}

/// Length of the header block including the empty line that ends it (the whole message when
/// it has no body).
pub(crate) fn header_end(raw: &[u8]) -> usize {
    let mut pos = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        pos += line.len();
        if line == b"\n" || line == b"\r\n" {
            return pos;
        }
    }
    raw.len()
}

/// Removes leading lines matching `^>*From ` (an mbox separator, or one quoted by an export
/// tool, left at the top of a message): no header starts that way and servers reject them.
pub(crate) fn drop_leading_from_lines(raw: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut rest = raw;
    let mut first = None;
    loop {
        let gts = rest.iter().take_while(|&&b| b == b'>').count();
        if !rest[gts..].starts_with(b"From ") {
            return (rest, first);
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |p| p + 1);
        if first.is_none() {
            first = Some(&rest[..end]);
        }
        rest = &rest[end..];
    }
}

/// The modification time of a file, when believable.
pub(crate) fn mtime_of(md: &std::fs::Metadata) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    Some(md.mtime()).filter(|t| plausible_date(*t))
}

/// The entries of a directory, sorted by name, as (name, path, file type), symbolic links
/// excluded: DESIGN.md invariant 11, nothing is read outside the tree. A link (to a file or a
/// folder, inside the tree or out of it, dangling or a loop) is never followed: its path is
/// added to `links`, for the source to report ([`symlink_warning`]) and skip. Only the root the
/// user named may be a link (it is followed, as any path on the command line is).
///
/// Errors: [`Error::ArchiveIo`] naming `dir` when it cannot be listed.
pub(crate) fn sorted_entries(
    dir: &Path,
    links: &mut Vec<PathBuf>,
) -> Result<Vec<(String, PathBuf, std::fs::FileType)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::archive_io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::archive_io(dir, e))?;
        let path = entry.path();
        let ft = match std::fs::symlink_metadata(&path) {
            Ok(md) => md.file_type(),
            // Removed since the listing: not ours to read.
            Err(_) => continue,
        };
        if ft.is_symlink() {
            links.push(path);
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, path, ft));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The warning for a symbolic link found inside an archive or eml/Thunderbird tree (see
/// [`sorted_entries`]): one line naming the link.
pub(crate) fn symlink_warning(link: &Path) -> String {
    format!(
        "{}: a symbolic link, not followed (mailkeep reads nothing outside the archive); skipped",
        link.display()
    )
}

/// True when `path` is a directory itself, not a symbolic link to one.
pub(crate) fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Opens a file of the tree for reading without following a symbolic link in its last
/// component (`O_NOFOLLOW`): a file replaced by a link since the listing fails with
/// `ELOOP` ([`is_symlink_error`]) instead of being read.
pub(crate) fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// True for the error [`open_nofollow`] gives on a symbolic link.
pub(crate) fn is_symlink_error(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Reads a whole file of the tree with [`open_nofollow`], with its metadata.
pub(crate) fn read_nofollow(path: &Path) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    let mut file = open_nofollow(path)?;
    let md = file.metadata()?;
    let mut data = Vec::with_capacity(md.len().min(1 << 20) as usize);
    std::io::Read::read_to_end(&mut file, &mut data)?;
    Ok((data, md))
}

/// A mailbox name from directory levels (`[]` is INBOX).
pub(crate) fn mailbox_from_levels(levels: &[String]) -> MailboxName {
    if levels.is_empty() {
        MailboxName::inbox()
    } else {
        MailboxName::from_levels(levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_listed_apart_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", d.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("passwd")).unwrap();
        std::os::unix::fs::symlink(".", d.join("loop")).unwrap();
        std::os::unix::fs::symlink("missing", d.join("dangling")).unwrap();
        let mut links = Vec::new();
        let entries = sorted_entries(d, &mut links).unwrap();
        let names: Vec<(&str, bool)> = entries
            .iter()
            .map(|(n, _, ft)| (n.as_str(), ft.is_dir()))
            .collect();
        assert_eq!(names, [("file", false), ("real", true)]);
        links.sort();
        assert_eq!(
            links,
            ["dangling", "etc", "loop", "passwd"].map(|n| d.join(n))
        );
        assert!(!is_real_dir(&d.join("etc")));
        assert!(is_real_dir(&d.join("real")));
        let e = open_nofollow(&d.join("passwd")).unwrap_err();
        assert!(is_symlink_error(&e), "{e}");
        assert!(open_nofollow(&d.join("file")).is_ok());
    }

    #[test]
    fn leading_from_lines() {
        let (rest, first) = drop_leading_from_lines(b"From a b\n>From - x\nA: 1\n");
        assert_eq!(rest, b"A: 1\n");
        assert_eq!(first, Some(&b"From a b\n"[..]));
        assert_eq!(drop_leading_from_lines(b"From: a\n").0, b"From: a\n");
        assert_eq!(drop_leading_from_lines(b"").0, b"");
        assert_eq!(drop_leading_from_lines(b"From x").0, b"");
    }

    #[test]
    fn dates() {
        assert_eq!(
            header_date(b"Date: Mon, 10 Mar 2025 07:00:00 +0100\n\nDate: x\n"),
            Some((1_741_586_400, DateSource::DateHeader))
        );
        assert_eq!(
            header_date(b"Received: from a by b; Tue, 11 Mar 2025 09:00:00 +0000\nDate: junk\n"),
            Some((1_741_683_600, DateSource::Received))
        );
        assert_eq!(
            header_date(b"Date: Thu, 01 Jan 1970 00:00:00 +0000\n"),
            None
        );
        assert_eq!(header_date(b""), None);
        assert!(!plausible_date(0));
    }
}
