//! A zip archive as a message source (`zip:X.zip`), read-only; and [`check`], which verifies
//! every entry of one.
//!
//! A zip written by mailkeep ([`crate::sink::zip`]) has a `manifest.jsonl`
//! ([`crate::manifest`]): each row names an entry, its mailbox, flags, keywords,
//! INTERNALDATE, source identity, size and SHA-256. Messages are handed out per mailbox in
//! manifest order, with the row's exact flags, date and `source_id`, and the entry's bytes as
//! they are. While reading, each entry's CRC-32 is checked (the zip crate does so on reading
//! to the end) and its size and SHA-256 against the row: a mismatch, or a row whose entry is
//! missing, is [`Error::Archive`] naming the zip and the entry.
//!
//! Any other file entry (a zip made by another tool, or a file added by hand) is a message
//! too: its mailbox is its folder ([`crate::manifest::mailbox_of_dir`]: `%XX` escapes decoded;
//! entries at the root are INBOX), it has no flags, and its date comes from its headers (a
//! leading `From ` line's date, `Date:`, the top `Received:`), as for `eml:`. Such entries are
//! read after the manifest's, in name order, and a warning counts them. Directory entries are
//! mailboxes (mailkeep writes one for an empty mailbox); names with a hidden segment or under
//! `__MACOSX/` are skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use zip::result::ZipError;
use zip::ZipArchive;

use super::{
    drop_leading_from_lines, header_date, plausible_date, sha256_hex, ArchiveSource,
    ArchivedMessage, DateSource, Skipped, SourceCounts,
};
use crate::error::{Error, Result};
use crate::manifest::{self, ManifestRow, MANIFEST};
use crate::message::{normalize, Flags, MailboxName};

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

/// Opens a zip file.
fn open_zip(path: &Path) -> Result<ZipArchive<BufReader<File>>> {
    let file = File::open(path).map_err(|e| Error::archive_io(path, e))?;
    ZipArchive::new(BufReader::with_capacity(64 * 1024, file))
        .map_err(|e| Error::archive(path, format!("not a readable zip: {e}")))
}

/// Reads one entry to its end (so its CRC-32 is checked). `Ok(None)` when there is no such
/// entry; `Err(text)` describes a damaged one.
fn read_entry(
    archive: &mut ZipArchive<BufReader<File>>,
    name: &str,
    reserve: u64,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let mut entry = match archive.by_name(name) {
        Ok(e) => e,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut data = Vec::with_capacity(reserve.min(MAX_RESERVE) as usize);
    match entry.read_to_end(&mut data) {
        Ok(_) => Ok(Some(data)),
        Err(e) if e.to_string().contains("Invalid checksum") => {
            Err("CRC-32 mismatch (the zip is damaged)".into())
        }
        Err(e) => Err(format!("cannot be read: {e}")),
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
        let rows = match read_entry(&mut archive, MANIFEST, 0) {
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
        for name in archive.file_names() {
            if name == MANIFEST || ignored(name) || in_manifest.contains(name) {
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

    fn damaged(&self, entry: &str, detail: impl fmt::Display) -> Error {
        Error::archive(&self.path, format!("entry `{entry}`: {detail}"))
    }

    fn origin(&self, entry: &str) -> String {
        format!("{}:{entry}", self.path.display())
    }

    fn read_row(&mut self, i: usize) -> Result<Option<ArchivedMessage>> {
        let row = self.rows[i].clone();
        let data = match read_entry(&mut self.archive, &row.entry, row.size) {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(self.damaged(&row.entry, format!("is in {MANIFEST} but not in the zip")))
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
            return Ok(None);
        }
        let internal_date = row.internal_date;
        Ok(Some(ArchivedMessage {
            mailbox: row.mailbox(),
            raw: data,
            flags: row.all_flags(),
            internal_date,
            date_source: row.date_source(),
            origin: self.origin(&row.entry),
            sha256,
            source_id: row.source_id.clone(),
        }))
    }

    fn read_loose(&mut self, mailbox: &MailboxName, name: &str) -> Result<Option<ArchivedMessage>> {
        let data = match read_entry(&mut self.archive, name, 0) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.damaged(name, e)),
        };
        let (body, from_line) = drop_leading_from_lines(&data);
        let raw = normalize(body);
        if raw.is_empty() {
            return Ok(None);
        }
        let from_date = from_line
            .and_then(crate::mbox::parse_from_line)
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
        Ok(Some(ArchivedMessage {
            mailbox: mailbox.clone(),
            raw,
            flags: Flags::new(),
            internal_date,
            date_source,
            origin: self.origin(name),
            sha256,
            source_id: None,
        }))
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
                Some(m) => {
                    f(m)?;
                    counts.read += 1;
                }
                None => counts.skipped.push(Skipped::Empty {
                    origin: self.origin(&entry),
                }),
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
}

impl fmt::Display for ZipProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZipProblem::NoManifest => write!(f, "no {MANIFEST}: not a mailkeep zip"),
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
        }
    }
}

/// Checks every entry of the zip at `path`: each file entry is read to its end (CRC-32) and
/// its size and SHA-256 compared with its manifest row; rows without an entry and file
/// entries without a row are reported too. An empty list means the zip is sound.
///
/// Errors: [`Error::Archive`] when the file is not a readable zip at all.
pub fn check(path: &Path) -> Result<Vec<ZipProblem>> {
    let mut archive = open_zip(path)?;
    let mut problems = Vec::new();
    let mut rows: HashMap<String, ManifestRow> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    match read_entry(&mut archive, MANIFEST, 0) {
        Ok(None) => problems.push(ZipProblem::NoManifest),
        Err(detail) => problems.push(ZipProblem::Unreadable {
            entry: MANIFEST.into(),
            detail,
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
        let data = match read_entry(&mut archive, &name, row.map_or(0, |r| r.size)) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(detail) if detail.starts_with("CRC-32") => {
                problems.push(ZipProblem::Crc { entry: name });
                continue;
            }
            Err(detail) => {
                problems.push(ZipProblem::Unreadable {
                    entry: name,
                    detail,
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
