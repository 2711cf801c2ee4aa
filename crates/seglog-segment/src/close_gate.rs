//! One close at a time, and a second close that waits for the first (review 143).
//!
//! A close promises that what was submitted before it is durable (or failed) when it
//! returns, and that the directory lock is given up only after the last write. A second
//! close that found the log already closing and returned at once kept neither promise: its
//! caller saw Ok before the drain, and at the segment layer it released the lock while the
//! first close still wrote, so another writer could open the log and append at the same
//! LSNs. So the first caller closes, and every later one waits for it and reports its
//! outcome.
//!
//! Two callers cannot wait: the closing thread itself (a seal listener or a waker that the
//! close runs calls close again) and a thread the first close waits for (a compaction's
//! progress callback, while the close waits for that compaction). They are told
//! [`CloseTurn::Busy`] at once, and must not report success: nothing is known yet.

use parking_lot::{Condvar, Mutex};
use std::thread::ThreadId;

enum State<T> {
    Open,
    /// By this thread; `None`: claimed for a close that another thread will run
    /// ([`CloseGate::claim`]).
    Closing(Option<ThreadId>),
    /// `None`: the first close ended without an outcome (it panicked).
    Closed(Option<T>),
}

/// Serializes closes; `T` is what a close reports to the calls that waited for it.
pub struct CloseGate<T> {
    state: Mutex<State<T>>,
    done: Condvar,
    /// True once a close ended: for async callers, who wait without holding a thread.
    ended: tokio::sync::watch::Sender<bool>,
}

/// What [`CloseGate::enter`] tells a caller.
pub enum CloseTurn<'a, T: Clone> {
    /// This caller closes, then hands its outcome to [`FirstClose::finish`].
    First(FirstClose<'a, T>),
    /// An earlier close has ended, with this outcome (`None`: it panicked).
    Done(Option<T>),
    /// A close is running that this caller cannot wait for (see the module documentation).
    Busy,
}

/// The running close's hold on the gate. Dropped without [`Self::finish`] (a panic), the
/// gate is closed without an outcome, so no waiter waits forever.
pub struct FirstClose<'a, T> {
    gate: &'a CloseGate<T>,
    finished: bool,
}

impl<T: Clone> Default for CloseGate<T> {
    fn default() -> Self {
        CloseGate {
            state: Mutex::new(State::Open),
            done: Condvar::new(),
            ended: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl<T: Clone> CloseGate<T> {
    /// Takes this caller's turn. A caller for whom `may_wait` is false is told
    /// [`CloseTurn::Busy`] rather than waiting for a running close; so is the closing thread.
    pub fn enter(&self, may_wait: bool) -> CloseTurn<'_, T> {
        let me = std::thread::current().id();
        let mut state = self.state.lock();
        loop {
            match &*state {
                State::Open => {
                    *state = State::Closing(Some(me));
                    return CloseTurn::First(FirstClose {
                        gate: self,
                        finished: false,
                    });
                }
                State::Closed(outcome) => return CloseTurn::Done(outcome.clone()),
                State::Closing(closer) if *closer == Some(me) || !may_wait => {
                    return CloseTurn::Busy
                }
                State::Closing(_) => self.done.wait(&mut state),
            }
        }
    }

    /// Claims the close for a thread that will run it later (an async close, on a thread of
    /// its own): true when no close had begun. The runner then calls [`Self::run_claimed`], or
    /// [`Self::release_claim`] if it never runs. Claimed at once, so that a second async close
    /// waits without a thread of its own (review 145: waiting on a blocking pool's thread, it
    /// starved the round the first close waited for).
    pub fn claim(&self) -> bool {
        let mut state = self.state.lock();
        if matches!(*state, State::Open) {
            *state = State::Closing(None);
            return true;
        }
        false
    }

    /// The running close's hold, for the thread that runs a close claimed by [`Self::claim`].
    pub fn run_claimed(&self) -> FirstClose<'_, T> {
        *self.state.lock() = State::Closing(Some(std::thread::current().id()));
        FirstClose {
            gate: self,
            finished: false,
        }
    }

    /// Gives back a claim whose close never ran: the gate is open again.
    pub fn release_claim(&self) {
        let mut state = self.state.lock();
        if matches!(*state, State::Closing(None)) {
            *state = State::Open;
            self.done.notify_all();
        }
    }

    /// Waits, without blocking a thread, until a close has ended.
    pub async fn ended(&self) {
        let mut ended = self.ended.subscribe();
        // The sender lives as long as the gate, which outlives this borrow.
        let _ = ended.wait_for(|ended| *ended).await;
    }
}

impl<T> FirstClose<'_, T> {
    /// Records the close's outcome and wakes the calls waiting for it.
    pub fn finish(mut self, outcome: T) {
        self.end(Some(outcome));
    }

    fn end(&mut self, outcome: Option<T>) {
        self.finished = true;
        *self.gate.state.lock() = State::Closed(outcome);
        self.gate.done.notify_all();
        self.gate.ended.send_replace(true);
    }
}

impl<T> Drop for FirstClose<'_, T> {
    fn drop(&mut self) {
        if !self.finished {
            self.end(None);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_second_caller_waits_for_the_first_and_gets_its_outcome() {
        let gate = Arc::new(CloseGate::<u32>::default());
        let CloseTurn::First(first) = gate.enter(true) else {
            panic!("the first caller must close");
        };
        let second = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || match gate.enter(true) {
                CloseTurn::Done(outcome) => outcome,
                _ => panic!("the second caller must wait"),
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !second.is_finished(),
            "the second caller returned before the first close"
        );
        first.finish(7);
        assert_eq!(second.join().unwrap(), Some(7));
        assert!(matches!(gate.enter(true), CloseTurn::Done(Some(7))));
    }

    #[test]
    fn the_closing_thread_and_callers_that_cannot_wait_are_told_busy() {
        let gate = Arc::new(CloseGate::<()>::default());
        let CloseTurn::First(first) = gate.enter(true) else {
            panic!("the first caller must close");
        };
        assert!(matches!(gate.enter(true), CloseTurn::Busy));
        let other = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || matches!(gate.enter(false), CloseTurn::Busy))
        };
        assert!(other.join().unwrap());
        first.finish(());
        assert!(matches!(gate.enter(false), CloseTurn::Done(Some(()))));
    }

    #[test]
    fn a_claimed_close_makes_others_wait_and_a_released_claim_opens_the_gate() {
        let gate = Arc::new(CloseGate::<u32>::default());
        assert!(gate.claim());
        assert!(!gate.claim(), "one claim at a time");
        assert!(matches!(gate.enter(false), CloseTurn::Busy));
        gate.release_claim();
        assert!(gate.claim(), "a released claim opens the gate again");
        let waiter = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || match gate.enter(true) {
                CloseTurn::Done(outcome) => outcome,
                _ => panic!("the waiter must wait for the claimed close"),
            })
        };
        let runner = gate.run_claimed();
        runner.finish(3);
        assert_eq!(waiter.join().unwrap(), Some(3));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(gate.ended());
    }

    #[test]
    fn a_close_that_panics_releases_its_waiters_without_an_outcome() {
        let gate = Arc::new(CloseGate::<u32>::default());
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let closer = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                let _turn = gate.enter(true);
                entered_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                panic!("a close that panics");
            })
        };
        entered_rx.recv().unwrap();
        let waited = gate.enter(true);
        assert!(closer.join().is_err());
        assert!(matches!(waited, CloseTurn::Done(None)));
    }
}
