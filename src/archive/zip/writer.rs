//! Writing a zip archive (`zip:X.zip`): one `.eml` file per message under mailbox folders and
//! a `manifest.jsonl` with flags, keywords, INTERNALDATE, source identity, size and SHA-256
//! (layout and manifest format: [`crate::archive::manifest`]).
//!
//! ## Never an unreadable `X.zip`
//!
//! A zip cannot be appended to safely in place (its central directory is at the end), so every
//! write builds a whole new zip, `X.zip.partial`, beside it:
//! 1. `X.zip.partial` is created (0600) and locked (`flock`, exclusive, not waiting: a second
//!    writer gets [`Error::Locked`], exit 5);
//! 2. when `X.zip` exists, it must be a mailkeep zip (it has a `manifest.jsonl`): its entries
//!    are copied into the partial as they are (raw copy of the compressed bytes: no
//!    recompression, CRCs kept) and its manifest rows are kept, and its source identities are
//!    offered to the engine ([`ZipOut::known`]) so that messages it already holds are neither
//!    fetched nor written again;
//! 3. the new messages are written, one at a time (each message is streamed into its entry;
//!    only the manifest rows, a few hundred bytes per message, are held until the end);
//! 4. the manifest is written last, the zip finished, the file fsync'd, renamed over `X.zip`,
//!    and the directory fsync'd.
//!
//! A run killed at any point leaves `X.zip` as it was (or absent) and at most a stale
//! `X.zip.partial`, which the next run overwrites. A write that adds nothing (every message
//! already in `X.zip`) does not rewrite `X.zip` at all and removes its empty partial.
//!
//! Messages are deflated unless `--store` (method 0, for zip tools without deflate or for
//! already compressed mail). Entry times are the messages' INTERNALDATE (zip's DOS time, UTC,
//! 1980 to 2107; other dates give 1980-01-01), mode 0600; names are UTF-8 (the zip UTF-8 flag is
//! set for non-ASCII names).
//!
//! Test switch (the zip writer's "kill at every step"): with the environment variable
//! `MAILKEEP_TEST_KILL_AFTER_ZIP_STEPS=N`, the process exits abruptly (status 137, nothing
//! flushed) right before its (N+1)-th step, where the steps are: each entry written (copied,
//! new message, directory, manifest), then the rename of the partial over `X.zip`.

