//! An archive of mboxrd files as a [`Sink`]: one file per mailbox, readable by mutt,
//! Thunderbird and Python's `mailbox`.
//!
//! - The root is a directory; `INBOX` is `INBOX.mbox`, `Archive/2023` is `Archive/2023.mbox`
//!   (directories 0700, files 0600). See [`mbox_file_name`] for the escapes.
//! - Messages are staged in `mailkeep/spool/`, then appended as one entry each
//!   ([`crate::archive::mbox::format::write_entry`]: `From ` line with the envelope sender and INTERNALDATE,
//!   mboxrd-quoted message, one empty line), streamed from the staged file.
//! - A file appended to is kept open for the run and holds an fcntl write lock on the whole
//!   file (`F_SETLKW`, mutt's convention) until the sink is dropped. Because POSIX drops every
//!   fcntl lock a process holds on a file when it closes any descriptor of it, this sink never
//!   opens a second descriptor of a locked file.
//! - An append that fails part-way (disk full, file too large) is cut back to where the entry
//!   began, so the file only ever grows by whole entries. A crash mid-append is repaired on the
//!   next run by [`Sink::repair_tail`] from the lengths the ledger recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::archive::maildir::writer::{
    claim_shortened, escape_level, fsync_dir, is_shortened, open_root, read_mailbox_name_file,
    shorten_component, unescape_level, write_name_file,
};
use crate::archive::mbox::format::write_entry;
use crate::archive::writer::{PlaceMeta, Sink, Staged, StagedMessage, Stored, TailMark};
use crate::core::endpoint::ArchiveKind;
use crate::core::error::{Error, Result};
use crate::core::message::MailboxName;

/// The file extension of mailbox files.
const EXT: &str = ".mbox";

/// The mbox file of a mailbox, relative to the root, `/`-separated: `INBOX.mbox`,
/// `Archive/2023.mbox`, `INBOX/Work.mbox`.
///
/// Each level is escaped so that it is one safe path component and no two mailboxes share a
/// file: `%` becomes `%25`, ASCII control characters `%XX`, a leading `.` becomes `%2E` (no
/// hidden files, no `.`/`..`), a top-level `mailkeep` becomes `%6Dailkeep` (the archive's
/// state folder `mailkeep/` has that name), an empty level becomes `%`, and a `.mbox`
/// ending of a parent level becomes `%2Embox` (so the directory `Archive.mbox/` of mailbox
/// `Archive.mbox/x` cannot meet the file `Archive.mbox` of mailbox `Archive`). Other
/// characters, UTF-8 included, are kept; a `/` inside a level is `%2F`. A component longer than
/// 255 bytes is shortened with a hash of the mailbox name up to that level
/// ([`shorten_component`]), and the full name is then kept in a hidden file beside it
/// ([`name_file_of`]).
pub fn mbox_file_name(mailbox: &MailboxName) -> String {
    let levels = mailbox.levels();
    let mut out = String::new();
    for (i, level) in levels.iter().enumerate() {
        let mut esc = if i == 0 && level == crate::archive::STATE_DIR {
            "%6Dailkeep".to_string()
        } else {
            escape_level(level, false)
        };
        let last = i + 1 == levels.len();
        let upto = MailboxName::from_levels(&levels[..=i]);
        if !last {
            if let Some(stem) = esc.strip_suffix(EXT) {
                esc = format!("{stem}%2Embox");
            }
            esc = shorten_component(esc, "/", &upto);
        } else {
            esc = shorten_component(esc, EXT, &upto);
        }
        out.push_str(&esc);
    }
    out
}

/// The file beside a shortened mbox file (`relative`, ending `.mbox`) that holds its mailbox's
/// full name: `.<h>.mailkeep-mailbox` in the same directory, `<h>` the first 16 hex digits of
/// SHA-256 of `relative` (hidden, so no reader takes it for a mailbox; short, so it fits).
pub fn name_file_of(relative: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = &hex::encode(Sha256::digest(relative.as_bytes()))[..16];
    let file = format!(
        ".{h}.{}",
        crate::archive::maildir::writer::MAILBOX_NAME_FILE
    );
    match relative.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{file}"),
        None => file,
    }
}

