//! A zip archive as a message source (`zip:X.zip`), read-only; and [`check`], which verifies
//! every entry of one.
//!
//! A zip written by mailkeep ([`crate::archive::zip::writer`]) has a `manifest.jsonl`
//! ([`crate::archive::manifest`]): each row names an entry, its mailbox, flags, keywords,
//! INTERNALDATE, source identity, size and SHA-256. Messages are handed out per mailbox in
//! manifest order, with the row's exact flags, date and `source_id`, and the entry's bytes as
//! they are. While reading, each entry's CRC-32 is checked (the zip crate does so on reading
//! to the end) and its size and SHA-256 against the row: a mismatch, or a row whose entry is
//! missing, is [`Error::Archive`] naming the zip and the entry.
//!
//! Any other file entry (a zip made by another tool, or a file added by hand) is a message
//! too: its mailbox is its folder ([`crate::archive::manifest::mailbox_of_dir`]: `%XX` escapes decoded;
//! entries at the root are INBOX), it has no flags, and its date comes from its headers (a
//! leading `From ` line's date, `Date:`, the top `Received:`), as for `eml:`. Such entries are
//! read after the manifest's, in name order, and a warning counts them. Directory entries are
//! mailboxes (mailkeep writes one for an empty mailbox); names with a hidden segment or under
//! `__MACOSX/` are skipped, and a warning counts the skipped files whose path has a `..` or
//! `.` segment (they may be mail, but their path is not safe to follow).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use zip::result::ZipError;
use zip::ZipArchive;

use crate::archive::manifest::{self, ManifestRow, MANIFEST};
use crate::archive::reader::{
    drop_leading_from_lines, header_date, plausible_date, sha256_hex, ArchiveSource,
    ArchivedMessage, DateSource, Skipped, SourceCounts,
};
use crate::core::error::{Error, Result};
use crate::core::message::{normalize, Flags, MailboxName};

/// Largest buffer reserved up front for an entry (the rest grows as it is read), so a damaged
/// size field cannot make mailkeep allocate gigabytes.
const MAX_RESERVE: u64 = 64 * 1024 * 1024;

/// One message of a mailbox: a manifest row, or an entry without one.
#[derive(Debug, Clone)]
enum Item {
    Row(usize),
    Loose(String),
}

/// A zip archive opened for reading.
pub struct ZipSource {
    path: PathBuf,
    archive: ZipArchive<BufReader<File>>,
    rows: Vec<ManifestRow>,
    mailboxes: BTreeMap<MailboxName, Vec<Item>>,
    known: HashSet<String>,
    warnings: Vec<String>,
}

/// True for entry names that are not mail: hidden segments, macOS resource forks.
fn ignored(name: &str) -> bool {
    name.split('/')
        .any(|s| s.starts_with('.') || s == "__MACOSX")
}

/// A zip library error in plain words: the I/O error itself rather than `i/o error`, and what
/// a missing end-of-archive record usually means.
pub(crate) fn describe_zip_error(e: &ZipError) -> String {
    match e {
        ZipError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends too early (cut short?)".into()
        }
        ZipError::Io(io) => io.to_string(),
        ZipError::InvalidArchive(m) if m.contains("EOCD") => {
            "it has no end-of-archive record (the file is cut short, damaged, or not a zip)".into()
        }
        ZipError::InvalidArchive(m) => format!("invalid zip: {m}"),
        ZipError::UnsupportedArchive(m) => format!("unsupported zip: {m}"),
        other => other.to_string(),
    }
}

/// Opens a zip file as a [`ZipArchive`]; the inner error is the zip library's (the file could
/// be opened but does not read as a zip).
fn try_open_zip(path: &Path) -> Result<std::result::Result<ZipArchive<BufReader<File>>, ZipError>> {
    let file = File::open(path).map_err(|e| Error::archive_io(path, e))?;
    Ok(ZipArchive::new(BufReader::with_capacity(64 * 1024, file)))
}

/// Opens a zip file.
fn open_zip(path: &Path) -> Result<ZipArchive<BufReader<File>>> {
    try_open_zip(path)?.map_err(|e| {
        Error::archive(
            path,
            format!("not a readable zip: {}", describe_zip_error(&e)),
        )
    })
}

