//! Wakers that belong to callers but run, and die, on other callers' threads.
//!
//! tokio's channels and locks (`watch`, `Mutex`, `oneshot`, `Notify`) run the wakers queued
//! on them on whichever thread sends or releases, and a waker that panics there ends their
//! wake-up loop: the wakers queued after it are dropped unwoken (a lock's next owner is never
//! told, a follower waits for good on a value that moved). The log hands them a
//! [`ShieldedWaker`] instead of the caller's: see [`Shield`] and [`shielded`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

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

/// The waker to hand a queue that runs wakers on other threads in place of the caller's:
/// the caller's own, kept as a [`CallerWaker`]. Made again only when the caller's waker
/// changes.
#[derive(Debug)]
pub struct ShieldedWaker {
    whose: &'static str,
    /// The caller's waker it was made for, and the shielded one.
    made: Option<(Waker, Waker)>,
}

impl ShieldedWaker {
    /// None yet; `whose` names the caller in the log line of a panic ("a subscriber's").
    pub fn new(whose: &'static str) -> Self {
        ShieldedWaker { whose, made: None }
    }

    /// The shielded waker for `caller`.
    pub fn for_caller(&mut self, caller: &Waker) -> &Waker {
        if self
            .made
            .as_ref()
            .is_some_and(|(last, _)| !last.will_wake(caller))
        {
            self.made = None;
        }
        let whose = self.whose;
        let (_, shielded) = self.made.get_or_insert_with(|| {
            let kept = CallerWaker::new(caller.clone(), whose);
            (caller.clone(), Waker::from(Arc::new(Contained(kept))))
        });
        shielded
    }
}

struct Contained(CallerWaker);

impl Wake for Contained {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake_by_ref();
    }
}

/// A future polled with a [`ShieldedWaker`]: whatever it waits on (a tokio lock, channel or
/// notification) queues the shielded waker, never the caller's. See [`shielded`].
pub struct Shield<F> {
    future: Pin<Box<F>>,
    waker: ShieldedWaker,
}

/// `future`, polled with its caller's waker shielded (`whose` names the caller in the log
/// line of a panic).
pub fn shielded<F: Future>(future: F, whose: &'static str) -> Shield<F> {
    Shield {
        future: Box::pin(future),
        waker: ShieldedWaker::new(whose),
    }
}

impl<F: Future> Future for Shield<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let waker = this.waker.for_caller(cx.waker());
        this.future.as_mut().poll(&mut Context::from_waker(waker))
    }
}

impl<F> std::fmt::Debug for Shield<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shield").finish_non_exhaustive()
    }
}

/// Follows a log's durable watermark ([`crate::SegmentLog::durable_watch`]): tokio's
/// `watch` receiver, whose waits queue a shielded waker, never the caller's, so that one
/// follower's panicking waker neither fails the round that notifies nor strands the
/// followers queued after it (review 57).
#[derive(Debug, Clone)]
pub struct DurableWatch {
    receiver: tokio::sync::watch::Receiver<u64>,
}

impl DurableWatch {
    pub(crate) fn new(receiver: tokio::sync::watch::Receiver<u64>) -> Self {
        DurableWatch { receiver }
    }

    /// The watermark now (the last LSN known durable).
    pub fn current(&self) -> u64 {
        *self.receiver.borrow()
    }

    /// The watermark now, marked seen: [`Self::changed`] waits for the next change.
    pub fn borrow_and_update(&mut self) -> u64 {
        *self.receiver.borrow_and_update()
    }

    /// Waits until the watermark changes after it was last seen, or the log changes state
    /// (poisoned, closed).
    ///
    /// # Errors
    /// When the log is gone (its writer dropped).
    pub async fn changed(&mut self) -> Result<(), tokio::sync::watch::error::RecvError> {
        shielded(self.receiver.changed(), "a durable-watermark follower's").await
    }
}

/// Runs `run` (a caller's waker being `what`), keeping a panic in it here.
pub(crate) fn contain(whose: &str, what: &str, run: impl FnOnce()) {
    if let Err(payload) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| calling_back(run)))
    {
        tracing::error!("{whose} waker panicked when {what}; its task may never run again");
        // The payload is the caller's too: its drop may panic as well (review 58). Dropped
        // under a catch; a payload of that one is leaked rather than dropped.
        if let Err(again) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)))
        {
            std::mem::forget(again);
        }
    }
}

std::thread_local! {
    /// How deep this thread is in caller code that the log runs (`calling_back`).
    static CALLBACK_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs caller code that the log calls back on whatever thread it is working on (a waker, a
/// seal listener), marking the thread as inside it for [`inside_callback`].
pub(crate) fn calling_back<R>(run: impl FnOnce() -> R) -> R {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            CALLBACK_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    CALLBACK_DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    let _depth = Depth;
    run()
}

/// True while this thread runs caller code that the log called back (a waker, a seal
/// listener). Such code may run inside a commit round that a close waits for, so a close
/// from there cannot wait for anything: it is refused (review 144).
pub fn inside_callback() -> bool {
    CALLBACK_DEPTH.with(|d| d.get() > 0)
}