/// The mailbox of the mbox file `relative` in the archive at `root`: [`mailbox_from_mbox_file`],
/// or for a shortened name the one its [`name_file_of`] file holds.
pub fn mailbox_of_mbox_file(root: &Path, relative: &str) -> Option<MailboxName> {
    if is_shortened(relative) {
        if relative.split('/').any(|p| p.starts_with('.')) {
            return None;
        }
        return read_mailbox_name_file(&root.join(name_file_of(relative)));
    }
    mailbox_from_mbox_file(relative)
}

/// The mailbox an mbox file holds (the inverse of [`mbox_file_name`]); `None` when the path
/// does not end in `.mbox`, a component is hidden (starts with `.`) or shortened (see
/// [`mailbox_of_mbox_file`]).
pub fn mailbox_from_mbox_file(relative: &str) -> Option<MailboxName> {
    let stem = relative.strip_suffix(EXT)?;
    let parts: Vec<&str> = stem.split('/').collect();
    if parts.iter().any(|p| p.starts_with('.')) || parts[0] == crate::archive::STATE_DIR {
        return None;
    }
    if is_shortened(stem) {
        return None;
    }
    let levels: Vec<String> = parts.into_iter().map(unescape_level).collect();
    Some(MailboxName::from_levels(&levels))
}

/// How long to wait for another program (a mail reader) to release an mbox file's lock.
const MBOX_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes an fcntl write lock on the whole file (the convention mutt and procmail use), retrying
/// for up to [`MBOX_LOCK_WAIT`] while another program holds it; then fails with `WouldBlock`,
/// so a cron run never hangs behind a mail reader left open.
fn lock_whole_file(file: &File) -> io::Result<()> {
    // SAFETY: an all-zero `flock` is a valid value; the fields set below are the ones read.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    let deadline = std::time::Instant::now() + MBOX_LOCK_WAIT;
    loop {
        // SAFETY: the descriptor is open for the duration of the call and `fl` is valid.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EACCES) | Some(libc::EAGAIN) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Some(libc::EACCES) | Some(libc::EAGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another program has held a lock on this mbox file for {} s; close the mail reader using it and run again",
                        MBOX_LOCK_WAIT.as_secs()
                    ),
                ))
            }
            _ => return Err(e),
        }
    }
}

/// An mbox file open for the run.
struct OpenMbox {
    file: File,
    path: PathBuf,
    /// Directories whose entries changed when the file (or its parents) was created; fsync'd
    /// on the next sync.
    new_entries_in: Vec<PathBuf>,
}

/// An archive of mboxrd files being written.
pub struct MboxSink {
    root: PathBuf,
    open: HashMap<String, OpenMbox>,
    /// Files appended to since the last sync.
    dirty: BTreeSet<String>,
    counter: u64,
    /// Which mailbox each file holds in this run ([`Sink::claim`]).
    claims: crate::archive::writer::FolderClaims,
}

impl MboxSink {
    /// Opens (creating with mode 0700 when missing) an mbox archive root. Refuses a root that
    /// is not a directory or not writable.
    pub fn open(root: &Path) -> Result<Self> {
        open_root(root)?;
        crate::archive::writer::refuse_symlinks(root, &root.join("mailkeep").join("spool"))?;
        crate::archive::staging::staged::remove_stale(&root.join("mailkeep").join("spool"))?;
        Ok(MboxSink {
            root: root.to_path_buf(),
            open: HashMap::new(),
            dirty: BTreeSet::new(),
            counter: 0,
            claims: crate::archive::writer::FolderClaims::default(),
        })
    }

    /// The spool directory staged messages are written to.
    fn spool(&self) -> PathBuf {
        self.root.join("mailkeep").join("spool")
    }