/// Why [`read_entry`] gave no data.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryError {
    /// The entry is damaged; the text says how.
    Damaged(String),
    /// The entry is over the limit: its declared size, or (a zip bomb, or a lying header) it
    /// inflated past the limit, reading stopped there (`size` is then `None`).
    TooLarge { size: Option<u64>, limit: u64 },
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::Damaged(t) => f.write_str(t),
            EntryError::TooLarge { size, limit } => {
                f.write_str(&crate::core::limits::too_large(*size, *limit))
            }
        }
    }
}

/// The most a manifest is inflated to, in bytes (a zip bomb in `manifest.jsonl` must not take
/// the memory either): 1 GiB, or the message limit when larger.
fn manifest_limit() -> u64 {
    crate::core::limits::max_message_size().max(1 << 30)
}

/// Reads one entry to its end (so its CRC-32 is checked), at most `limit` bytes: an entry
/// declaring more is not inflated at all, one inflating past it is stopped there (memory is
/// bounded by the limit, whatever the entry's header says). `Ok(None)` when there is no such
/// entry.
fn read_entry(
    archive: &mut ZipArchive<BufReader<File>>,
    name: &str,
    reserve: u64,
    limit: u64,
) -> std::result::Result<Option<Vec<u8>>, EntryError> {
    let entry = match archive.by_name(name) {
        Ok(e) => e,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(EntryError::Damaged(describe_zip_error(&e))),
    };
    if entry.size() > limit {
        return Err(EntryError::TooLarge {
            size: Some(entry.size()),
            limit,
        });
    }
    let mut data = Vec::with_capacity(reserve.min(MAX_RESERVE).min(limit) as usize);
    match entry.take(limit.saturating_add(1)).read_to_end(&mut data) {
        Ok(_) if data.len() as u64 > limit => Err(EntryError::TooLarge { size: None, limit }),
        Ok(_) => Ok(Some(data)),
        Err(e) if e.to_string().contains("Invalid checksum") => Err(EntryError::Damaged(
            "CRC-32 mismatch (the zip is damaged)".into(),
        )),
        Err(e) => Err(EntryError::Damaged(format!("cannot be read: {e}"))),
    }
}

