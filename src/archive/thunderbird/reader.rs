//! A Thunderbird (or Netscape/SeaMonkey) mail directory as a message source
//! (`thunderbird:PATH`), read-only. `PATH` is a profile's `Mail/Local Folders`,
//! `Mail/<pop3 server>` or `ImapMail/<imap server>` directory.
//!
//! Layout (Thunderbird's default "mbox" store):
//! - each folder is an mbox file without extension (`Inbox`, `Sent`, `Archive`); its
//!   subfolders live in the directory `<name>.sbd/` (`Inbox.sbd/Work` is `INBOX/Work`; a
//!   `.sbd` directory without its file still names its children). `Inbox`/`INBOX` is INBOX.
//! - `*.msf` summary files, `*.dat`, `*.json`, `*.html`, `*.sqlite`, hidden files and other
//!   directories are not folders. A file is taken as a folder only when it is empty or starts
//!   with `From ` (an mbox); any other file is reported in [`ArchiveSource::warnings`].
//!
//! Messages are read as mboxo (Thunderbird quotes body `From ` lines with one `>` and never
//! unquotes) by the same reader as `mbox:`, then always cleaned as
//! [`crate::archive::thunderbird::mozilla::strip`] describes: `X-Mozilla-Status`, `X-Mozilla-Status2` and
//! `X-Mozilla-Keys` lines removed and turned into flags and keywords, messages marked expunged
//! (deleted, folder not compacted) skipped and counted. INTERNALDATE: the `From - ` line's
//! date, else the `Date:` header, else the top `Received:` header.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::archive::mbox::format::Dialect;
use crate::archive::mbox::reader::{read_mbox_file, ReadOptions};
use crate::archive::reader::{
    sorted_entries, symlink_warning, ArchiveSource, ArchivedMessage, SourceCounts,
};
use crate::core::error::{Error, Result};
use crate::core::message::MailboxName;

/// File name endings that are never folders.
const NOT_FOLDERS: &[&str] = &[
    ".msf", ".dat", ".json", ".html", ".sqlite", ".log", ".js", ".xml", ".bak", ".tmp",
];

/// A Thunderbird mail directory opened for reading.
pub struct ThunderbirdSource {
    root: PathBuf,
    folders: Option<BTreeMap<MailboxName, Vec<PathBuf>>>,
    warnings: Vec<String>,
}

/// True for an empty file or one starting with `From `.
fn looks_like_mbox(path: &Path) -> Result<bool> {
    let mut head = [0u8; 5];
    let mut f =
        crate::archive::reader::open_nofollow(path).map_err(|e| Error::archive_io(path, e))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::archive_io(path, e)),
        }
    }
    Ok(n == 0 || &head[..n] == b"From ")
}

impl ThunderbirdSource {
    /// Opens the mail directory `root`.
    ///
    /// Errors: [`Error::Archive`] when it is not a directory.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::archive(
                root,
                "is not a directory (thunderbird: reads a profile's `Mail/Local Folders` or `ImapMail/<server>` folder)",
            ));
        }
        Ok(ThunderbirdSource {
            root: root.to_path_buf(),
            folders: None,
            warnings: Vec::new(),
        })
    }

    fn walk(
        &mut self,
        dir: &Path,
        levels: &mut Vec<String>,
        out: &mut BTreeMap<MailboxName, Vec<PathBuf>>,
    ) -> Result<()> {
        let mut links = Vec::new();
        let entries = sorted_entries(dir, &mut links)?;
        self.warnings
            .extend(links.iter().map(|l| symlink_warning(l)));
        for (name, path, ft) in entries {
            if name.starts_with('.') {
                continue;
            }
            if ft.is_dir() {
                if let Some(folder) = name.strip_suffix(".sbd") {
                    levels.push(folder.to_string());
                    self.walk(&path, levels, out)?;
                    levels.pop();
                }
                continue;
            }
            if !ft.is_file() || NOT_FOLDERS.iter().any(|x| name.ends_with(x)) {
                continue;
            }
            if !looks_like_mbox(&path)? {
                self.warnings.push(format!(
                    "{}: not a mail folder (does not start with a `From ` line), skipped",
                    path.display()
                ));
                continue;
            }
            levels.push(name);
            // Thunderbird's `Inbox` (and its `Inbox.sbd/` children) is INBOX.
            let mut named = levels.clone();
            if named[0].eq_ignore_ascii_case("INBOX") {
                named[0] = "INBOX".to_string();
            }
            out.entry(crate::archive::reader::mailbox_from_levels(&named))
                .or_default()
                .push(path);
            levels.pop();
        }
        Ok(())
    }

    fn folders(&mut self) -> Result<&BTreeMap<MailboxName, Vec<PathBuf>>> {
        if self.folders.is_none() {
            let mut out = BTreeMap::new();
            self.walk(&self.root.clone(), &mut Vec::new(), &mut out)?;
            self.folders = Some(out);
        }
        Ok(self.folders.as_ref().expect("set above"))
    }
}

impl ArchiveSource for ThunderbirdSource {
    fn describe(&self) -> String {
        format!("thunderbird:{}", self.root.display())
    }

    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        Ok(self.folders()?.keys().cloned().collect())
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let files = self.folders()?.get(mailbox).cloned().unwrap_or_default();
        let mut counts = SourceCounts::default();
        let opts = ReadOptions {
            dialect: Dialect::Mboxo,
            ledger: None,
            committed: None,
            nofollow: true,
            members: None,
        };
        for path in files {
            read_mbox_file(&path, mailbox, &opts, &mut counts, f)?;
            self.warnings
                .extend(crate::archive::mbox::reader::cut_short_warning(&path));
        }
        Ok(counts)
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}