    /// The open, locked file `relative`, opening (and when `create`, creating) it first.
    /// `None` when it does not exist and `create` is false.
    fn file(&mut self, relative: &str, create: bool) -> Result<Option<&mut OpenMbox>> {
        if !self.open.contains_key(relative) {
            let path = self.root.join(relative);
            crate::archive::writer::refuse_symlinks(&self.root, &path)?;
            let mut new_entries_in = Vec::new();
            if create {
                // Create missing parent directories one by one, remembering what to fsync.
                let mut missing = Vec::new();
                let mut p = path.parent();
                while let Some(dir) = p {
                    if dir.is_dir() {
                        break;
                    }
                    missing.push(dir.to_path_buf());
                    p = dir.parent();
                }
                for dir in missing.iter().rev() {
                    match DirBuilder::new().mode(0o700).create(dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(Error::archive_io(dir, e)),
                    }
                    if let Some(parent) = dir.parent() {
                        new_entries_in.push(parent.to_path_buf());
                    }
                }
            }
            let existed = path.exists();
            let opened = OpenOptions::new()
                .read(true)
                .append(true)
                .create(create)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path);
            let file = match opened {
                Ok(f) => f,
                Err(e) if !create && e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::archive_io(&path, e)),
            };
            if !file
                .metadata()
                .map_err(|e| Error::archive_io(&path, e))?
                .is_file()
            {
                return Err(Error::archive(&path, "is not a regular file"));
            }
            lock_whole_file(&file).map_err(|e| Error::archive_io(&path, e))?;
            if !existed {
                if let Some(parent) = path.parent() {
                    new_entries_in.push(parent.to_path_buf());
                }
            }
            self.open.insert(
                relative.to_string(),
                OpenMbox {
                    file,
                    path,
                    new_entries_in,
                },
            );
        }
        Ok(self.open.get_mut(relative))
    }
}

/// The offset of a line starting with `From ` in `file[from..len)` other than the first
/// line after optional empty lines (where mailkeep's own separator would be), if any.
fn foreign_from_line(file: &File, from: u64, len: u64) -> io::Result<Option<u64>> {
    let mut reader = BufReader::new(file.try_clone()?);
    reader.seek(io::SeekFrom::Start(from))?;
    let mut reader = reader.take(len - from);
    let mut line = Vec::new();
    let mut pos = from;
    let mut seen_first = false;
    loop {
        line.clear();
        let n = io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if !seen_first {
            if line == b"\n" || line == b"\r\n" {
                pos += n as u64;
                continue;
            }
            seen_first = true;
        } else if line.starts_with(b"From ") {
            return Ok(Some(pos));
        }
        pos += n as u64;
    }
}

/// Splits a location `<file>:<offset>:<length>` (file names may contain `:`).
fn parse_location(location: &str) -> Option<(&str, u64, u64)> {
    let (rest, len) = location.rsplit_once(':')?;
    let (file, offset) = rest.rsplit_once(':')?;
    Some((file, offset.parse().ok()?, len.parse().ok()?))
}

/// The bytes to write before a new entry so that its `From ` line follows an empty line:
/// nothing for an empty file or one ending in an empty line, else one or two LFs.
fn separator_padding(file: &File, len: u64) -> io::Result<&'static [u8]> {
    if len == 0 {
        return Ok(b"");
    }
    let n = len.min(3) as usize;
    let mut tail = [0u8; 3];
    file.read_exact_at(&mut tail[..n], len - n as u64)?;
    let tail = &tail[..n];
    Ok(
        if tail == b"\n" || tail.ends_with(b"\n\n") || tail.ends_with(b"\n\r\n") {
            b""
        } else if tail.ends_with(b"\n") {
            b"\n"
        } else {
            b"\n\n"
        },
    )
}

/// Appends one entry at the end of `file` (open in append mode, length `start`). Returns the
/// From line's offset and the entry's length.
fn append_entry(
    file: &File,
    start: u64,
    staged: &StagedMessage,
    meta: &PlaceMeta,
) -> io::Result<(u64, u64)> {
    let pad = separator_padding(file, start)?;
    let mut source = BufReader::with_capacity(64 * 1024, File::open(&staged.path)?);
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let result = out.write_all(pad).and_then(|()| {
        write_entry(
            &mut out,
            &meta.envelope_from,
            meta.internal_date,
            &mut source,
        )
    });
    let result = result.and_then(|len| out.flush().map(|()| len));
    // Never let a failed writer flush its buffer later (it would land after the truncation).
    let _ = out.into_parts();
    let len = result?;
    Ok((start + pad.len() as u64, len))
}

impl Sink for MboxSink {
    fn kind(&self) -> ArchiveKind {
        ArchiveKind::Mbox
    }

