//! Where blocked appenders sleep: one bell, rung for many at once.
//!
//! A group commit acknowledges tens of blocked threads at the end of each round. Waking them
//! one `unpark` (one `futex` system call) each cost more CPU than the appends themselves did
//! on a 2-vCPU VM; one wake-up call for the whole group costs about half as much per thread
//! (the wake-up floor of `seglog-bench` measures both). So blocked waiters do not park: they
//! sleep on one shared word with a *mask*, and a round wakes every thread whose mask meets
//! the bits it rings, in one call (Linux's `FUTEX_WAIT_BITSET`/`FUTEX_WAKE_BITSET`).
//!
//! A waiter's mask has two bits: its *bucket*, the commit round expected to acknowledge it
//! (rounds in flight at once get different buckets, so a round's ring wakes its own group
//! and few others), and its thread's *slot*, which lets a single waiter be asked to lead
//! without waking its whole group. A ring that reaches a thread it does not concern is only a
//! spurious wake-up: the thread looks at its state and sleeps again. Correctness never rests
//! on the buckets, only on this: whoever changes a waiter's state rings one of its bits
//! afterwards.
//!
//! The word counts rings. A waiter reads it *before* it looks at its state and sleeps only
//! while it still holds that value, so a ring between the look and the sleep is never lost.
//! Elsewhere than Linux (and under loom) the bell is a mutex and a condition variable with
//! the same contract, ringing everyone.
//!
//! A wait may carry a [`Deadline`]: the root future of a `block_on` sleeps here like a thread,
//! but only for a while (see `waiters`).

/// Bits of a mask that name a bucket; the rest name slots.
const BUCKETS: u32 = 4;
const SLOTS: u32 = 32 - BUCKETS;

/// Which waiters a ring concerns: a union of bucket and slot bits. Never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mask(std::num::NonZeroU32);

impl Mask {
    /// The bit of the bucket for commit round number `round` (rounds are numbered as they take
    /// their records).
    pub(crate) fn bucket(round: u64) -> Mask {
        Mask::bit((round % u64::from(BUCKETS)) as u32)
    }

    /// The bit of the calling thread's slot (slots are handed out to threads in turn, at
    /// their first wait).
    pub(crate) fn slot_of_this_thread() -> Mask {
        Mask::bit(BUCKETS + this_thread_slot() % SLOTS)
    }

    fn bit(n: u32) -> Mask {
        Mask(std::num::NonZeroU32::new(1 << (n % 32)).unwrap_or(std::num::NonZeroU32::MIN))
    }

    /// Both masks' bits.
    pub(crate) fn or(self, other: Mask) -> Mask {
        Mask(self.0 | other.0)
    }

    /// Only the bucket bits of this mask.
    pub(crate) fn bucket_bits(self) -> Option<Mask> {
        std::num::NonZeroU32::new(self.0.get() & ((1 << BUCKETS) - 1)).map(Mask)
    }

    /// Only the slot bits of this mask.
    pub(crate) fn slot_bits(self) -> Option<Mask> {
        std::num::NonZeroU32::new(self.0.get() & !((1 << BUCKETS) - 1)).map(Mask)
    }
}

