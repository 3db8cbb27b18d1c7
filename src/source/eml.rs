//! A folder tree of single-message files as a message source (`eml:DIR`), read-only.
//!
//! Every regular, non-hidden file below `DIR` is one message, whatever its extension (`.eml`
//! exports, and corpora such as SpamAssassin's whose files are named `NNNNN.<md5>`); files
//! directly in `DIR` belong to INBOX, files in `DIR/A/B/` to the mailbox `A/B` (directory
//! names verbatim; hidden directories skipped). Files are read in name order.
//!
//! A leading `From ` envelope line (files saved from an mbox) is not a header and is dropped.
//!
//! INTERNALDATE, in this order: the date on that `From ` line (the delivery time); the `Date:`
//! header; the top `Received:` header; the file's mtime. The headers come before the mtime on
//! purpose: an exported or copied `.eml` file's mtime is usually the time of the export, not
//! of the mail.

use std::path::{Path, PathBuf};

use super::{
    drop_leading_from_lines, header_date, mailbox_from_levels, mtime_of, plausible_date,
    sha256_hex, sorted_entries, ArchiveSource, ArchivedMessage, DateSource, Skipped, SourceCounts,
};
use crate::error::{Error, Result};
use crate::message::{normalize, Flags, MailboxName};

/// A folder of message files opened for reading.
pub struct EmlSource {
    root: PathBuf,
    dirs: Option<std::collections::BTreeMap<MailboxName, Vec<PathBuf>>>,
}

impl EmlSource {
    /// Opens the folder `root`.
    ///
    /// Errors: [`Error::Archive`] when it is not a directory.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::archive(
                root,
                "is not a directory (eml: reads a folder of message files)",
            ));
        }
        Ok(EmlSource {
            root: root.to_path_buf(),
            dirs: None,
        })
    }

    fn walk(
        dir: &Path,
        levels: &mut Vec<String>,
        out: &mut std::collections::BTreeMap<MailboxName, Vec<PathBuf>>,
    ) -> Result<()> {
        let mut has_files = false;
        for (name, path, ft) in sorted_entries(dir)? {
            if name.starts_with('.') {
                continue;
            }
            if ft.is_dir() {
                levels.push(name);
                Self::walk(&path, levels, out)?;
                levels.pop();
            } else if ft.is_file() {
                has_files = true;
            }
        }
        if has_files {
            out.entry(mailbox_from_levels(levels))
                .or_default()
                .push(dir.to_path_buf());
        }
        Ok(())
    }
}

impl ArchiveSource for EmlSource {
    fn describe(&self) -> String {
        format!("eml:{}", self.root.display())
    }

    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        if self.dirs.is_none() {
            let mut out = Default::default();
            Self::walk(&self.root, &mut Vec::new(), &mut out)?;
            self.dirs = Some(out);
        }
        Ok(self
            .dirs
            .as_ref()
            .expect("set above")
            .keys()
            .cloned()
            .collect())
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        self.mailboxes()?;
        let dirs = self
            .dirs
            .as_ref()
            .and_then(|d| d.get(mailbox))
            .cloned()
            .unwrap_or_default();
        let mut counts = SourceCounts::default();
        for dir in dirs {
            for (name, path, ft) in sorted_entries(&dir)? {
                if name.starts_with('.') || !ft.is_file() {
                    continue;
                }
                let origin = path.display().to_string();
                let (data, md) = match std::fs::read(&path)
                    .and_then(|d| std::fs::metadata(&path).map(|m| (d, m)))
                {
                    Ok(x) => x,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        counts.skipped.push(Skipped::Vanished { origin });
                        continue;
                    }
                    Err(e) => return Err(Error::archive_io(&path, e)),
                };
                let (body, from_line) = drop_leading_from_lines(&data);
                let raw = normalize(body);
                if raw.is_empty() {
                    counts.skipped.push(Skipped::Empty { origin });
                    continue;
                }
                let from_date = from_line
                    .and_then(crate::mbox::parse_from_line)
                    .and_then(|i| i.date)
                    .filter(|t| plausible_date(*t));
                let (internal_date, date_source) = match from_date {
                    Some(t) => (Some(t), DateSource::MboxFromLine),
                    None => match header_date(&raw) {
                        Some((t, s)) => (Some(t), s),
                        None => match mtime_of(&md) {
                            Some(t) => (Some(t), DateSource::FileMtime),
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
        }
        Ok(counts)
    }
}