    fn claim(&mut self, mailbox: &MailboxName) -> Result<std::result::Result<(), String>> {
        let relative = mbox_file_name(mailbox);
        let path = self.root.join(&relative);
        let name_file = self.root.join(name_file_of(&relative));
        crate::archive::writer::claim_path(&mut self.claims, &path, mailbox, |_| {
            claim_shortened(&relative, &name_file, mailbox)
        })
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn stage(&mut self, mailbox: &MailboxName) -> Result<Staged> {
        let spool = self.spool();
        crate::archive::writer::refuse_symlinks(&self.root, &spool)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&spool)
            .map_err(|e| Error::archive_io(&spool, e))?;
        let relative = mbox_file_name(mailbox);
        self.file(&relative, true)?;
        if is_shortened(&relative) {
            let name_file = self.root.join(name_file_of(&relative));
            if std::fs::symlink_metadata(&name_file).is_err() {
                write_name_file(&name_file, mailbox)?;
                if let Some(dir) = name_file.parent() {
                    fsync_dir(dir)?;
                }
            }
        }
        self.counter += 1;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let path = spool.join(crate::archive::staging::staged::staged_name(
            secs,
            std::process::id(),
            self.counter,
        ));
        Staged::create(&path).map_err(|e| Error::archive_io(&path, e))
    }

    fn tail(&mut self, mailbox: &MailboxName) -> Result<Option<TailMark>> {
        let file = mbox_file_name(mailbox);
        let len = match self.open.get(&file) {
            Some(m) => m
                .file
                .metadata()
                .map_err(|e| Error::archive_io(&m.path, e))?
                .len(),
            None => {
                let path = self.root.join(&file);
                match std::fs::metadata(&path) {
                    Ok(md) => md.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(Error::archive_io(&path, e)),
                }
            }
        };
        Ok(Some(TailMark { file, len }))
    }

    fn place(&mut self, staged: StagedMessage, meta: &PlaceMeta) -> Result<Stored> {
        let relative = mbox_file_name(&meta.mailbox);
        let m = match self.file(&relative, true) {
            Ok(m) => m.expect("created"),
            Err(e) => {
                staged.discard();
                return Err(e);
            }
        };
        let start = match m.file.metadata() {
            Ok(md) => md.len(),
            Err(e) => {
                staged.discard();
                return Err(Error::archive_io(&m.path, e));
            }
        };
        let result = append_entry(&m.file, start, &staged, meta);
        staged.discard();
        let (offset, len) = match result {
            Ok(r) => r,
            Err(e) => {
                if let Err(cut) = m.file.set_len(start) {
                    return Err(Error::archive(
                        &m.path,
                        format!(
                            "appending failed ({e}) and cutting the partial entry back to \
                             {start} bytes failed too ({cut}): remove everything after byte \
                             {start} before the next run"
                        ),
                    ));
                }
                return Err(Error::archive_io(&m.path, e));
            }
        };
        self.dirty.insert(relative.clone());
        Ok(Stored {
            location: format!("{relative}:{offset}:{len}"),
        })
    }

    fn sync(&mut self) -> Result<Vec<TailMark>> {
        let mut marks = Vec::new();
        let mut dirs = BTreeMap::new();
        for relative in std::mem::take(&mut self.dirty) {
            let m = self.open.get_mut(&relative).expect("dirty files are open");
            m.file
                .sync_all()
                .map_err(|e| Error::archive_io(&m.path, e))?;
            let len = m
                .file
                .metadata()
                .map_err(|e| Error::archive_io(&m.path, e))?
                .len();
            for d in m.new_entries_in.drain(..) {
                dirs.insert(d, ());
            }
            marks.push(TailMark {
                file: relative,
                len,
            });
        }
        // Deepest first is not needed: each directory is fsync'd after its entries exist.
        for dir in dirs.keys() {
            fsync_dir(dir)?;
        }
        Ok(marks)
    }

    fn find_unrecorded(
        &mut self,
        _mailbox: &MailboxName,
        _identity: &str,
    ) -> Result<Option<(Stored, String, u64)>> {
        Ok(None)
    }

