//! One writer per archive, safe readers (DESIGN.md invariant 10): a writer (`backup`,
//! `convert` into a Maildir or mbox archive, `run`) takes an exclusive `flock(2)` on
//! `mailkeep/lock`, holding the holder's pid as text; a reader (`list`, `export`, `verify`,
//! `convert`/`restore`/`migrate --via` reading it) takes a shared one, so readers run side by
//! side but never while a writer writes, and a writer never starts while a reader reads.
//! Either refused is [`Error::Locked`] (exit 5). The lock file is never followed through a
//! symbolic link (`O_NOFOLLOW`).
//!
//! The kernel drops the lock when its holder dies, however it dies, so a lock left by a killed
//! run (`kill -9`, OOM, power loss) is taken over by the next run without anyone deleting a
//! file. A second run that finds the lock held fails at once with [`Error::Locked`] (exit 5),
//! naming the archive and the holder's pid.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::core::error::{Error, Result};

/// A held archive lock; released when dropped (or when the process dies).
pub struct ArchiveLock {
    _file: File,
    path: PathBuf,
}

impl Drop for ArchiveLock {
    /// Releases the lock explicitly before the file is closed: a child process forked at
    /// that moment (a password command, a test's `mailkeep`) holds a copy of the descriptor
    /// until its `exec` closes it, and the lock would outlive this value until then.
    fn drop(&mut self) {
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        unsafe { libc::flock(self._file.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl ArchiveLock {
    /// Takes the lock at `lock_path` for the archive at `archive`, without waiting.
    ///
    /// Errors: [`Error::Locked`] when another process holds it; [`Error::ArchiveIo`] when the
    /// lock file cannot be created.
    pub fn acquire(lock_path: &Path, archive: &Path) -> Result<ArchiveLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(lock_path)
            .map_err(|e| Error::archive_io(lock_path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    path: archive.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            return Err(Error::archive_io(lock_path, err));
        }
        file.set_len(0)
            .map_err(|e| Error::archive_io(lock_path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::archive_io(lock_path, e))?;
        write!(file, "{}", std::process::id()).map_err(|e| Error::archive_io(lock_path, e))?;
        Ok(ArchiveLock {
            _file: file,
            path: lock_path.to_path_buf(),
        })
    }

    /// Takes the archive lock of a reader: shared, without waiting, on `<root>/mailkeep/lock`
    /// opened read-only (nothing in the archive is created or written). `None` when the
    /// archive has no lock file (not a mailkeep archive, or one no writer has opened yet:
    /// every writer creates it before writing anything else).
    ///
    /// Errors: [`Error::Locked`] (exit 5) naming the archive and the writer's pid while a
    /// writer holds it; [`Error::ArchiveIo`] when the lock file cannot be opened (a symbolic
    /// link is refused: `ELOOP`).
    pub fn acquire_shared(root: &Path) -> Result<Option<ArchiveLock>> {
        let path = root.join(crate::archive::STATE_DIR).join("lock");
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::archive_io(&path, e)),
        };
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    path: root.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            return Err(Error::archive_io(&path, err));
        }
        Ok(Some(ArchiveLock { _file: file, path }))
    }

    /// Takes the lock on uploads into one target account (`restore`, `migrate`): the file
    /// `<state dir>/locks/<ledger key>.lock` (key characters other than letters, digits, `@`,
    /// `.`, `-` and `_` written as `%XX`), so two runs into the same account cannot both
    /// append a message the other is appending.
    ///
    /// Errors: [`Error::TargetLocked`] naming `account` and the holder's pid when another run
    /// holds it; [`Error::ArchiveIo`] when the lock file cannot be created.
    pub fn acquire_target(state_dir: &Path, key: &str, account: &str) -> Result<ArchiveLock> {
        let dir = state_dir.join("locks");
        if !dir.is_dir() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::archive_io(&dir, e))?;
        }
        let mut name = String::new();
        for b in key.bytes() {
            if b.is_ascii_alphanumeric() || b"@.-_".contains(&b) {
                name.push(b as char);
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        let path = dir.join(format!("{name}.lock"));
        ArchiveLock::acquire(&path, &path).map_err(|e| match e {
            Error::Locked { holder, .. } => Error::TargetLocked {
                account: account.to_string(),
                holder,
            },
            other => other,
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let a = ArchiveLock::acquire(&p, dir.path()).unwrap();
        match ArchiveLock::acquire(&p, dir.path()) {
            Err(Error::Locked { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Locked, got {:?}", other.err()),
        }
        drop(a);
        ArchiveLock::acquire(&p, dir.path()).unwrap();
    }

    #[test]
    fn readers_share_and_exclude_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // No lock file: nothing to share, nothing created.
        assert!(ArchiveLock::acquire_shared(root).unwrap().is_none());
        assert!(!root.join(crate::archive::STATE_DIR).exists());
        std::fs::create_dir(root.join(crate::archive::STATE_DIR)).unwrap();
        let p = root.join(crate::archive::STATE_DIR).join("lock");
        let w = ArchiveLock::acquire(&p, root).unwrap();
        match ArchiveLock::acquire_shared(root) {
            Err(Error::Locked { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Locked, got {:?}", other.err()),
        }
        drop(w);
        let r1 = ArchiveLock::acquire_shared(root).unwrap().unwrap();
        let r2 = ArchiveLock::acquire_shared(root).unwrap().unwrap();
        assert!(matches!(
            ArchiveLock::acquire(&p, root),
            Err(Error::Locked { .. })
        ));
        drop((r1, r2));
        ArchiveLock::acquire(&p, root).unwrap();
    }

    #[test]
    fn a_symlinked_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(crate::archive::STATE_DIR);
        std::fs::create_dir(&state).unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, state.join("lock")).unwrap();
        assert!(ArchiveLock::acquire(&state.join("lock"), dir.path()).is_err());
        assert!(ArchiveLock::acquire_shared(dir.path()).is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }
}