impl ZipSource {
    /// Opens the zip at `path` and reads its manifest.
    ///
    /// Errors: [`Error::Archive`] when it is not a readable zip, or its manifest is damaged
    /// (naming the line).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::archive(
                path,
                "is not a file (zip: reads one .zip file)",
            ));
        }
        let mut archive = open_zip(path)?;
        let rows = match read_entry(&mut archive, MANIFEST, 0, manifest_limit()) {
            Ok(None) => Vec::new(),
            Ok(Some(text)) => {
                manifest::parse(&text, false)
                    .map_err(|b| {
                        Error::archive(
                            path,
                            format!("entry `{MANIFEST}` line {}: {}", b.line, b.detail),
                        )
                    })?
                    .0
            }
            Err(e) => return Err(Error::archive(path, format!("entry `{MANIFEST}`: {e}"))),
        };
        let in_manifest: HashSet<&str> = rows.iter().map(|r| r.entry.as_str()).collect();
        let mut mailboxes: BTreeMap<MailboxName, Vec<Item>> = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            mailboxes.entry(r.mailbox()).or_default().push(Item::Row(i));
        }
        let mut loose: Vec<String> = Vec::new();
        let mut unsafe_names: Vec<String> = Vec::new();
        for name in archive.file_names() {
            if name == MANIFEST || in_manifest.contains(name) {
                continue;
            }
            if ignored(name) {
                // Hidden files and resource forks are not mail; a `..` path is not safe to
                // follow, but its entry may be: say so rather than drop it silently.
                if !name.ends_with('/') && name.split('/').any(|s| s == ".." || s == ".") {
                    unsafe_names.push(name.to_string());
                }
                continue;
            }
            if let Some(dir) = name.strip_suffix('/') {
                mailboxes.entry(manifest::mailbox_of_dir(dir)).or_default();
            } else {
                loose.push(name.to_string());
            }
        }
        loose.sort();
        let mut warnings = Vec::new();
        if !loose.is_empty() {
            warnings.push(format!(
                "{}: {} entr{} without a row in {MANIFEST} (first: `{}`): read without flags, dated by their headers",
                path.display(),
                loose.len(),
                if loose.len() == 1 { "y" } else { "ies" },
                loose[0]
            ));
        }
        if !unsafe_names.is_empty() {
            unsafe_names.sort();
            warnings.push(format!(
                "{}: {} entr{} skipped: a `..` or `.` in the path (first: `{}`); extract {} with a zip tool you trust",
                path.display(),
                unsafe_names.len(),
                if unsafe_names.len() == 1 { "y" } else { "ies" },
                unsafe_names[0],
                if unsafe_names.len() == 1 { "it" } else { "them" },
            ));
        }
        for name in loose {
            let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
            mailboxes
                .entry(manifest::mailbox_of_dir(dir))
                .or_default()
                .push(Item::Loose(name));
        }
        Ok(ZipSource {
            path: path.to_path_buf(),
            archive,
            rows,
            mailboxes,
            known: HashSet::new(),
            warnings,
        })
    }

    /// The manifest's source identities (for an engine that adds to this zip).
    pub fn identities(&self) -> HashSet<String> {
        manifest::identities(&self.rows)
    }

    /// The manifest's rows, in manifest order.
    pub fn rows(&self) -> &[ManifestRow] {
        &self.rows
    }

    fn damaged(&self, entry: &str, detail: impl fmt::Display) -> Error {
        Error::archive(&self.path, format!("entry `{entry}`: {detail}"))
    }

    fn origin(&self, entry: &str) -> String {
        format!("{}:{entry}", self.path.display())
    }

    /// The entry of row `i`: `Ok(Err(skipped))` for an entry over the size limit.
    fn read_row(
        &mut self,
        i: usize,
    ) -> Result<std::result::Result<Option<ArchivedMessage>, Skipped>> {
        let row = self.rows[i].clone();
        let limit = crate::core::limits::max_message_size();
        if row.size > limit {
            return Ok(Err(Skipped::TooLarge {
                origin: self.origin(&row.entry),
                size: Some(row.size),
            }));
        }
        let data = match read_entry(&mut self.archive, &row.entry, row.size, limit) {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(self.damaged(&row.entry, format!("is in {MANIFEST} but not in the zip")))
            }
            Err(EntryError::TooLarge { size, .. }) => {
                return Ok(Err(Skipped::TooLarge {
                    origin: self.origin(&row.entry),
                    size,
                }))
            }
            Err(e) => return Err(self.damaged(&row.entry, e)),
        };
        if data.len() as u64 != row.size {
            return Err(self.damaged(
                &row.entry,
                format!("{} bytes, {MANIFEST} says {}", data.len(), row.size),
            ));
        }
        let sha256 = sha256_hex(&data);
        if !sha256.eq_ignore_ascii_case(&row.sha256) {
            return Err(self.damaged(
                &row.entry,
                format!("SHA-256 {sha256}, {MANIFEST} says {}", row.sha256),
            ));
        }
        if data.is_empty() {
            return Ok(Ok(None));
        }
        let internal_date = row.internal_date;
        Ok(Ok(Some(ArchivedMessage {
            mailbox: row.mailbox(),
            raw: data,
            flags: row.all_flags(),
            internal_date,
            date_source: row.date_source(),
            origin: self.origin(&row.entry),
            sha256,
            source_id: row.source_id.clone(),
        })))
    }

    /// A loose entry: `Ok(Err(skipped))` for an entry over the size limit.
    fn read_loose(
        &mut self,
        mailbox: &MailboxName,
        name: &str,
    ) -> Result<std::result::Result<Option<ArchivedMessage>, Skipped>> {
        let limit = crate::core::limits::max_message_size();
        let data = match read_entry(&mut self.archive, name, 0, limit) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(Ok(None)),
            Err(EntryError::TooLarge { size, .. }) => {
                return Ok(Err(Skipped::TooLarge {
                    origin: self.origin(name),
                    size,
                }))
            }
            Err(e) => return Err(self.damaged(name, e)),
        };
        let (body, from_line) = drop_leading_from_lines(&data);
        let raw = normalize(body);
        if raw.is_empty() {
            return Ok(Ok(None));
        }
        let from_date = from_line
            .and_then(crate::archive::mbox::format::parse_from_line)
            .and_then(|i| i.date)
            .filter(|t| plausible_date(*t));
        let (internal_date, date_source) = match from_date {
            Some(t) => (Some(t), DateSource::MboxFromLine),
            None => match header_date(&raw) {
                Some((t, s)) => (Some(t), s),
                None => (None, DateSource::Unknown),
            },
        };
        let sha256 = sha256_hex(&raw);
        Ok(Ok(Some(ArchivedMessage {
            mailbox: mailbox.clone(),
            raw,
            flags: Flags::new(),
            internal_date,
            date_source,
            origin: self.origin(name),
            sha256,
            source_id: None,
        })))
    }
}