    fn repair_tail(&mut self, pending: &TailMark, committed: u64) -> Result<bool> {
        let Some(m) = self.file(&pending.file, false)? else {
            if committed > 0 {
                return Err(Error::archive(
                    self.root.join(&pending.file),
                    format!(
                        "is missing, but mailkeep recorded {committed} bytes in it: it was \
                         moved or deleted by another program; refusing to write"
                    ),
                ));
            }
            return Ok(false);
        };
        let len = m
            .file
            .metadata()
            .map_err(|e| Error::archive_io(&m.path, e))?
            .len();
        if len < committed {
            return Err(Error::archive(
                &m.path,
                format!(
                    "is shorter than the {committed} bytes mailkeep recorded: it was truncated \
                     or rewritten by another program; refusing to write"
                ),
            ));
        }
        let keep = pending.len.max(committed);
        let cut = len > keep;
        if cut {
            // What mailkeep appended is at most one entry: padding, its `From ` line, and a
            // message whose own `From ` lines are all quoted. Another `From ` line in the tail
            // means another program appended after the crash: refuse to cut its mail.
            if let Some(at) =
                foreign_from_line(&m.file, keep, len).map_err(|e| Error::archive_io(&m.path, e))?
            {
                return Err(Error::archive(
                    &m.path,
                    format!(
                        "an interrupted mailkeep run left an unfinished entry at byte {keep}, and another program appended mail after it (a `From ` line at byte {at}); refusing to cut anything: move the bytes from {keep} on into another mbox file, then run again"
                    ),
                ));
            }
            m.file
                .set_len(keep)
                .map_err(|e| Error::archive_io(&m.path, e))?;
        }
        m.file
            .sync_all()
            .map_err(|e| Error::archive_io(&m.path, e))?;
        Ok(cut)
    }

    fn set_flags(
        &mut self,
        _mailbox: &MailboxName,
        _location: &str,
        _old: &crate::core::message::Flags,
        _new: &crate::core::message::Flags,
    ) -> Result<()> {
        Ok(())
    }

    fn remove(
        &mut self,
        _mailbox: &MailboxName,
        _location: &str,
        _flags: &crate::core::message::Flags,
    ) -> Result<bool> {
        Ok(false)
    }

    fn present(&mut self, _location: &str) -> Result<Option<bool>> {
        Ok(None)
    }

    fn verify_stored(
        &mut self,
        _mailbox: &MailboxName,
        location: &str,
        _flags: &crate::core::message::Flags,
        sha256: &str,
    ) -> Result<bool> {
        self.verify_placed(location, sha256)
    }