use std::collections::{BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::archive::manifest::{self, ManifestRow, MANIFEST};
use crate::archive::reader::DateSource;
use crate::core::error::{Error, Result};
use crate::core::message::{Flags, MailboxName};

/// The environment variable of the test switch (see the module documentation).
pub const KILL_SWITCH: &str = "MAILKEEP_TEST_KILL_AFTER_ZIP_STEPS";

/// Test switch: with `MAILKEEP_TEST_ZIP_STEP_COUNT_FILE=PATH`, each step appends a line to
/// PATH (a test counts a clean run's steps with it).
pub const STEP_COUNT_FILE: &str = "MAILKEEP_TEST_ZIP_STEP_COUNT_FILE";

/// The partial file a zip is built in: `X.zip.partial`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// The zip's DOS time for a date in seconds since the UNIX epoch (UTC); 1980-01-01 outside
/// 1980..=2107.
pub(crate) fn dos_time(secs: Option<i64>) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .and_then(|d| {
            zip::DateTime::from_date_and_time(
                u16::try_from(d.year()).ok()?,
                d.month() as u8,
                d.day() as u8,
                d.hour() as u8,
                d.minute() as u8,
                d.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

/// The partial file as the zip writer sees it. After the first failed write (a full disk) or
/// once the zip is abandoned, writes are not made but skipped over (the file position moves
/// as if they were), so the zip library, which finishes the archive when it is dropped, does
/// not fail again and print its own message; the partial is removed anyway. `failed` stays
/// set, so a zip that lost a write is never put in place.
struct PartialFile {
    file: File,
    discard: std::sync::Arc<std::sync::atomic::AtomicBool>,
    failed: bool,
}

impl Write for PartialFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::{Seek, SeekFrom};
        use std::sync::atomic::Ordering;
        if self.failed || self.discard.load(Ordering::Relaxed) {
            self.file.seek(SeekFrom::Current(buf.len() as i64))?;
            return Ok(buf.len());
        }
        self.file.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for PartialFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.file.seek(pos)
    }
}

/// A zip library error in plain words (the I/O error itself, not `i/o error`).
fn zip_error_text(e: &zip::result::ZipError) -> String {
    crate::archive::zip::reader::describe_zip_error(e)
}

/// What a write error means for the user: a full disk or a file size limit says what to do.
fn io_error_text(e: &std::io::Error) -> String {
    let text = crate::archive::eml::writer::write_error_text(e, "run it again");
    if e.raw_os_error() == Some(libc::EFBIG) {
        format!("{text}; write the zip elsewhere")
    } else {
        text
    }
}

/// An existing `X.zip` being added to.
struct Old {
    archive: ZipArchive<BufReader<File>>,
    rows: Vec<ManifestRow>,
}

/// A zip archive being written (see the module documentation).
pub struct ZipOut {
    path: PathBuf,
    partial: PathBuf,
    store: bool,
    /// The locked partial file (the lock lives as long as this descriptor).
    lock: File,
    old: Option<Old>,
    known: HashSet<String>,
    /// Mailboxes the zip holds (messages or a directory entry), old and new.
    mailboxes: BTreeSet<MailboxName>,
    writer: Option<ZipWriter<BufWriter<PartialFile>>>,
    /// Set when the zip is abandoned: the writer's last writes are skipped ([`PartialFile`]).
    discard: std::sync::Arc<std::sync::atomic::AtomicBool>,
    rows: Vec<ManifestRow>,
    next: u64,
    steps: u64,
    kill_after: Option<u64>,
    done: bool,
}

/// Takes the exclusive lock on the partial file, making sure the locked file is still the one
/// at that path (another writer may have renamed it over the zip meanwhile).
fn lock_partial(path: &Path, partial: &Path) -> Result<File> {
    for _ in 0..10 {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(partial)
            .map_err(|e| Error::archive_io(partial, e))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                    holder: None,
                });
            }
            return Err(Error::archive_io(partial, e));
        }
        let held = file.metadata().map_err(|e| Error::archive_io(partial, e))?;
        match std::fs::metadata(partial) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                file.set_len(0).map_err(|e| Error::archive_io(partial, e))?;
                return Ok(file);
            }
            _ => continue,
        }
    }
    Err(Error::archive(
        partial,
        "keeps being replaced by another program; try again",
    ))
}

/// Opens an existing mailkeep zip and reads its manifest.
fn open_old(path: &Path) -> Result<Old> {
    let file = File::open(path).map_err(|e| Error::archive_io(path, e))?;
    let mut archive = ZipArchive::new(BufReader::with_capacity(64 * 1024, file)).map_err(|e| {
        Error::archive(
            path,
            format!("exists but is not a readable zip ({e}); mailkeep will not replace it: move it away or write another file"),
        )
    })?;
    let text = {
        let mut m = archive.by_name(MANIFEST).map_err(|_| {
            Error::archive(
                path,
                format!("exists but is not a mailkeep zip (it has no {MANIFEST}); mailkeep will not replace it: write another file"),
            )
        })?;
        let mut text = Vec::new();
        m.read_to_end(&mut text)
            .map_err(|e| Error::archive(path, format!("entry `{MANIFEST}`: {e}")))?;
        text
    };
    let (rows, _) = manifest::parse(&text, false).map_err(|b| {
        Error::archive(
            path,
            format!("entry `{MANIFEST}` line {}: {}", b.line, b.detail),
        )
    })?;
    Ok(Old { archive, rows })
}