impl ArchiveSource for ZipSource {
    fn describe(&self) -> String {
        format!("zip:{}", self.path.display())
    }

    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        Ok(self.mailboxes.keys().cloned().collect())
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let items = self.mailboxes.get(mailbox).cloned().unwrap_or_default();
        let mut counts = SourceCounts::default();
        for item in items {
            let (msg, entry) = match item {
                Item::Row(i) => {
                    if self.rows[i]
                        .source_id
                        .as_ref()
                        .is_some_and(|id| self.known.contains(id))
                    {
                        counts.known += 1;
                        continue;
                    }
                    (self.read_row(i)?, self.rows[i].entry.clone())
                }
                Item::Loose(name) => (self.read_loose(mailbox, &name)?, name),
            };
            match msg {
                Ok(Some(m)) => {
                    f(m)?;
                    counts.read += 1;
                }
                Ok(None) => counts.skipped.push(Skipped::Empty {
                    origin: self.origin(&entry),
                }),
                Err(skipped) => counts.skipped.push(skipped),
            }
        }
        Ok(counts)
    }

    fn skip_known(&mut self, known: &HashSet<String>) {
        self.known = known.clone();
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a zip
// ---------------------------------------------------------------------------------------------

/// One thing wrong in a zip archive, found by [`check`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum ZipProblem {
    /// The file does not read as a zip at all (cut short, overwritten, not a zip).
    NotAZip { detail: String },
    /// The zip has no `manifest.jsonl` (not written by mailkeep: no flags or dates).
    NoManifest,
    /// A manifest line that cannot be read.
    BadManifestLine { line: usize, detail: String },
    /// Two manifest rows for one entry.
    DuplicateRow { entry: String },
    /// An entry whose data does not match its CRC-32.
    Crc { entry: String },
    /// An entry that cannot be read (bad compressed data, unsupported method...).
    Unreadable { entry: String, detail: String },
    /// An entry whose size differs from its manifest row.
    Size {
        entry: String,
        manifest: u64,
        actual: u64,
    },
    /// An entry whose SHA-256 differs from its manifest row.
    Sha256 {
        entry: String,
        manifest: String,
        actual: String,
    },
    /// A manifest row whose entry is not in the zip.
    MissingEntry { entry: String },
    /// A file entry without a manifest row.
    NoManifestRow { entry: String },
    /// The end-of-archive record disagrees with the central directory (other unzip tools
    /// then cannot find the entries).
    EndRecord { detail: String },
    /// An entry whose local header (what streaming unzip tools read) disagrees with the
    /// central directory (what mailkeep reads): its name, method, CRC-32 or sizes.
    LocalHeader { entry: String, detail: String },
}

impl ZipProblem {
    /// The entry the problem is about, when it is about one.
    pub fn entry(&self) -> Option<&str> {
        match self {
            ZipProblem::NotAZip { .. }
            | ZipProblem::EndRecord { .. }
            | ZipProblem::NoManifest
            | ZipProblem::BadManifestLine { .. } => None,
            ZipProblem::DuplicateRow { entry }
            | ZipProblem::Crc { entry }
            | ZipProblem::Unreadable { entry, .. }
            | ZipProblem::Size { entry, .. }
            | ZipProblem::Sha256 { entry, .. }
            | ZipProblem::MissingEntry { entry }
            | ZipProblem::NoManifestRow { entry }
            | ZipProblem::LocalHeader { entry, .. } => Some(entry),
        }
    }
}

