//! Staged message files fsync'd several at a time, while the connection reads on (issue 8).
//!
//! One fsync per message file is what bounds a backup's wall time: each waits for its own
//! journal commit when they come one after another, while ext4 and XFS join concurrent fsyncs
//! into one commit (measured on the benchmark machine: 0.42 ms per 10 KB file one after
//! another, 0.24 ms with 8 threads; for a realistic mix the gap is larger, BENCHMARKS.md).
//!
//! The engine writes a message into `tmp/` on its connection's thread
//! ([`crate::archive::writer::Staged::finish_unsynced`]), hands the open file to the pool with
//! [`FsyncPool::submit`] and reads the next message. Before the batch is placed (renamed into
//! `cur/`, appended to an mbox) it waits for each of its files with [`Pending::wait`]. The
//! invariant is unchanged (DESIGN.md invariant 1): a message file is fsync'd before it is
//! placed, the directory is fsync'd ([`crate::archive::writer::Sink::sync`]) before the ledger records it.
//!
//! At most [`QUEUE`] files wait in the queue (plus one per thread being synced): a connection
//! faster than the disk blocks in `submit`, so open files and memory stay bounded.

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use crate::archive::writer::StagedMessage;

/// Threads of the process-wide pool: past 8, concurrent fsyncs gained nothing on ext4 in the
/// measurement above.
pub const THREADS: usize = 8;

/// Files that may wait for a thread before [`FsyncPool::submit`] blocks.
pub const QUEUE: usize = 64;

type Job = (File, Sender<io::Result<()>>);

/// A fixed set of threads that fsync the files handed to them.
pub struct FsyncPool {
    /// `None` when no thread could be started: files are then fsync'd in `submit`.
    queue: Option<SyncSender<Job>>,
}

/// The fsync of one submitted file, to wait for.
pub struct Pending(PendingState);

enum PendingState {
    Done(io::Result<()>),
    Waiting(Receiver<io::Result<()>>),
}

impl FsyncPool {
    /// Starts `threads` threads (at least one). When the system refuses a thread, the pool
    /// works with those it has; with none, [`FsyncPool::submit`] fsyncs in the caller.
    pub fn new(threads: usize) -> FsyncPool {
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("fsync-{i}"))
                .spawn(move || loop {
                    // The lock is held only to take the next job, not during its fsync.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((file, reply)) = job else { return };
                    let _ = reply.send(file.sync_all());
                    // The file is closed here, after its fsync.
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        FsyncPool {
            queue: (started > 0).then_some(tx),
        }
    }

    /// The process-wide pool of [`THREADS`] threads, started on first use.
    pub fn global() -> &'static FsyncPool {
        static POOL: OnceLock<FsyncPool> = OnceLock::new();
        POOL.get_or_init(|| FsyncPool::new(THREADS))
    }

    /// Queues `file` for an fsync (`fsync(2)` via [`File::sync_all`]) and closes it after.
    /// Blocks while [`QUEUE`] files are already waiting.
    pub fn submit(&self, file: File) -> Pending {
        let Some(queue) = &self.queue else {
            return Pending(PendingState::Done(file.sync_all()));
        };
        let (reply, rx) = mpsc::channel();
        match queue.send((file, reply)) {
            Ok(()) => Pending(PendingState::Waiting(rx)),
            // Every thread is gone (cannot happen while the pool lives): fsync here.
            Err(mpsc::SendError((file, _))) => Pending(PendingState::Done(file.sync_all())),
        }
    }
}

impl Pending {
    /// Waits for the fsync of `msg`'s file and gives `msg` back, now durable and ready to be
    /// placed. When the fsync failed the temporary file is removed and the error names it
    /// ([`crate::core::error::Error::archive_io`]).
    pub fn synced(self, msg: StagedMessage) -> crate::core::error::Result<StagedMessage> {
        match self.wait() {
            Ok(()) => Ok(msg),
            Err(e) => {
                let err = crate::core::error::Error::archive_io(&msg.path, e);
                msg.discard();
                Err(err)
            }
        }
    }

    /// Drops `msg` (not to be placed): waits for its fsync, then removes its file.
    pub fn discard(self, msg: StagedMessage) {
        let _ = self.wait();
        msg.discard();
    }

    /// Waits for the fsync; its error as `fsync(2)` returned it (`EIO`, `ENOSPC`, `EDQUOT`).
    pub fn wait(self) -> io::Result<()> {
        match self.0 {
            PendingState::Done(r) => r,
            PendingState::Waiting(rx) => rx.recv().unwrap_or_else(|_| {
                Err(io::Error::other(
                    "the fsync thread stopped before syncing the file",
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_submitted_file_is_synced_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FsyncPool::new(3);
        let mut pending = Vec::new();
        // More files than the queue holds: submit blocks and resumes, nothing is lost.
        for i in 0..(QUEUE * 2 + 5) {
            let mut f = File::create(dir.path().join(i.to_string())).unwrap();
            f.write_all(format!("message {i}\n").as_bytes()).unwrap();
            pending.push(pool.submit(f));
        }
        assert_eq!(pending.len(), QUEUE * 2 + 5);
        for p in pending {
            p.wait().unwrap();
        }
        for i in 0..(QUEUE * 2 + 5) {
            let got = std::fs::read_to_string(dir.path().join(i.to_string())).unwrap();
            assert_eq!(got, format!("message {i}\n"));
        }
    }

    #[test]
    fn an_fsync_error_reaches_the_waiter() {
        // fsync of a read-only descriptor of a regular file succeeds on Linux; a pipe's fails
        // with EINVAL, which is the error the waiter must see.
        let (r, _w) = nix_pipe();
        let got = FsyncPool::new(1).submit(r).wait().unwrap_err();
        assert_eq!(got.raw_os_error(), Some(libc::EINVAL));
    }

    fn nix_pipe() -> (File, File) {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }
}