impl ZipOut {
    /// Opens `path` for writing: locks `path.partial`, and reads the existing `path` (when
    /// there is one) to add to it. `store`: store messages uncompressed.
    ///
    /// Errors: [`Error::Locked`] when another run writes it; [`Error::Archive`] when `path` is
    /// a directory, or exists and is not a readable mailkeep zip.
    pub fn open(path: &Path, store: bool) -> Result<ZipOut> {
        if path.is_dir() {
            return Err(Error::archive(
                path,
                "is a directory (zip: writes one file)",
            ));
        }
        crate::archive::eml::writer::check_ancestors(path, false)?;
        crate::archive::check_owner(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                std::os::unix::fs::DirBuilderExt::mode(
                    std::fs::DirBuilder::new().recursive(true),
                    0o700,
                )
                .create(dir)
                .map_err(|e| Error::archive_io(dir, e))?;
            }
        }
        let partial = partial_path(path);
        let lock = lock_partial(path, &partial)?;
        let old = if path.exists() {
            match open_old(path) {
                Ok(o) => Some(o),
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let mut known = HashSet::new();
        let mut mailboxes = BTreeSet::new();
        let mut next = 1;
        if let Some(o) = &old {
            known = manifest::identities(&o.rows);
            mailboxes = manifest::mailboxes(&o.rows);
            for name in o.archive.file_names() {
                if let Some(n) = manifest::entry_number(name) {
                    next = next.max(n + 1);
                }
                if let Some(dir) = name.strip_suffix('/') {
                    mailboxes.insert(manifest::mailbox_of_dir(dir));
                }
            }
        }
        let kill_after = std::env::var(KILL_SWITCH).ok().and_then(|v| v.parse().ok());
        Ok(ZipOut {
            path: path.to_path_buf(),
            partial,
            store,
            lock,
            old,
            known,
            mailboxes,
            writer: None,
            discard: Default::default(),
            rows: Vec::new(),
            next,
            steps: 0,
            kill_after,
            done: false,
        })
    }

    /// The source identities the zip holds already (its manifest's `source_id`s, and this
    /// run's).
    pub fn known(&self) -> &HashSet<String> {
        &self.known
    }

    /// True when the zip holds `mailbox` (a message in it, or its directory entry).
    pub fn has_mailbox(&self, mailbox: &MailboxName) -> bool {
        self.mailboxes.contains(mailbox)
    }

    fn step(&mut self) {
        if self.kill_after == Some(self.steps) {
            // Test switch: die like a kill -9 would, without unwinding or flushing anything.
            // SAFETY: _exit ends the process; nothing is shared.
            unsafe { libc::_exit(137) };
        }
        self.steps += 1;
        // Test switch: one line per step, so a test can count a clean run's steps.
        if let Some(file) = std::env::var_os(STEP_COUNT_FILE) {
            let _ = OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut f| f.write_all(b"step\n"));
        }
    }