/// This thread's slot: threads take slots in turn, so a few dozen writer threads spread over
/// them evenly.
fn this_thread_slot() -> u32 {
    #[cfg(not(seglog_loom))]
    {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        thread_local! {
            static SLOT: u32 = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        SLOT.with(|slot| *slot)
    }
    // loom runs its threads on one OS thread: one slot for all (only more spurious wake-ups).
    #[cfg(seglog_loom)]
    {
        0
    }
}

pub(crate) use imp::{Bell, Deadline};

#[cfg(all(target_os = "linux", not(seglog_loom)))]
mod imp {
    use super::Mask;
    use rustix::thread::futex;
    use rustix::time::{clock_gettime, ClockId, Timespec};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// When a timed wait gives up: a time on the monotonic clock, which is what
    /// `FUTEX_WAIT_BITSET` measures its (absolute) timeout against.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Deadline(Option<Timespec>);

    impl Deadline {
        /// `after` from now.
        pub(crate) fn after(after: Duration) -> Deadline {
            let now = clock_gettime(ClockId::Monotonic);
            // An unrepresentable deadline (it would take centuries) is no deadline.
            Deadline(
                Timespec::try_from(after)
                    .ok()
                    .and_then(|after| now.checked_add(after)),
            )
        }
    }

    /// The shared word; see the module's documentation.
    #[derive(Debug, Default)]
    pub(crate) struct Bell {
        rings: AtomicU32,
    }

    impl Bell {
        /// What to pass to [`Bell::wait`]: read before looking at the state waited on.
        pub(crate) fn seen(&self) -> u32 {
            self.rings.load(Ordering::Acquire)
        }

        /// Sleeps until a ring that meets `mask` after `seen` was read (returns at once if
        /// any ring came since), or spuriously. The caller looks at its state again.
        pub(crate) fn wait(&self, seen: u32, mask: Mask) {
            self.sleep(seen, mask, None);
        }

        /// Like [`Bell::wait`], giving up at `deadline`: false once it has passed (and the
        /// caller, still not rung, stops waiting).
        pub(crate) fn wait_until(&self, seen: u32, mask: Mask, deadline: &Deadline) -> bool {
            self.sleep(seen, mask, deadline.0.as_ref())
        }

        /// One sleep; false when `deadline` has passed.
        fn sleep(&self, seen: u32, mask: Mask, deadline: Option<&Timespec>) -> bool {
            match futex::wait_bitset(&self.rings, futex::Flags::PRIVATE, seen, deadline, mask.0) {
                Err(rustix::io::Errno::TIMEDOUT) => false,
                // Woken, rung since `seen` (EAGAIN), or interrupted (EINTR): look again.
                Ok(()) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => true,
                // Anything else means the call cannot sleep here: look again, without
                // taking the CPU from the threads that will change the state.
                Err(_) => {
                    std::thread::yield_now();
                    true
                }
            }
        }

        /// Wakes every thread asleep with a mask that meets `mask`. The states those threads
        /// wait on are changed first.
        pub(crate) fn ring(&self, mask: Mask) {
            self.rings.fetch_add(1, Ordering::Release);
            // A failed wake-up (there is no such error for a valid private word) would leave
            // sleepers behind; they would never be woken, so keep trying is not an option
            // either: fall back to waking everyone.
            if futex::wake_bitset(&self.rings, futex::Flags::PRIVATE, i32::MAX as u32, mask.0)
                .is_err()
            {
                let _ = futex::wake(&self.rings, futex::Flags::PRIVATE, i32::MAX as u32);
            }
        }
    }
}

#[cfg(any(not(target_os = "linux"), seglog_loom))]
mod imp {
    use super::Mask;
    #[cfg(seglog_loom)]
    use loom::sync::{Condvar, Mutex};
    #[cfg(not(seglog_loom))]
    use std::sync::{Condvar, Mutex};

    /// When a timed wait gives up.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Deadline(#[cfg(not(seglog_loom))] Option<std::time::Instant>);

    impl Deadline {
        /// `after` from now. (Under loom, whose condition variables never time out, a timed
        /// wait gives up at once unless it was rung: the model explores a deadline that passes
        /// at any point of the waiter's look.)
        pub(crate) fn after(_after: std::time::Duration) -> Deadline {
            #[cfg(not(seglog_loom))]
            {
                Deadline(std::time::Instant::now().checked_add(_after))
            }
            #[cfg(seglog_loom)]
            {
                Deadline()
            }
        }
    }

    /// The shared word behind a mutex; every ring wakes every sleeper.
    #[derive(Debug, Default)]
    pub(crate) struct Bell {
        rings: Mutex<u32>,
        rung: Condvar,
    }

    impl Bell {
        /// What to pass to [`Bell::wait`]: read before looking at the state waited on.
        pub(crate) fn seen(&self) -> u32 {
            *self.rings.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// Sleeps until any ring after `seen` was read.
        pub(crate) fn wait(&self, seen: u32, _mask: Mask) {
            let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
            while *rings == seen {
                rings = self.rung.wait(rings).unwrap_or_else(|p| p.into_inner());
            }
        }

        /// Like [`Bell::wait`], giving up at `deadline`: false once it has passed.
        pub(crate) fn wait_until(&self, seen: u32, _mask: Mask, _deadline: &Deadline) -> bool {
            let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
            if *rings != seen {
                return true;
            }
            #[cfg(seglog_loom)]
            {
                false
            }
            #[cfg(not(seglog_loom))]
            {
                let Some(at) = _deadline.0 else {
                    drop(self.rung.wait(rings));
                    return true;
                };
                let left = at.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return false;
                }
                drop(self.rung.wait_timeout(rings, left));
                true
            }
        }

        /// Wakes every sleeper.
        pub(crate) fn ring(&self, _mask: Mask) {
            let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
            *rings = rings.wrapping_add(1);
            self.rung.notify_all();
        }
    }
}

#[cfg(all(test, not(seglog_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn masks_keep_buckets_and_slots_apart() {
        let b = Mask::bucket(5);
        assert_eq!(b, Mask::bucket(5 + u64::from(BUCKETS)));
        assert_ne!(b, Mask::bucket(6));
        let s = Mask::slot_of_this_thread();
        assert_eq!(s.bucket_bits(), None);
        assert_eq!(b.slot_bits(), None);
        let both = b.or(s);
        assert_eq!(both.bucket_bits(), Some(b));
        assert_eq!(both.slot_bits(), Some(s));
    }

    #[test]
    fn threads_take_slots_in_turn() {
        let slots: std::collections::BTreeSet<u32> = (0..8)
            .map(|_| std::thread::spawn(|| Mask::slot_of_this_thread().0.get()))
            .map(|h| h.join().unwrap())
            .collect();
        assert_eq!(slots.len(), 8, "eight threads in a row share no slot");
    }

    /// A sleeper whose bucket is rung wakes; one rung for another bucket sleeps on (it only
    /// looks, once, when the word moves).
    #[test]
    fn a_ring_wakes_the_sleepers_it_names() {
        let bell = Arc::new(Bell::default());
        let done = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (bell, done) = (bell.clone(), done.clone());
            std::thread::spawn(move || {
                let mask = Mask::bucket(1).or(Mask::slot_of_this_thread());
                loop {
                    let seen = bell.seen();
                    if done.load(Ordering::Acquire) {
                        return;
                    }
                    bell.wait(seen, mask);
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        bell.ring(Mask::bucket(2));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!sleeper.is_finished());
        done.store(true, Ordering::Release);
        bell.ring(Mask::bucket(1));
        sleeper.join().unwrap();
    }

    /// A ring between the sleeper's look at its state and its sleep is not lost.
    #[test]
    fn a_ring_before_the_sleep_is_not_lost() {
        let bell = Bell::default();
        let seen = bell.seen();
        bell.ring(Mask::bucket(0));
        // Returns at once: the word moved since `seen`.
        bell.wait(seen, Mask::bucket(0));
    }
}
