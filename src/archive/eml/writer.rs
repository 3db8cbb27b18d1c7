//! Writing a folder of `.eml` files (`eml:DIR`) with a manifest, for `convert`.
//!
//! Layout as in a zip ([`crate::archive::manifest`]): `DIR/INBOX/000001.eml`,
//! `DIR/Archive/2023/000002.eml`, and `DIR/manifest.jsonl` with one row per message (flags,
//! keywords, INTERNALDATE, source identity, size, SHA-256). Each file holds the message's
//! stored bytes exactly; its mtime is the INTERNALDATE. Files 0600, folders 0700.
//!
//! Order is important: each message is written to a hidden temporary file (`.000001.eml.tmp`),
//! fsync'd and renamed to its name; after a batch, the folders are fsync'd, and only then are
//! the batch's rows appended to the manifest, which is fsync'd. The manifest is thus a journal
//! of durable messages:
//! - a run killed mid-batch leaves message files without rows; the next run numbers messages
//!   from the manifest again, so it writes the same messages under the same names (a file
//!   without a row is replaced), and nothing is duplicated;
//! - a row cut short by the kill (a last line without LF) is cut off by the next run;
//! - the manifest's `source_id`s say what the folder holds, so a rerun writes nothing new.
//!
//! A folder that is not empty and has no `manifest.jsonl` was not written by mailkeep: it is
//! refused, so no one's files are replaced. The folder is locked (`flock` on the directory) for
//! the run; a second writer gets [`Error::Locked`].

use std::collections::{BTreeSet, HashSet};
use std::fs::{DirBuilder, File, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::archive::maildir::writer::fsync_dir;
use crate::archive::manifest::{self, ManifestRow, MANIFEST};
use crate::archive::reader::DateSource;
use crate::core::error::{Error, Result};
use crate::core::message::{Flags, MailboxName};

/// Rows are appended to the manifest after this many messages.
const BATCH: usize = 200;

/// An eml folder being written (see the module documentation).
pub struct EmlOut {
    root: PathBuf,
    _lock: File,
    manifest: File,
    manifest_path: PathBuf,
    known: HashSet<String>,
    mailboxes: BTreeSet<MailboxName>,
    next: u64,
    pending: Vec<ManifestRow>,
    dirty: BTreeSet<PathBuf>,
    ready: HashSet<PathBuf>,
}

/// A write error in words a user can act on: a full disk says to free space and then `then`,
/// a file size limit says so; anything else is the error itself.
pub(crate) fn write_error_text(e: &std::io::Error, then: &str) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => format!("{e}: free some space, then {then}"),
        Some(libc::EFBIG) => {
            format!("{e}: the file system or a limit (`ulimit -f`) does not allow a file this big")
        }
        _ => e.to_string(),
    }
}

/// What to do after a failed eml write: the next run goes on where this one stopped.
const EML_AGAIN: &str = "run it again (it goes on where it stopped)";

/// Takes an exclusive `flock` on a directory, without waiting.
pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    let f = File::open(dir).map_err(|e| Error::archive_io(dir, e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(Error::Locked {
                path: dir.to_path_buf(),
                holder: None,
            });
        }
        return Err(Error::archive_io(dir, e));
    }
    Ok(f)
}

/// Checks that the nearest existing ancestor of `path` (itself included when `self_too`) is a
/// folder, so that creating the missing ones can work.
///
/// Errors: [`Error::Archive`] naming the file in the way.
pub(crate) fn check_ancestors(path: &Path, self_too: bool) -> Result<()> {
    let mut p = if self_too { Some(path) } else { path.parent() };
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(Error::archive(
                    d,
                    format!(
                    "is a file, not a folder, so {} cannot be created there; choose another path",
                    path.display()
                ),
                ))
            }
            Err(_) => p = d.parent(),
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents (0700); adds to `dirty` every directory whose
/// entries changed.
pub(crate) fn make_dirs(dir: &Path, dirty: &mut BTreeSet<PathBuf>) -> Result<()> {
    check_ancestors(dir, true)?;
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    for d in missing.iter().rev() {
        match DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(Error::archive_io(d, e)),
        }
        match d.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => {
                dirty.insert(parent.to_path_buf());
            }
            _ => {
                dirty.insert(PathBuf::from("."));
            }
        }
    }
    Ok(())
}

/// Modification and access time for a date in seconds since the UNIX epoch.
pub(crate) fn file_times(secs: i64) -> FileTimes {
    let t = if secs >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
    };
    FileTimes::new().set_accessed(t).set_modified(t)
}

