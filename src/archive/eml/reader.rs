//! A folder tree of single-message files as a message source (`eml:DIR`), read-only.
//!
//! Every regular, non-hidden file below `DIR` is one message, whatever its extension (`.eml`
//! exports, and corpora such as SpamAssassin's whose files are named `NNNNN.<md5>`); files
//! directly in `DIR` belong to INBOX, files in `DIR/A/B/` to the mailbox `A/B` (directory
//! names with the `%XX` escapes of `export` and `convert` decoded, so `Work%2Fx` is the one
//! level `Work/x` and `100%25` is `100%`; a `%` not followed by two hex digits is kept; hidden
//! directories skipped). Files are read in name order.
//!
//! A leading `From ` envelope line (files saved from an mbox) is not a header and is dropped.
//!
//! INTERNALDATE, in this order: the date on that `From ` line (the delivery time); the `Date:`
//! header; the top `Received:` header; the file's mtime. The headers come before the mtime on
//! purpose: an exported or copied `.eml` file's mtime is usually the time of the export, not
//! of the mail.
//!
//! A folder written by `mailkeep convert … eml:DIR` has a `manifest.jsonl` at its root
//! ([`crate::archive::manifest`]); it is not a message. A file with a row there whose size and SHA-256
//! still match the row is read exactly as written (no `From ` line dropped), in the row's
//! mailbox, with the row's flags, keywords, INTERNALDATE and source identity. A file without a
//! row, or changed since (a warning says so), is read as above. A last manifest line without
//! its LF (a writer killed mid-line) is ignored.

use std::path::{Path, PathBuf};

use crate::archive::manifest::{self, ManifestRow, MANIFEST};
use crate::archive::reader::{
    drop_leading_from_lines, header_date, mailbox_from_levels, mtime_of, plausible_date,
    read_nofollow, sha256_hex, sorted_entries, symlink_warning, ArchiveSource, ArchivedMessage,
    DateSource, Skipped, SourceCounts,
};
use crate::core::error::{Error, Result};
use crate::core::message::{normalize, Flags, MailboxName};

/// A shared `flock` on the folder `root`, without waiting.
///
/// Errors: [`Error::Locked`] while a writer holds it; [`Error::ArchiveIo`] otherwise.
fn shared_dir_lock(root: &Path) -> Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(root).map_err(|e| Error::archive_io(root, e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(Error::Locked {
                path: root.to_path_buf(),
                holder: None,
            });
        }
        return Err(Error::archive_io(root, e));
    }
    Ok(f)
}

/// A folder of message files opened for reading.
pub struct EmlSource {
    /// The shared lock of a folder mailkeep wrote, held while reading.
    _lock: Option<std::fs::File>,
    root: PathBuf,
    /// The manifest's rows by entry (path relative to the root), when there is a manifest.
    rows: Option<std::collections::HashMap<String, ManifestRow>>,
    /// Mailbox -> its files, in reading order.
    files: Option<std::collections::BTreeMap<MailboxName, Vec<PathBuf>>>,
    warnings: Vec<String>,
}

