//! Wakers that belong to callers but run, and die, on other callers' threads.

use std::task::Waker;

/// A caller's waker as the log keeps it. The log wakes it, and may drop its last reference,
/// on whatever thread acknowledges the caller: a round's leader, a relaying waiter, an
/// appender publishing to subscribers. Both are the caller's code. A panic in either stays
/// here, logged (that caller's task may never run again): unwound out of another caller's
/// thread it would fail that caller's append, or leave a leader's seat taken and the log
/// stranded (`tests/panicking_waker.rs`, `tests/review56_waker_drop.rs`).
pub struct CallerWaker {
    waker: Option<Waker>,
    whose: &'static str,
}

impl CallerWaker {
    /// Keeps `waker`; `whose` names it in the log line of a panic ("a subscriber's").
    pub fn new(waker: Waker, whose: &'static str) -> Self {
        CallerWaker {
            waker: Some(waker),
            whose,
        }
    }

    /// Wakes it, keeping it.
    pub fn wake_by_ref(&self) {
        if let Some(waker) = &self.waker {
            contain(self.whose, "woken", || waker.wake_by_ref());
        }
    }

    /// True when it wakes the same task as `other` ([`Waker::will_wake`]).
    pub fn will_wake(&self, other: &Waker) -> bool {
        self.waker.as_ref().is_some_and(|w| w.will_wake(other))
    }

    /// Keeps `other` instead, unless it wakes the same task.
    pub fn update(&mut self, other: &Waker) {
        if !self.will_wake(other) {
            *self = CallerWaker::new(other.clone(), self.whose);
        }
    }
}

impl Drop for CallerWaker {
    fn drop(&mut self) {
        if let Some(waker) = self.waker.take() {
            contain(self.whose, "dropped", || drop(waker));
        }
    }
}

impl std::fmt::Debug for CallerWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerWaker")
            .field("whose", &self.whose)
            .finish_non_exhaustive()
    }
}

/// Runs `run` (a caller's waker being `what`), keeping a panic in it here.
pub(crate) fn contain(whose: &str, what: &str, run: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
        tracing::error!("{whose} waker panicked when {what}; its task may never run again");
    }
}
