//! Backpressure between the asking thread and the scoring thread: a count
//! of the answer bytes handed over and not yet journaled. A model faster
//! than its scorer (a replayed transcript) waits once the count passes a
//! limit, so the answers of a whole run never queue in memory, while a
//! replayed teacher's answers still queue far enough ahead for the first
//! student to run while they are scored.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::model::{Completion, ModelError};

/// Answer bytes that may wait for the scoring thread.
pub const MAX_BYTES: usize = 16 << 20;

/// The answer bytes in flight, and whether the scoring thread has stopped.
#[derive(Debug)]
pub struct InFlight {
    state: Mutex<State>,
    changed: Condvar,
    limit: usize,
}

#[derive(Debug, Default)]
struct State {
    bytes: usize,
    closed: bool,
}

impl InFlight {
    /// Nothing in flight; at most `limit` bytes may be (one batch always may).
    pub fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves two counters consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `bytes` more fit (or nothing is in flight) and counts
    /// them. False when the scoring thread has stopped: nothing will free
    /// room, and the caller should stop asking.
    pub fn acquire(&self, bytes: usize) -> bool {
        let mut state = self.lock();
        while !state.closed && state.bytes > 0 && state.bytes + bytes > self.limit {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.closed {
            return false;
        }
        state.bytes += bytes;
        true
    }

    /// The scoring thread is done with `bytes`.
    pub fn release(&self, bytes: usize) {
        let mut state = self.lock();
        state.bytes = state.bytes.saturating_sub(bytes);
        self.changed.notify_all();
    }

    /// A guard for the scoring thread: when it drops (the thread ends, by
    /// returning, by an error or by a panic), waiting askers are woken and
    /// told to stop.
    pub fn closer(&self) -> Closer<'_> {
        Closer(self)
    }
}

/// See [`InFlight::closer`].
#[derive(Debug)]
pub struct Closer<'a>(&'a InFlight);

impl Drop for Closer<'_> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.changed.notify_all();
    }
}

/// What a batch of answers weighs while it waits: the answers themselves
/// and their text.
pub fn answer_bytes(answers: &[Result<Completion, ModelError>]) -> usize {
    answers
        .iter()
        .map(|a| {
            std::mem::size_of_val(a)
                + match a {
                    Ok(c) => c.text.len(),
                    Err(e) => e.to_string().len(),
                }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn an_asker_waits_for_room_and_one_batch_always_fits() {
        let f = InFlight::new(100);
        assert!(
            f.acquire(1_000),
            "a batch over the limit goes when nothing waits"
        );
        f.release(1_000);
        assert!(f.acquire(60));
        let f = Arc::new(f);
        let sent = Arc::new(AtomicUsize::new(0));
        let asker = {
            let (f, sent) = (Arc::clone(&f), Arc::clone(&sent));
            std::thread::spawn(move || {
                let ok = f.acquire(60);
                sent.store(1, Ordering::SeqCst);
                ok
            })
        };
        // The asker cannot go on until the scorer frees the first 60 bytes.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(sent.load(Ordering::SeqCst), 0);
        f.release(60);
        assert!(asker.join().unwrap());
        assert_eq!(sent.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_stopped_scorer_releases_a_waiting_asker() {
        let f = Arc::new(InFlight::new(10));
        assert!(f.acquire(10));
        let asker = {
            let f = Arc::clone(&f);
            std::thread::spawn(move || f.acquire(10))
        };
        drop(f.closer());
        assert!(!asker.join().unwrap(), "told to stop, not left waiting");
        assert!(!f.acquire(1));
    }
}