impl fmt::Display for ZipProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZipProblem::NotAZip { detail } => write!(f, "not a readable zip: {detail}"),
            ZipProblem::EndRecord { detail } => write!(
                f,
                "the end-of-archive record is wrong ({detail}); other unzip tools may not read the zip"
            ),
            ZipProblem::NoManifest => write!(
                f,
                "no {MANIFEST}: not written by mailkeep, or its manifest was removed (flags, dates and SHA-256s cannot be checked; CRC-32s were)"
            ),
            ZipProblem::BadManifestLine { line, detail } => {
                write!(f, "{MANIFEST} line {line}: {detail}")
            }
            ZipProblem::DuplicateRow { entry } => {
                write!(f, "entry `{entry}`: more than one row in {MANIFEST}")
            }
            ZipProblem::Crc { entry } => write!(f, "entry `{entry}`: CRC-32 mismatch"),
            ZipProblem::Unreadable { entry, detail } => write!(f, "entry `{entry}`: {detail}"),
            ZipProblem::Size {
                entry,
                manifest,
                actual,
            } => write!(
                f,
                "entry `{entry}`: {actual} bytes, {MANIFEST} says {manifest}"
            ),
            ZipProblem::Sha256 {
                entry,
                manifest,
                actual,
            } => write!(
                f,
                "entry `{entry}`: SHA-256 {actual}, {MANIFEST} says {manifest}"
            ),
            ZipProblem::MissingEntry { entry } => {
                write!(f, "entry `{entry}`: in {MANIFEST} but not in the zip")
            }
            ZipProblem::NoManifestRow { entry } => {
                write!(f, "entry `{entry}`: no row in {MANIFEST}")
            }
            ZipProblem::LocalHeader { entry, detail } => write!(
                f,
                "entry `{entry}`: its local header does not match the central directory ({detail}); other unzip tools may not read it"
            ),
        }
    }
}

/// What the central directory says of one entry, to compare with its local header.
struct CentralEntry {
    name: String,
    name_raw: Vec<u8>,
    header_start: u64,
    central_start: u64,
    method: u16,
    crc32: u32,
    compressed: u64,
    size: u64,
}

