//! A process-wide bound on concurrent sandboxes (one slot per core), and
//! the uids sandboxed programs run as.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

/// First uid (and gid) given to sandboxed programs when the harness runs as
/// root: an id far above the ranges distributions hand out, so no file on
/// the system belongs to it.
const UID_BASE: u32 = 2_000_000_000;
/// Runs of one harness process before its uids repeat.
const UIDS_PER_PROCESS: u32 = 100_000;

/// A fresh uid (and gid) for one run. Every run gets its own, so the
/// harness can find and kill every process a run left behind by uid, and
/// killed processes of an earlier run that are not reaped yet (zombies
/// still count towards `RLIMIT_NPROC`) cannot starve a later run. The
/// range depends on the harness's pid, so two harness processes running at
/// once (almost always) use different uids.
pub(crate) fn fresh_uid() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % UIDS_PER_PROCESS;
    UID_BASE + (std::process::id() % 1000) * UIDS_PER_PROCESS + n
}

/// How many sandboxes may run at once (one per core).
pub(crate) fn count() -> usize {
    slots()
        .busy
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}

struct Slots {
    busy: Mutex<Vec<bool>>,
    freed: Condvar,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Slots {
            busy: Mutex::new(vec![false; n]),
            freed: Condvar::new(),
        }
    })
}

/// A held slot; released when dropped.
pub(crate) struct Slot {
    index: usize,
}

impl Slot {
    /// Waits until a slot is free and takes it.
    pub(crate) fn acquire() -> Slot {
        let slots = slots();
        let mut busy = slots.busy.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(index) = busy.iter().position(|b| !*b) {
                if let Some(flag) = busy.get_mut(index) {
                    *flag = true;
                }
                return Slot { index };
            }
            busy = slots
                .freed
                .wait(busy)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The slot's index, `0..cores`.
    #[cfg(test)]
    fn index(&self) -> usize {
        self.index
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let slots = slots();
        let mut busy = slots.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flag) = busy.get_mut(self.index) {
            *flag = false;
        }
        slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn never_more_holders_than_slots() {
        let cores = slots().busy.lock().map(|b| b.len()).unwrap_or(1);
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..cores * 3)
            .map(|_| {
                let now = Arc::clone(&now);
                let peak = Arc::clone(&peak);
                std::thread::spawn(move || {
                    let slot = Slot::acquire();
                    assert!(slot.index() < cores);
                    let held = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(held, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert!(peak.load(Ordering::SeqCst) <= cores);
        assert!(peak.load(Ordering::SeqCst) >= 1);
        let (a, b) = (fresh_uid(), fresh_uid());
        assert!(a >= UID_BASE && b >= UID_BASE && a != b);
    }
}