impl EmlOut {
    /// Opens (creating when missing) the folder `root` for writing.
    ///
    /// Errors: [`Error::Archive`] when `root` is a file, or a non-empty folder without a
    /// manifest, or its manifest is damaged; [`Error::Locked`] when another run writes it.
    pub fn open(root: &Path) -> Result<EmlOut> {
        if root.exists() && !root.is_dir() {
            return Err(Error::archive(
                root,
                "exists and is not a directory (eml: writes a folder)",
            ));
        }
        crate::archive::check_owner(root)?;
        let mut dirty = BTreeSet::new();
        make_dirs(root, &mut dirty)?;
        for d in &dirty {
            fsync_dir(d)?;
        }
        let lock = lock_dir(root)?;
        let manifest_path = root.join(MANIFEST);
        crate::archive::writer::refuse_symlinks(root, &manifest_path)?;
        if !manifest_path.exists() {
            let non_empty = std::fs::read_dir(root)
                .map_err(|e| Error::archive_io(root, e))?
                .next()
                .is_some();
            if non_empty {
                return Err(Error::archive(
                    root,
                    format!("is not empty and has no {MANIFEST}, so it was not written by mailkeep; convert into a new or empty folder"),
                ));
            }
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&manifest_path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::archive_io(&manifest_path, e))?;
            fsync_dir(root)?;
        }
        let text =
            std::fs::read(&manifest_path).map_err(|e| Error::archive_io(&manifest_path, e))?;
        let (rows, torn) = manifest::parse(&text, true).map_err(|b| {
            Error::archive(&manifest_path, format!("line {}: {}", b.line, b.detail))
        })?;
        let manifest = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&manifest_path)
            .map_err(|e| Error::archive_io(&manifest_path, e))?;
        if let Some(good) = torn {
            // A row cut short by a killed run: its message is written again.
            manifest
                .set_len(good as u64)
                .and_then(|()| manifest.sync_all())
                .map_err(|e| Error::archive_io(&manifest_path, e))?;
        }
        let next = rows
            .iter()
            .filter_map(|r| manifest::entry_number(&r.entry))
            .max()
            .map_or(1, |n| n + 1);
        Ok(EmlOut {
            root: root.to_path_buf(),
            _lock: lock,
            manifest,
            manifest_path,
            known: manifest::identities(&rows),
            mailboxes: manifest::mailboxes(&rows),
            next,
            pending: Vec::new(),
            dirty: BTreeSet::new(),
            ready: HashSet::new(),
        })
    }

    /// The source identities the folder holds (its manifest's, and this run's).
    pub fn known(&self) -> &HashSet<String> {
        &self.known
    }

    fn folder(&mut self, mailbox: &MailboxName) -> Result<PathBuf> {
        let dir = self.root.join(manifest::mailbox_dir(mailbox));
        if !self.ready.contains(&dir) {
            crate::archive::writer::refuse_symlinks(&self.root, &dir)?;
            make_dirs(&dir, &mut self.dirty)?;
            self.ready.insert(dir.clone());
        }
        Ok(dir)
    }

    /// Creates the folder of a mailbox (an empty mailbox has a folder and no files).
    pub fn add_mailbox(&mut self, mailbox: &MailboxName) -> Result<()> {
        if !self.mailboxes.contains(mailbox) {
            self.folder(mailbox)?;
            self.mailboxes.insert(mailbox.clone());
        }
        Ok(())
    }

    /// Writes one message (its stored bytes). Returns the entry name.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        mailbox: &MailboxName,
        raw: &[u8],
        flags: &Flags,
        internal_date: Option<i64>,
        date_source: DateSource,
        source_id: &str,
        sha256: &str,
    ) -> Result<String> {
        let dir = self.folder(mailbox)?;
        let name = format!("{:06}.eml", self.next);
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(raw)?;
            if let Some(t) = internal_date {
                f.set_times(file_times(t))?;
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::archive(&path, write_error_text(&e, EML_AGAIN)));
        }
        self.dirty.insert(dir);
        let entry = manifest::entry_name(mailbox, self.next);
        self.next += 1;
        self.pending.push(ManifestRow::new(
            entry.clone(),
            mailbox,
            flags,
            internal_date,
            date_source,
            source_id,
            raw.len() as u64,
            sha256,
        ));
        self.known.insert(source_id.to_string());
        self.mailboxes.insert(mailbox.clone());
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(entry)
    }

    /// Makes the written files durable, then records them in the manifest.
    pub fn flush(&mut self) -> Result<()> {
        while let Some(d) = self.dirty.pop_first() {
            fsync_dir(&d)?;
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let text: String = self.pending.iter().map(ManifestRow::to_line).collect();
        self.manifest
            .write_all(text.as_bytes())
            .and_then(|()| self.manifest.sync_data())
            .map_err(|e| Error::archive(&self.manifest_path, write_error_text(&e, EML_AGAIN)))?;
        self.pending.clear();
        Ok(())
    }

    /// Flushes the last batch.
    pub fn finish(mut self) -> Result<()> {
        self.flush()
    }
}

/// The folder of a mailbox under an export folder (`export ARCHIVE --to DIR`, read back as
/// `eml:DIR`): one path component per level, a leading `.`, `%`, `/` and control characters
/// %-escaped (the escapes are documented in `engine::inspect::export`). Pure.
pub fn export_mailbox_dir(mailbox: &str) -> PathBuf {
    let mut p = PathBuf::new();
    let levels = crate::core::message::MailboxName::new(mailbox).levels();
    for (n, level) in levels.iter().enumerate() {
        let mut s = String::new();
        if level.is_empty() {
            s.push('%');
        }
        for (i, c) in level.chars().enumerate() {
            match c {
                '.' if i == 0 => s.push_str("%2E"),
                '%' => s.push_str("%25"),
                '/' => s.push_str("%2F"),
                c if c.is_control() => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        s.push_str(&format!("%{byte:02X}"));
                    }
                }
                c => s.push(c),
            }
        }
        let upto = crate::core::message::MailboxName::from_levels(&levels[..=n]);
        p.push(crate::archive::maildir::writer::shorten_component(
            s, "", &upto,
        ));
    }
    p
}