/// Compares the local header of an entry (`local`: its 30 fixed bytes and the name after them)
/// with the central directory's record. Returns what differs, or `None`. Sizes and CRC-32 are
/// compared only when the local header carries them (no data descriptor, flag bit 3, and no
/// ZIP64 placeholder). Pure.
fn local_header_mismatch(local: &[u8], c: &CentralEntry) -> Option<String> {
    if local.len() < 30 || &local[..4] != b"PK\x03\x04" {
        return Some("no local header signature".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([local[o], local[o + 1]]);
    let u32_at =
        |o: usize| u32::from_le_bytes([local[o], local[o + 1], local[o + 2], local[o + 3]]);
    let name_len = u16_at(26) as usize;
    let mut diffs = Vec::new();
    if local.get(30..30 + name_len) != Some(&c.name_raw[..]) {
        diffs.push(format!(
            "name `{}`",
            String::from_utf8_lossy(
                local
                    .get(30..(30 + name_len).min(local.len()))
                    .unwrap_or(&[])
            )
        ));
    }
    if u16_at(8) != c.method {
        diffs.push(format!("method {}", u16_at(8)));
    }
    let descriptor = u16_at(6) & 0x0008 != 0;
    if !descriptor {
        if u32_at(14) != c.crc32 {
            diffs.push(format!("CRC-32 {:08x}", u32_at(14)));
        }
        for (at, what, want) in [(18, "compressed size", c.compressed), (22, "size", c.size)] {
            let v = u32_at(at);
            if v != u32::MAX && u64::from(v) != want {
                diffs.push(format!("{what} {v}"));
            }
        }
    }
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

/// Reads every entry's local header and compares it with the central directory.
fn local_header_problems(
    path: &Path,
    archive: &mut ZipArchive<BufReader<File>>,
) -> Result<Vec<ZipProblem>> {
    use std::os::unix::fs::FileExt;
    let mut central = Vec::new();
    for i in 0..archive.len() {
        // An entry the library cannot even describe is reported when it is read.
        let Ok(e) = archive.by_index_raw(i) else {
            continue;
        };
        central.push(CentralEntry {
            name: e.name().to_string(),
            name_raw: e.name_raw().to_vec(),
            header_start: e.header_start(),
            central_start: e.central_header_start(),
            method: zip_method_code(e.compression()),
            crc32: e.crc32(),
            compressed: e.compressed_size(),
            size: e.size(),
        });
    }
    let file = File::open(path).map_err(|e| Error::archive_io(path, e))?;
    let mut problems = Vec::new();
    let cd_start = central.iter().map(|c| c.central_start).min();
    if let Some(detail) = end_record_mismatch(&file, cd_start, central.len())? {
        problems.push(ZipProblem::EndRecord { detail });
    }
    for c in central {
        let mut local = vec![0u8; 30 + c.name_raw.len()];
        let mut record = [0u8; 10];
        let detail = match file.read_exact_at(&mut local, c.header_start) {
            Ok(()) => local_header_mismatch(&local, &c),
            Err(_) => Some("the local header is past the end of the file".into()),
        };
        if let Some(detail) = detail {
            problems.push(ZipProblem::LocalHeader {
                entry: c.name,
                detail,
            });
            continue;
        }
        // The central record's "version needed to extract" (readers refuse what they do not
        // know: APPNOTE 6.3 is the newest, 63) and its flags, which must be the local ones.
        if file.read_exact_at(&mut record, c.central_start).is_err() {
            continue;
        }
        let (needed, flags) = (
            u16::from_le_bytes([record[6], record[7]]),
            u16::from_le_bytes([record[8], record[9]]),
        );
        let local_flags = u16::from_le_bytes([local[6], local[7]]);
        if flags != local_flags {
            problems.push(ZipProblem::LocalHeader {
                entry: c.name,
                detail: format!(
                    "flags {local_flags:#06x}, the central directory says {flags:#06x}"
                ),
            });
        } else if let Some(v) = Some(needed).filter(|v| *v > 63) {
            problems.push(ZipProblem::Unreadable {
                entry: c.name,
                detail: format!(
                    "the central directory says version {}.{} is needed to extract it (damaged; no zip tool knows that version)",
                    v / 10,
                    v % 10
                ),
            });
        }
    }
    Ok(problems)
}

/// Compares the end-of-central-directory record (at the end of the file, mailkeep writes no
/// comment) with where the central directory really is (`cd_start`, the first central record)
/// and how many entries it has. ZIP64 archives (a locator before the record) are not compared.
/// Returns what differs, or `None`.
fn end_record_mismatch(
    file: &File,
    cd_start: Option<u64>,
    entries: usize,
) -> Result<Option<String>> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let tail_len = len.min(22 + 65535);
    let mut tail = vec![0u8; tail_len as usize];
    if file.read_exact_at(&mut tail, len - tail_len).is_err() {
        return Ok(None);
    }
    // The last signature whose comment length reaches exactly to the end of the file.
    let Some(at) = (0..tail.len().saturating_sub(21)).rev().find(|&i| {
        &tail[i..i + 4] == b"PK\x05\x06"
            && i + 22 + u16::from_le_bytes([tail[i + 20], tail[i + 21]]) as usize == tail.len()
    }) else {
        return Ok(None); // the library found the archive some other way
    };
    let eocd = len - tail_len + at as u64;
    if at >= 20 && &tail[at - 20..at - 16] == b"PK\x06\x07" {
        return Ok(None);
    }
    let u16_at = |o: usize| u16::from_le_bytes([tail[at + o], tail[at + o + 1]]);
    let u32_at = |o: usize| {
        u64::from(u32::from_le_bytes(
            tail[at + o..at + o + 4].try_into().unwrap(),
        ))
    };
    let start = cd_start.unwrap_or(eocd);
    let mut diffs = Vec::new();
    if u16_at(10) as usize != entries && u16_at(10) != u16::MAX {
        diffs.push(format!(
            "{} entries, the directory has {entries}",
            u16_at(10)
        ));
    }
    if u32_at(16) != start && u32_at(16) != u64::from(u32::MAX) {
        diffs.push(format!(
            "the directory at byte {}, it is at {start}",
            u32_at(16)
        ));
    }
    if u32_at(12) != eocd.saturating_sub(start) && u32_at(12) != u64::from(u32::MAX) {
        diffs.push(format!(
            "a directory of {} bytes, it has {}",
            u32_at(12),
            eocd.saturating_sub(start)
        ));
    }
    Ok((!diffs.is_empty()).then(|| diffs.join(", ")))
}

/// The zip method number of a compression method (0 stored, 8 deflated, ...).
#[allow(deprecated)]
fn zip_method_code(m: zip::CompressionMethod) -> u16 {
    m.to_u16()
}

/// Checks every entry of the zip at `path`: each file entry is read to its end (CRC-32) and
/// its size and SHA-256 compared with its manifest row; rows without an entry and file
/// entries without a row are reported too. An empty list means the zip is sound.
///
/// A file that does not read as a zip at all gives one [`ZipProblem::NotAZip`].
///
/// Errors: [`Error::ArchiveIo`] when the file cannot be opened.
pub fn check(path: &Path) -> Result<Vec<ZipProblem>> {
    let mut archive = match try_open_zip(path)? {
        Ok(a) => a,
        Err(e) => {
            return Ok(vec![ZipProblem::NotAZip {
                detail: describe_zip_error(&e),
            }])
        }
    };
    let mut problems = local_header_problems(path, &mut archive)?;
    let mut rows: HashMap<String, ManifestRow> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    match read_entry(&mut archive, MANIFEST, 0, manifest_limit()) {
        Ok(None) => problems.push(ZipProblem::NoManifest),
        Err(detail) => problems.push(ZipProblem::Unreadable {
            entry: MANIFEST.into(),
            detail: detail.to_string(),
        }),
        Ok(Some(text)) => {
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match manifest::parse_line(line) {
                    Ok(row) if rows.contains_key(&row.entry) => {
                        problems.push(ZipProblem::DuplicateRow { entry: row.entry })
                    }
                    Ok(row) => {
                        order.push(row.entry.clone());
                        rows.insert(row.entry.clone(), row);
                    }
                    Err(detail) => problems.push(ZipProblem::BadManifestLine {
                        line: i + 1,
                        detail,
                    }),
                }
            }
        }
    }
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let mut sorted = names.clone();
    sorted.sort();
    let present: HashSet<&str> = names.iter().map(String::as_str).collect();
    for entry in &order {
        if !present.contains(entry.as_str()) {
            problems.push(ZipProblem::MissingEntry {
                entry: entry.clone(),
            });
        }
    }
    for name in sorted {
        if name == MANIFEST || name.ends_with('/') {
            continue;
        }
        let row = rows.get(&name);
        let limit = crate::core::limits::max_message_size();
        let data = match read_entry(&mut archive, &name, row.map_or(0, |r| r.size), limit) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(EntryError::Damaged(detail)) if detail.starts_with("CRC-32") => {
                problems.push(ZipProblem::Crc { entry: name });
                continue;
            }
            Err(detail) => {
                problems.push(ZipProblem::Unreadable {
                    entry: name,
                    detail: detail.to_string(),
                });
                continue;
            }
        };
        let Some(row) = row else {
            if !ignored(&name) {
                problems.push(ZipProblem::NoManifestRow { entry: name });
            }
            continue;
        };
        if data.len() as u64 != row.size {
            problems.push(ZipProblem::Size {
                entry: name.clone(),
                manifest: row.size,
                actual: data.len() as u64,
            });
        }
        let sha = sha256_hex(&data);
        if !sha.eq_ignore_ascii_case(&row.sha256) {
            problems.push(ZipProblem::Sha256 {
                entry: name,
                manifest: row.sha256.clone(),
                actual: sha,
            });
        }
    }
    Ok(problems)
}
