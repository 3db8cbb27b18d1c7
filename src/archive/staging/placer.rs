//! Placing fetched messages on a second thread while the connection reads on (issue 8).
//!
//! The connection's thread writes each message into `tmp/`, hands the open file to the
//! [`crate::archive::staging::fsync_pool::FsyncPool`] and the message to the placer with [`Handoff::send`], and
//! reads the next one. The placer takes the messages in the order they were handed over,
//! waits for each one's fsync and places it (rename into `cur/`, append to an mbox) with the
//! engine's `place` function. So a message is placed a moment after it arrived, even while the
//! server stalls on the next one (case 26: a run killed then keeps every message it had
//! received), and never before its file is durable (DESIGN.md invariant 1). The engine then
//! fsyncs the directories and records the batch, as before.
//!
//! After the first error of `place` the placer discards what is still handed to it (the
//! temporary files are removed; the next run fetches those messages again) and
//! [`Handoff::send`] returns `false`, so the connection stops fetching.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Mutex;

use crate::archive::staging::fsync_pool::{Pending, QUEUE};

/// The connection's side: hands written messages to the placer.
pub struct Handoff<'a, T, P, D, E> {
    /// `None` when no placer thread could be started: messages are placed in `send`.
    tx: Option<SyncSender<(T, Pending)>>,
    state: &'a Mutex<State<P, D, E>>,
    failed: &'a AtomicBool,
}

struct State<P, D, E> {
    place: P,
    discard: D,
    error: Option<E>,
}

impl<P, D, E> State<P, D, E> {
    fn step<T>(&mut self, item: T, fsync: Pending, failed: &AtomicBool)
    where
        P: FnMut(T, Pending) -> Result<(), E>,
        D: FnMut(T, Pending),
    {
        if self.error.is_some() {
            (self.discard)(item, fsync);
        } else if let Err(e) = (self.place)(item, fsync) {
            self.error = Some(e);
            failed.store(true, Ordering::SeqCst);
        }
    }
}

impl<T, P, D, E> Handoff<'_, T, P, D, E>
where
    P: FnMut(T, Pending) -> Result<(), E>,
    D: FnMut(T, Pending),
{
    /// Hands over one written message and its pending fsync. Blocks while
    /// [`QUEUE`] messages wait for the placer. Returns `false` when placing has stopped on
    /// an error (this message is then discarded): the caller should stop fetching.
    pub fn send(&self, item: T, fsync: Pending) -> bool {
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError((item, fsync))) = tx.send((item, fsync)) {
                    // The placer is gone (it panicked; the panic is raised after the fetch).
                    let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    (st.discard)(item, fsync);
                    return false;
                }
            }
            None => {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                st.step(item, fsync, self.failed);
            }
        }
        !self.failed.load(Ordering::SeqCst)
    }
}

/// Runs `fetch` on this thread while a second thread places what it hands over with
/// `place` (in hand-over order; `discard` for those handed over after `place` failed).
/// Returns `fetch`'s result and the first error of `place`, once every handed message is
/// placed or discarded. When no thread can be started, messages are placed in
/// [`Handoff::send`] instead. A panic in `place` is raised again here.
pub fn fetch_while_placing<T, R, E, F, P, D>(fetch: F, place: P, discard: D) -> (R, Option<E>)
where
    T: Send,
    E: Send,
    F: FnOnce(&Handoff<'_, T, P, D, E>) -> R,
    P: FnMut(T, Pending) -> Result<(), E> + Send,
    D: FnMut(T, Pending) + Send,
{
    let failed = AtomicBool::new(false);
    let state = Mutex::new(State {
        place,
        discard,
        error: None,
    });
    let (tx, rx) = mpsc::sync_channel::<(T, Pending)>(QUEUE);
    let (state_ref, failed_ref) = (&state, &failed);
    let r = std::thread::scope(|s| {
        let placer = std::thread::Builder::new()
            .name("placer".into())
            .spawn_scoped(s, move || {
                for (item, fsync) in rx {
                    let mut st = state_ref.lock().unwrap_or_else(|p| p.into_inner());
                    st.step(item, fsync, failed_ref);
                }
            })
            .ok();
        let handoff = Handoff {
            tx: placer.is_some().then_some(tx),
            state: state_ref,
            failed: failed_ref,
        };
        let r = fetch(&handoff);
        drop(handoff);
        if let Some(p) = placer {
            if let Err(panic) = p.join() {
                std::panic::resume_unwind(panic);
            }
        }
        r
    });
    let error = state.into_inner().unwrap_or_else(|p| p.into_inner()).error;
    (r, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::staging::fsync_pool::FsyncPool;
    use std::fs::File;

    fn file(dir: &std::path::Path, i: usize) -> File {
        File::create(dir.join(i.to_string())).unwrap()
    }

    #[test]
    fn everything_handed_over_is_placed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FsyncPool::new(4);
        let mut placed = Vec::new();
        let (sent, err) = fetch_while_placing(
            |h| {
                (0..300)
                    .filter(|&i| h.send(i, pool.submit(file(dir.path(), i))))
                    .count()
            },
            |i: usize, fsync: Pending| -> Result<(), String> {
                fsync.wait().map_err(|e| e.to_string())?;
                placed.push(i);
                Ok(())
            },
            |_, _| panic!("nothing is discarded"),
        );
        assert!(err.is_none());
        assert_eq!(sent, 300);
        assert_eq!(placed, (0..300).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_stops_placing_and_the_rest_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FsyncPool::new(2);
        let mut placed = Vec::new();
        let mut discarded = Vec::new();
        let (handed, err) = fetch_while_placing(
            |h| {
                let mut handed = 0;
                for i in 0..1000 {
                    handed += 1;
                    if !h.send(i, pool.submit(file(dir.path(), i))) {
                        break;
                    }
                }
                handed
            },
            |i: usize, fsync: Pending| -> Result<(), String> {
                fsync.wait().unwrap();
                if i == 7 {
                    return Err(format!("disk full at {i}"));
                }
                placed.push(i);
                Ok(())
            },
            |i, fsync| {
                fsync.wait().unwrap();
                discarded.push(i);
            },
        );
        assert_eq!(err.as_deref(), Some("disk full at 7"));
        assert_eq!(placed, (0..7).collect::<Vec<_>>());
        // The fetch stopped soon after the error (at most a queue's worth later), and every
        // message handed over after the failed one was discarded, in order.
        assert!(handed < 7 + QUEUE + 3, "{handed}");
        assert_eq!(discarded, (8..handed).collect::<Vec<_>>());
    }

    #[test]
    fn a_message_is_placed_while_the_fetch_is_still_running() {
        // Case 26: the server stalls after a message; that message must reach the archive
        // during the stall, not when the fetch ends.
        let dir = tempfile::tempdir().unwrap();
        let pool = FsyncPool::new(1);
        let placed = std::sync::atomic::AtomicUsize::new(0);
        let ((), err) = fetch_while_placing(
            |h| {
                assert!(h.send(1usize, pool.submit(file(dir.path(), 1))));
                let start = std::time::Instant::now();
                while placed.load(Ordering::SeqCst) == 0 {
                    assert!(
                        start.elapsed() < std::time::Duration::from_secs(20),
                        "not placed during the stall"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            },
            |_: usize, fsync: Pending| -> Result<(), String> {
                fsync.wait().unwrap();
                placed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
            |_, _| {},
        );
        assert!(err.is_none());
        assert_eq!(placed.load(Ordering::SeqCst), 1);
    }
}