    fn verify_placed(&mut self, location: &str, sha256: &str) -> Result<bool> {
        let Some((file, offset, len)) = parse_location(location) else {
            return Ok(false);
        };
        let Some(m) = self.file(file, false)? else {
            return Ok(false);
        };
        let size = m
            .file
            .metadata()
            .map_err(|e| Error::archive_io(&m.path, e))?
            .len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Ok(false);
        }
        let mut f = m
            .file
            .try_clone()
            .map_err(|e| Error::archive_io(&m.path, e))?;
        f.seek(io::SeekFrom::Start(offset))
            .map_err(|e| Error::archive_io(&m.path, e))?;
        let reader = io::BufReader::new(f.take(len));
        let mut it = crate::archive::mbox::format::MboxReader::new(reader);
        let Ok(Some(msg)) = it.next_message() else {
            return Ok(false);
        };
        if !matches!(it.next_message(), Ok(None)) {
            return Ok(false);
        }
        use sha2::Digest;
        Ok(hex::encode(sha2::Sha256::digest(&msg.raw)) == sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::mbox::format::{entry, MboxReader};
    use crate::core::message::Flags;
    use std::os::unix::fs::PermissionsExt;

    fn meta(mailbox: &str, from: &str, date: i64) -> PlaceMeta {
        PlaceMeta {
            mailbox: MailboxName::new(mailbox),
            flags: Flags::new(),
            internal_date: date,
            envelope_from: from.into(),
            identity: format!("id-{date}"),
        }
    }

    fn put(sink: &mut MboxSink, m: &PlaceMeta, body: &[u8]) -> Result<Stored> {
        let mut s = sink.stage(&m.mailbox).unwrap();
        s.write_all(body).unwrap();
        let staged = s.finish().unwrap();
        sink.place(staged, m)
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn links_inside_the_archive_are_never_written_through() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("a");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), b"keep\n").unwrap();
        let mut sink = MboxSink::open(&root).unwrap();
        // A mailbox file that is a link, and a folder on the way to one.
        std::os::unix::fs::symlink(outside.join("victim"), root.join("INBOX.mbox")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("Archive")).unwrap();
        for (mailbox, link) in [("INBOX", "INBOX.mbox"), ("Archive/2023", "Archive")] {
            let e = sink.stage(&MailboxName::new(mailbox)).err().unwrap();
            assert_eq!(
                e.to_string(),
                format!(
                    "archive {}: is a symbolic link; mailkeep writes nothing through a link (it could lead out of the archive): replace it with a real folder or file",
                    root.join(link).display()
                ),
                "{mailbox}"
            );
            assert_eq!(e.exit(), crate::core::error::Exit::Archive);
        }
        // The spool too, before anything in it is removed.
        drop(sink);
        std::fs::remove_dir_all(root.join("mailkeep/spool")).ok();
        std::fs::create_dir_all(root.join("mailkeep")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("mailkeep/spool")).unwrap();
        assert!(MboxSink::open(&root).is_err());
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep\n");
        let names: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
        assert_eq!(names.len(), 1, "written outside: {names:?}");
    }

    #[test]
    fn file_names_table() {
        let table: &[(&str, &str)] = &[
            ("INBOX", "INBOX.mbox"),
            ("Archive/2023", "Archive/2023.mbox"),
            ("INBOX/Work", "INBOX/Work.mbox"),
            // Only INBOX alone is case-insensitive: `inbox/Work` is another mailbox.
            ("inbox/Work", "inbox/Work.mbox"),
            ("Work%2Fx", "Work%2Fx.mbox"),
            ("example.org invoices", "example.org invoices.mbox"),
            (".hidden/..", "%2Ehidden/%2E..mbox"),
            ("mailkeep", "%6Dailkeep.mbox"),
            ("mailkeep/x", "%6Dailkeep/x.mbox"),
            ("a/mailkeep", "a/mailkeep.mbox"),
            ("Archive.mbox/x", "Archive%2Embox/x.mbox"),
            ("x.mbox", "x.mbox.mbox"),
            ("100%", "100%25.mbox"),
            ("日本語/📬", "日本語/📬.mbox"),
            ("a//b", "a/%/b.mbox"),
        ];
        for (mailbox, file) in table {
            let m = MailboxName::new(mailbox);
            assert_eq!(mbox_file_name(&m), *file, "{mailbox}");
            assert_eq!(mailbox_from_mbox_file(file), Some(m), "{file}");
        }
        assert_eq!(mailbox_from_mbox_file("mailkeep/x.mbox"), None);
        assert_eq!(mailbox_from_mbox_file("INBOX"), None);
    }

    #[test]
    fn place_appends_exact_entries() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("arch");
        let mut sink = MboxSink::open(&root).unwrap();
        assert_eq!(sink.kind(), ArchiveKind::Mbox);
        let inbox = MailboxName::inbox();
        assert_eq!(
            sink.tail(&inbox).unwrap(),
            Some(TailMark {
                file: "INBOX.mbox".into(),
                len: 0
            })
        );
        let body1: &[u8] = b"From: a\r\nSubject: 1\r\n\r\nFrom here\r\n>From there\r\n";
        let s1 = put(&mut sink, &meta("INBOX", "a@x", 1_709_802_307), body1).unwrap();
        let e1 = entry(
            "a@x",
            1_709_802_307,
            b"From: a\nSubject: 1\n\nFrom here\n>From there\n",
        );
        assert_eq!(
            &e1[..],
            &b"From a@x Thu Mar  7 09:05:07 2024\nFrom: a\nSubject: 1\n\n>From here\n>>From there\n\n"[..]
        );
        assert_eq!(s1.location, format!("INBOX.mbox:0:{}", e1.len()));
        let s2 = put(&mut sink, &meta("INBOX", "", 60), b"x").unwrap();
        let e2 = entry("", 60, b"x\n");
        assert_eq!(s2.location, format!("INBOX.mbox:{}:{}", e1.len(), e2.len()));
        let s3 = put(&mut sink, &meta("Archive/2023", "b c", 0), b"y\n").unwrap();
        assert_eq!(
            s3.location,
            format!("Archive/2023.mbox:0:{}", entry("b_c", 0, b"y\n").len())
        );
        let mut marks = sink.sync().unwrap();
        marks.sort_by(|a, b| a.file.cmp(&b.file));
        let total = (e1.len() + e2.len()) as u64;
        assert_eq!(
            marks,
            vec![
                TailMark {
                    file: "Archive/2023.mbox".into(),
                    len: entry("b_c", 0, b"y\n").len() as u64
                },
                TailMark {
                    file: "INBOX.mbox".into(),
                    len: total
                },
            ]
        );
        assert_eq!(sink.sync().unwrap(), vec![]);
        assert_eq!(sink.tail(&inbox).unwrap().unwrap().len, total);
        let data = std::fs::read(root.join("INBOX.mbox")).unwrap();
        assert_eq!(data, [e1.clone(), e2].concat());
        let msgs: Vec<_> = MboxReader::new(&data[..]).map(|m| m.unwrap()).collect();
        assert_eq!(
            msgs[0].raw,
            b"From: a\nSubject: 1\n\nFrom here\n>From there\n"
        );
        assert_eq!(msgs[1].raw, b"x\n");
        assert_eq!(msgs[1].offset, e1.len() as u64);
        // Modes; the spool is empty again.
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("INBOX.mbox")), 0o600);
        assert_eq!(mode(&root.join("Archive")), 0o700);
        assert_eq!(mode(&root.join("Archive/2023.mbox")), 0o600);
        assert_eq!(mode(&root.join("mailkeep/spool")), 0o700);
        assert_eq!(
            std::fs::read_dir(root.join("mailkeep/spool"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(sink.find_unrecorded(&inbox, "id-0").unwrap(), None);
    }

    #[test]
    fn appending_to_a_file_without_final_empty_line() {
        let t = tempfile::tempdir().unwrap();
        let existing = b"From a Thu Jan  1 00:00:00 1970\nS: 1\n\nbody\n";
        std::fs::write(t.path().join("INBOX.mbox"), existing).unwrap();
        let mut sink = MboxSink::open(t.path()).unwrap();
        let s = put(&mut sink, &meta("INBOX", "b", 0), b"S: 2\n").unwrap();
        let n = existing.len() + 1;
        assert_eq!(
            s.location,
            format!("INBOX.mbox:{n}:{}", entry("b", 0, b"S: 2\n").len())
        );
        drop(sink);
        let data = std::fs::read(t.path().join("INBOX.mbox")).unwrap();
        let msgs: Vec<_> = MboxReader::new(&data[..]).map(|m| m.unwrap()).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].raw, b"S: 1\n\nbody\n");
        assert_eq!(msgs[1].raw, b"S: 2\n");
    }

    #[test]
    fn repair_tail_cuts_unrecorded_tail_and_refuses_truncated_file() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let inbox = MailboxName::inbox();
        let committed = {
            let mut sink = MboxSink::open(root).unwrap();
            put(&mut sink, &meta("INBOX", "a", 0), b"one\n").unwrap();
            sink.sync().unwrap()[0].clone()
        };
        // A crashed run: pending mark taken, then half an entry appended.
        let pending = {
            let mut sink = MboxSink::open(root).unwrap();
            let p = sink.tail(&inbox).unwrap().unwrap();
            assert_eq!(p, committed);
            p
        };
        let path = root.join("INBOX.mbox");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"From b Thu Jan  1 00:00:00 1970\nhalf a mess")
            .unwrap();
        drop(f);
        // Another program appended after the unfinished entry: nothing is cut.
        {
            let partial_len = std::fs::metadata(&path).unwrap().len();
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(b"ge\nFrom other@x Mon Jan  1 00:00:00 2024\nSubject: precious\n\n")
                .unwrap();
            let before = std::fs::read(&path).unwrap();
            let mut sink = MboxSink::open(root).unwrap();
            let err = sink
                .repair_tail(&pending, committed.len)
                .unwrap_err()
                .to_string();
            assert!(err.contains("another program appended"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), before);
            drop(sink);
            f.set_len(partial_len).unwrap();
        }
        let mut sink = MboxSink::open(root).unwrap();
        sink.repair_tail(&pending, committed.len).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), committed.len);
        // Nothing to do the second time.
        sink.repair_tail(&pending, committed.len).unwrap();
        let s = put(&mut sink, &meta("INBOX", "c", 0), b"two\n").unwrap();
        assert!(s
            .location
            .starts_with(&format!("INBOX.mbox:{}:", committed.len)));
        drop(sink);

        // Someone else truncated the file.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10)
            .unwrap();
        let mut sink = MboxSink::open(root).unwrap();
        let err = sink.repair_tail(&pending, committed.len).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("INBOX.mbox"), "{text}");
        assert!(
            text.contains(&format!(
                "is shorter than the {} bytes mailkeep recorded",
                committed.len
            )),
            "{text}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 10);

        // Missing files: fine when nothing was committed, an error otherwise.
        let none = TailMark {
            file: "Other.mbox".into(),
            len: 0,
        };
        sink.repair_tail(&none, 0).unwrap();
        assert!(!root.join("Other.mbox").exists());
        assert!(sink.repair_tail(&none, 5).is_err());
    }

    #[test]
    fn open_refuses_a_file_root() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"").unwrap();
        let err = MboxSink::open(&f).err().unwrap();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    /// The lock is an fcntl lock on the whole file: another process testing it sees it held.
    #[test]
    fn holds_fcntl_lock_on_files_appended_to() {
        let t = tempfile::tempdir().unwrap();
        let mut sink = MboxSink::open(t.path()).unwrap();
        put(&mut sink, &meta("INBOX", "a", 0), b"x\n").unwrap();
        let path = t.path().join("INBOX.mbox");
        // F_GETLK from this process would report no conflict (locks are per process), so ask
        // a child: python's fcntl.lockf uses fcntl F_SETLK.
        let probe = std::process::Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys\nf=open(sys.argv[1],'a')\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\n print('free')\nexcept OSError:\n print('locked')",
            ])
            .arg(&path)
            .output();
        if let Ok(out) = probe {
            if out.status.success() {
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "locked");
            }
        }
    }

    const EFBIG_ENV: &str = "MAILKEEP_TEST_EFBIG_ROOT";

    /// A write failing part-way (here EFBIG from RLIMIT_FSIZE, in a child process so that the
    /// limit does not affect other tests) leaves the file exactly as it was.
    #[test]
    fn failed_append_is_cut_back() {
        if let Ok(root) = std::env::var(EFBIG_ENV) {
            return efbig_child(Path::new(&root));
        }
        let t = tempfile::tempdir().unwrap();
        {
            let mut sink = MboxSink::open(t.path()).unwrap();
            put(&mut sink, &meta("INBOX", "a", 0), b"first\n").unwrap();
            sink.sync().unwrap();
        }
        let before = std::fs::read(t.path().join("INBOX.mbox")).unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "archive::mbox::writer::tests::failed_append_is_cut_back",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(EFBIG_ENV, t.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
        assert_eq!(std::fs::read(t.path().join("INBOX.mbox")).unwrap(), before);
        assert_eq!(
            std::fs::read_dir(t.path().join("mailkeep/spool"))
                .unwrap()
                .count(),
            0
        );
    }

    fn efbig_child(root: &Path) {
        let mut sink = MboxSink::open(root).unwrap();
        let inbox = MailboxName::inbox();
        let mut s = sink.stage(&inbox).unwrap();
        s.write_all(&vec![b'z'; 300_000]).unwrap();
        let staged = s.finish().unwrap();
        let len = std::fs::metadata(root.join("INBOX.mbox")).unwrap().len();
        // SAFETY: plain libc calls on this (single-test) process.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let mut lim: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim);
            lim.rlim_cur = len + 100_000;
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        let err = sink.place(staged, &meta("INBOX", "b", 0)).unwrap_err();
        assert!(matches!(err, Error::ArchiveIo { .. }), "{err}");
        assert!(err.to_string().contains("INBOX.mbox"), "{err}");
        assert_eq!(
            std::fs::metadata(root.join("INBOX.mbox")).unwrap().len(),
            len
        );
    }
}
