//! One writer per archive (DESIGN.md invariant 7): an exclusive `flock(2)` on
//! `mailkeep/lock`, holding the holder's pid as text.
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

use crate::error::{Error, Result};

/// A held archive lock; released when dropped (or when the process dies).
pub struct ArchiveLock {
    _file: File,
    path: PathBuf,
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
}