    fn options(&self, date: Option<i64>, size: u64) -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(if self.store {
                CompressionMethod::Stored
            } else {
                CompressionMethod::Deflated
            })
            .last_modified_time(dos_time(date))
            .unix_permissions(0o600)
            .large_file(size >= 0xFFFF_FFFF)
    }

    /// A failure while writing the new zip, named by the zip the user asked for, with what is
    /// left of it: the partial file is removed when the run stops, `X.zip` stays as it was.
    fn write_err(&self, what: &str, detail: String) -> Error {
        let state = if self.path.exists() {
            "the zip is unchanged"
        } else {
            "no zip was written"
        };
        Error::archive(&self.path, format!("{what}: {detail} ({state})"))
    }

    fn zip_err(&self, what: &str, e: &zip::result::ZipError) -> Error {
        let detail = match e {
            zip::result::ZipError::Io(io) => io_error_text(io),
            other => zip_error_text(other),
        };
        self.write_err(what, detail)
    }

    fn io_err(&self, what: &str, e: &std::io::Error) -> Error {
        self.write_err(what, io_error_text(e))
    }

    /// Starts the new zip on the first write: copies the old zip's entries (but its manifest).
    fn writer(&mut self) -> Result<&mut ZipWriter<BufWriter<PartialFile>>> {
        if self.writer.is_none() {
            let file = self
                .lock
                .try_clone()
                .map_err(|e| Error::archive_io(&self.partial, e))?;
            let file = PartialFile {
                file,
                discard: self.discard.clone(),
                failed: false,
            };
            let mut w = ZipWriter::new(BufWriter::with_capacity(256 * 1024, file));
            if let Some(mut old) = self.old.take() {
                for i in 0..old.archive.len() {
                    let entry = old.archive.by_index_raw(i).map_err(|e| {
                        Error::archive(&self.path, format!("entry {i}: {}", zip_error_text(&e)))
                    })?;
                    if entry.name() == MANIFEST {
                        continue;
                    }
                    let name = entry.name().to_string();
                    self.step();
                    w.raw_copy_file(entry)
                        .map_err(|e| self.zip_err(&format!("copying `{name}`"), &e))?;
                }
                self.rows = old.rows;
            }
            self.writer = Some(w);
        }
        Ok(self.writer.as_mut().expect("set above"))
    }

    /// Adds one message (its stored bytes) to `mailbox`. Returns the entry name.
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
        let entry = manifest::entry_name(mailbox, self.next);
        let options = self.options(internal_date, raw.len() as u64);
        self.writer()?;
        self.step();
        let w = self.writer.as_mut().expect("started");
        if let Err(e) = w.start_file(entry.as_str(), options) {
            return Err(self.zip_err(&format!("writing `{entry}`"), &e));
        }
        if let Err(e) = w.write_all(raw) {
            return Err(self.io_err(&format!("writing `{entry}`"), &e));
        }
        self.next += 1;
        self.rows.push(ManifestRow::new(
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
        Ok(entry)
    }

    /// Adds an empty mailbox as a directory entry (`Empty/`), unless the zip holds it already.
    pub fn add_mailbox(&mut self, mailbox: &MailboxName) -> Result<()> {
        if self.has_mailbox(mailbox) {
            return Ok(());
        }
        let dir = format!("{}/", manifest::mailbox_dir(mailbox));
        let options = SimpleFileOptions::default().unix_permissions(0o700);
        self.writer()?;
        self.step();
        let w = self.writer.as_mut().expect("started");
        if let Err(e) = w.add_directory(dir.as_str(), options) {
            return Err(self.zip_err(&format!("writing `{dir}`"), &e));
        }
        self.mailboxes.insert(mailbox.clone());
        Ok(())
    }

    /// Writes the manifest, finishes the zip and puts it in place (fsync, rename over `X.zip`,
    /// fsync of the directory). Returns false when nothing was added: `X.zip` is then left
    /// untouched and the partial removed.
    pub fn finish(mut self) -> Result<bool> {
        let Some(mut w) = self.writer.take() else {
            return Ok(false); // the partial is removed on drop
        };
        self.step();
        let text: String = self.rows.iter().map(ManifestRow::to_line).collect();
        let options = self.options(Some(crate::core::time::now_secs()), text.len() as u64);
        if let Err(e) = w.start_file(MANIFEST, options) {
            return Err(self.zip_err(&format!("writing `{MANIFEST}`"), &e));
        }
        if let Err(e) = w.write_all(text.as_bytes()) {
            return Err(self.io_err(&format!("writing `{MANIFEST}`"), &e));
        }
        let buffered = w
            .finish()
            .map_err(|e| self.zip_err("finishing the zip", &e))?;
        let file = buffered
            .into_inner()
            .map_err(|e| self.io_err("finishing the zip", e.error()))?;
        if file.failed {
            // A write failed and the zip library did not say so: never put such a zip in place.
            return Err(self.write_err("finishing the zip", "a write failed".into()));
        }
        file.file
            .sync_all()
            .map_err(|e| self.io_err("finishing the zip", &e))?;
        drop(file);
        self.step();
        std::fs::rename(&self.partial, &self.path).map_err(|e| Error::archive_io(&self.path, e))?;
        self.done = true;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        crate::archive::maildir::writer::fsync_dir(&dir)?;
        Ok(true)
    }
}

impl Drop for ZipOut {
    /// Unless the partial was renamed into place, it is removed (nothing was added, or an
    /// error stopped the run); `X.zip` is untouched.
    fn drop(&mut self) {
        if !self.done {
            // The zip library finishes an archive when it is dropped: let it, into nothing.
            self.discard
                .store(true, std::sync::atomic::Ordering::Relaxed);
            self.writer = None;
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times() {
        let t = dos_time(Some(1_700_000_000)); // 2023-11-14 22:13:20 UTC
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2023, 11, 14, 22, 13, 20)
        );
        assert_eq!(dos_time(Some(0)), zip::DateTime::default());
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(
            io_error_text(&full),
            format!("{full}: free some space, then run it again")
        );
        let big = std::io::Error::from_raw_os_error(libc::EFBIG);
        assert!(io_error_text(&big).ends_with("write the zip elsewhere"));
        let other = std::io::Error::from_raw_os_error(libc::EIO);
        assert_eq!(io_error_text(&other), other.to_string());
        assert_eq!(dos_time(None), zip::DateTime::default());
        assert_eq!(
            partial_path(Path::new("/a/b.zip")),
            PathBuf::from("/a/b.zip.partial")
        );
    }
}