impl EmlSource {
    /// Opens the folder `root` (and its `manifest.jsonl`, when it has one).
    ///
    /// Errors: [`Error::Archive`] when it is not a directory, or its manifest is damaged.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::archive(
                root,
                "is not a directory (eml: reads a folder of message files)",
            ));
        }
        let mpath = root.join(MANIFEST);
        let rows = if std::fs::symlink_metadata(&mpath).is_ok_and(|m| m.is_file()) {
            let (text, _) = read_nofollow(&mpath).map_err(|e| Error::archive_io(&mpath, e))?;
            let (rows, _) = manifest::parse(&text, true)
                .map_err(|b| Error::archive(&mpath, format!("line {}: {}", b.line, b.detail)))?;
            Some(rows.into_iter().map(|r| (r.entry.clone(), r)).collect())
        } else {
            None
        };
        // A folder mailkeep writes (`convert … eml:DIR`, which holds an exclusive `flock` on
        // the folder while it writes) is read under a shared one: exit 5 while a conversion
        // writes into it.
        let lock = if rows.is_some() {
            Some(shared_dir_lock(root)?)
        } else {
            None
        };
        Ok(EmlSource {
            _lock: lock,
            root: root.to_path_buf(),
            rows,
            files: None,
            warnings: Vec::new(),
        })
    }

    /// The manifest entry name of a file (its path relative to the root, `/`-separated).
    fn entry_of(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn walk(
        &self,
        dir: &Path,
        levels: &mut Vec<String>,
        out: &mut std::collections::BTreeMap<MailboxName, Vec<PathBuf>>,
        links: &mut Vec<PathBuf>,
    ) -> Result<()> {
        for (name, path, ft) in sorted_entries(dir, links)? {
            if name.starts_with('.') {
                continue;
            }
            if ft.is_dir() {
                levels.push(crate::archive::manifest::unescape_level(&name));
                self.walk(&path, levels, out, links)?;
                levels.pop();
            } else if ft.is_file() {
                if levels.is_empty() && name == MANIFEST && self.rows.is_some() {
                    continue;
                }
                let mailbox = match self
                    .rows
                    .as_ref()
                    .and_then(|r| r.get(&self.entry_of(&path)))
                {
                    Some(row) => row.mailbox(),
                    None => mailbox_from_levels(levels),
                };
                out.entry(mailbox).or_default().push(path);
            }
        }
        Ok(())
    }

    fn files(&mut self) -> Result<&std::collections::BTreeMap<MailboxName, Vec<PathBuf>>> {
        if self.files.is_none() {
            let mut out = Default::default();
            let mut links = Vec::new();
            self.walk(&self.root.clone(), &mut Vec::new(), &mut out, &mut links)?;
            self.warnings
                .extend(links.iter().map(|l| symlink_warning(l)));
            self.files = Some(out);
        }
        Ok(self.files.as_ref().expect("set above"))
    }
}

impl ArchiveSource for EmlSource {
    fn describe(&self) -> String {
        format!("eml:{}", self.root.display())
    }

    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        Ok(self.files()?.keys().cloned().collect())
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let files = self.files()?.get(mailbox).cloned().unwrap_or_default();
        let mut counts = SourceCounts::default();
        for path in files {
            let origin = path.display().to_string();
            let (data, md) = match crate::archive::reader::read_message_file(&path) {
                Ok(Ok(x)) => x,
                Ok(Err(size)) => {
                    counts.skipped.push(Skipped::TooLarge {
                        origin,
                        size: Some(size),
                    });
                    continue;
                }
                Err(e) if crate::archive::reader::is_symlink_error(&e) => {
                    // Replaced by a link since the listing: never followed.
                    self.warnings.push(symlink_warning(&path));
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    counts.skipped.push(Skipped::Vanished { origin });
                    continue;
                }
                Err(e) => return Err(Error::archive_io(&path, e)),
            };
            let entry = self.entry_of(&path);
            if let Some(row) = self.rows.as_ref().and_then(|r| r.get(&entry)) {
                let sha256 = sha256_hex(&data);
                if data.len() as u64 == row.size && sha256.eq_ignore_ascii_case(&row.sha256) {
                    if data.is_empty() {
                        counts.skipped.push(Skipped::Empty { origin });
                        continue;
                    }
                    f(ArchivedMessage {
                        mailbox: mailbox.clone(),
                        raw: data,
                        flags: row.all_flags(),
                        internal_date: row.internal_date,
                        date_source: row.date_source(),
                        origin,
                        sha256,
                        source_id: row.source_id.clone(),
                    })?;
                    counts.read += 1;
                    continue;
                }
                self.warnings.push(format!(
                        "{origin}: changed since it was written (size or SHA-256 differs from {MANIFEST}); read without its flags and date"
                    ));
            }
            let (body, from_line) = drop_leading_from_lines(&data);
            let raw = normalize(body);
            if raw.is_empty() {
                counts.skipped.push(Skipped::Empty { origin });
                continue;
            }
            let from_date = from_line
                .and_then(crate::archive::mbox::format::parse_from_line)
                .and_then(|i| i.date)
                .filter(|t| plausible_date(*t));
            let (internal_date, date_source) = match from_date {
                Some(t) => (Some(t), DateSource::MboxFromLine),
                None => match header_date(&raw) {
                    Some((t, s)) => (Some(t), s),
                    None => match mtime_of(&md) {
                        Some(t) => {
                            counts.dated_from_mtime += 1;
                            (Some(t), DateSource::FileMtime)
                        }
                        None => (None, DateSource::Unknown),
                    },
                },
            };
            let sha256 = sha256_hex(&raw);
            f(ArchivedMessage {
                mailbox: mailbox.clone(),
                raw,
                flags: Flags::new(),
                internal_date,
                date_source,
                origin,
                sha256,
                source_id: None,
            })?;
            counts.read += 1;
        }
        Ok(counts)
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}
