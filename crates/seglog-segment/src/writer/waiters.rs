//! Waiting for durability: the queue of waiters and how a round wakes them.
//!
//! Each waiter — a blocked thread or an async task — registers in the commit state's queue
//! with its LSN (kept in LSN order), and sleeps. When a round ends, the leader takes the
//! prefix of the queue its round made durable. Woken waiters read the atomic watermark and
//! return without retaking the commit lock.
//!
//! Blocked threads sleep on the writer's bell (`bell` module) with a mask naming the round
//! expected to acknowledge them: the leader wakes all the threads a round acknowledged with
//! one ring, one system call, and can still ask a single thread to lead.
//!
//! The root future of a `block_on` on a multi-threaded tokio runtime first sleeps on the bell
//! too, like a thread, inside `poll` — for a couple of milliseconds at most, then it leaves the
//! queue and registers its waker (see [`may_sleep_in_poll`]).
//!
//! Futures are woken through their wakers. A future polled by a thread of its own (the root
//! future of a `block_on`, or one polled outside tokio) relays: the leader wakes the first
//! of the group's root futures, and each woken one wakes two more (a binary heap over the
//! group) before it returns. Such a future runs when woken, like a thread, unless its own
//! code holds its thread up (or it is never polled again): so a group that relies on one is
//! swept at the group's next acknowledgement, and whenever a leader stops leading, waking
//! whoever was not woken yet. A stalled relay delays its group by one round at most, and
//! strands nobody. Spawned tasks never relay (their runtime polls them when it likes): the
//! leader wakes them itself (a waker call, no system call on a busy runtime).
//!
//! A waiter is `WAITING` (in the queue), `WOKEN` (taken out: durable or poisoned, look again)
//! or `LEAD` (taken out: records are queued and nobody leads, try to lead). States change only
//! under the commit lock, and a waiter leaves the queue only by such a change — or, for an
//! async waiter whose future is dropped, by removing itself, which then passes on what it was
//! handed: its group's wake-ups, or the chance to lead.

use super::bell::{Bell, Deadline, Mask};
use super::group_commit::CommitState;
use super::Inner;
use crate::io::FileSystem;
use crate::CallerWaker;
use crate::Result;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) const WAITING: u8 = 0;
pub(crate) const WOKEN: u8 = 1;
pub(crate) const LEAD: u8 = 2;

/// The root futures one round acknowledged, in LSN order, woken through each other.
pub(crate) type AckedGroup = Arc<[Arc<Waiter>]>;

/// How to wake a waiter.
enum Wake {
    /// A blocked thread, asleep on the writer's bell with this mask: the bucket of the round
    /// expected to acknowledge it, and its thread's slot.
    Thread(Arc<Bell>, Mask),
    /// A spawned async task: its latest waker.
    Task(crate::sync::Mutex<CallerWaker>),
    /// A future polled by a thread of its own ([`may_lead_in_place`]): its latest waker. It
    /// relays its group's wake-ups, under the sweep (see the module's documentation).
    Root(crate::sync::Mutex<CallerWaker>),
}

/// A waiter, asleep until its LSN is durable or it is asked to lead.
pub(crate) struct Waiter {
    pub(super) lsn: u64,
    wake: Wake,
    /// `WAITING`, `WOKEN` or `LEAD` (see the module's documentation).
    pub(super) state: crate::sync::AtomicU8,
    /// Set before `state` turns `WOKEN` when a root future was acknowledged with others: the
    /// whole acknowledged group and this waiter's place in it. The waiter wakes its two
    /// children in that group (a binary heap) before it returns; see [`wake_children`].
    pub(super) fan_out: crate::sync::Mutex<Option<(AckedGroup, usize)>>,
    /// 1 once it has been woken for its acknowledgement (by its parent, the leader or a
    /// sweep): a sweep wakes only the others, so it costs nothing when the relays ran.
    acknowledged_wake: crate::sync::AtomicU8,
}

impl Waiter {
    fn new(lsn: u64, wake: Wake) -> Arc<Self> {
        Arc::new(Waiter {
            lsn,
            wake,
            state: crate::sync::AtomicU8::new(WAITING),
            fan_out: crate::sync::Mutex::new(None),
            acknowledged_wake: crate::sync::AtomicU8::new(0),
        })
    }

    /// Wakes an acknowledged waiter, unless somebody already did.
    fn wake_acknowledged(&self) {
        if self.acknowledged_wake.swap(1, Ordering::AcqRel) == 0 {
            self.wake();
        }
    }

    /// True when it relays wake-ups only if its own code lets it (see [`Wake::Root`]).
    fn relays_at_will(&self) -> bool {
        matches!(self.wake, Wake::Root(_))
    }

    /// Wakes the waiter (its state was set first). This may run on another caller's thread
    /// (a leader, a relay), and so may the drop of the waiter's last reference: an async
    /// waiter's waker is kept as a [`CallerWaker`], whose panics stay where they happen.
    pub(super) fn wake(&self) {
        match &self.wake {
            Wake::Thread(bell, mask) => bell.ring(*mask),
            Wake::Task(waker) | Wake::Root(waker) => waker.lock().wake_by_ref(),
        }
    }
}

/// Whom the end of a round wakes, gathered under the commit lock and woken after it.
///
/// Blocked threads are woken by one ring of the bell. Root futures pass wake-ups on (the
/// heap fan-out; see the module's documentation). A spawned task runs only when its runtime
/// polls it, which its owner may put off for as long as it likes, so a task is never
/// anybody's parent in the heap: the leader wakes tasks itself. Only a blocked thread is ever
/// asked alone to lead (a root future's own code could hold the round up); when none waits,
/// every waiter is asked.
#[derive(Default)]
pub(super) struct Wakeups {
    /// The blocked threads acknowledged or asked to lead: one ring of these bits.
    ring: Option<(Arc<Bell>, Mask)>,
    /// Futures asked to lead, woken first so that the next round starts as early as possible.
    leaders: Vec<Arc<Waiter>>,
    /// Acknowledged root futures, woken through each other (see [`Waiter::fan_out`]).
    relays: Option<AckedGroup>,
    /// Acknowledged spawned tasks, woken one by one.
    tasks: Vec<Arc<Waiter>>,
    /// Earlier groups that relied on a root future: whoever in them is not woken yet.
    sweep: Vec<AckedGroup>,
}

impl Wakeups {
    /// Takes the first `done` waiters out of the queue and marks them woken. The commit lock
    /// is held (`st`), and the watermark that acknowledges them is already stored.
    ///
    /// The group before it that relied on a root future is swept now (a round later), and
    /// this one, if it does, is left to the next acknowledgement or to [`Self::end_relays`].
    pub(super) fn acknowledge(st: &mut CommitState, done: usize) -> Self {
        let mut ring = None;
        let mut relays = Vec::new();
        let mut tasks = Vec::new();
        for w in st.waiters.drain(..done) {
            match &w.wake {
                Wake::Thread(bell, mask) => {
                    w.state.store(WOKEN, Ordering::Release);
                    // Its round's bucket: the whole group in one ring (the slot bits would
                    // wake threads of later rounds too).
                    add_ring(&mut ring, bell, mask.bucket_bits().unwrap_or(*mask));
                }
                Wake::Root(_) => relays.push(w),
                Wake::Task(_) => tasks.push(w),
            }
        }
        for w in &tasks {
            w.state.store(WOKEN, Ordering::Release);
        }
        let sweep: Vec<AckedGroup> = st.relayed_group.take().into_iter().collect();
        let relays: Option<AckedGroup> = (!relays.is_empty()).then(|| relays.into());
        if let Some(group) = &relays {
            // IMPORTANT: children before parents (higher indices first). A waiter that has
            // not parked yet may see `WOKEN` at once and wake its children: they must already
            // read `WOKEN` too, or they take the wake-up, park again, and sleep for good
            // (found by loom).
            for (i, w) in group.iter().enumerate().rev() {
                *w.fan_out.lock() = Some((group.clone(), i));
                w.state.store(WOKEN, Ordering::Release);
            }
            // Only a parent relays: the first half of the heap.
            if group[..group.len() / 2].iter().any(|w| w.relays_at_will()) {
                st.relayed_group = Some(group.clone());
            }
        }
        Wakeups {
            ring,
            leaders: Vec::new(),
            relays,
            tasks,
            sweep,
        }
    }

    /// The caller stops leading (or no round may run again): nobody would sweep the last
    /// group that relied on a root future, so this wake-up does. The commit lock is held.
    pub(super) fn end_relays(&mut self, st: &mut CommitState) {
        self.sweep.extend(st.relayed_group.take());
    }

    /// Nobody leads and work is queued: asks the oldest blocked thread to lead, or, when no
    /// thread waits, every waiter (the first to run leads; the others queue again). The commit
    /// lock is held (`st`).
    pub(super) fn hand_leadership(&mut self, st: &mut CommitState) {
        let leaders: Vec<Arc<Waiter>> = match st
            .waiters
            .iter()
            .position(|w| matches!(w.wake, Wake::Thread(..)))
        {
            Some(i) => st.waiters.remove(i).into_iter().collect(),
            None => st.waiters.drain(..).collect(),
        };
        for w in leaders {
            w.state.store(LEAD, Ordering::Release);
            match &w.wake {
                // Its slot: the one thread, and the few that share the slot.
                Wake::Thread(bell, mask) => {
                    add_ring(&mut self.ring, bell, mask.slot_bits().unwrap_or(*mask))
                }
                Wake::Task(_) | Wake::Root(_) => self.leaders.push(w),
            }
        }
    }

    /// Wakes them all (after the commit lock is released).
    pub(super) fn wake(self) {
        if let Some((bell, mask)) = &self.ring {
            bell.ring(*mask);
        }
        for w in &self.leaders {
            w.wake();
        }
        if let Some(first) = self.relays.as_ref().and_then(|group| group.first()) {
            first.wake_acknowledged();
        }
        for w in &self.tasks {
            w.wake();
        }
        for w in self.sweep.iter().flat_map(|group| group.iter()) {
            w.wake_acknowledged();
        }
    }
}

/// Adds `mask` to the bits one ring of `bell` wakes.
fn add_ring(ring: &mut Option<(Arc<Bell>, Mask)>, bell: &Arc<Bell>, mask: Mask) {
    match ring {
        Some((_, bits)) => *bits = bits.or(mask),
        None => *ring = Some((bell.clone(), mask)),
    }
}

/// Called by a woken root future before anything else: wakes its children in its group.
fn wake_children(me: &Waiter) {
    let slot = me.fan_out.lock().take();
    if let Some((group, i)) = slot {
        for child in [2 * i + 1, 2 * i + 2] {
            if let Some(w) = group.get(child) {
                w.wake_acknowledged();
            }
        }
    }
}

/// How long the root future of a `block_on` sleeps on the bell inside `poll` before it
/// registers its waker instead: a round or two when the disk is healthy (an fdatasync takes
/// 0.1–0.5 ms), and about a tick of tokio's timer, so a `timeout` around the append fires at
/// most this late.
#[cfg(not(test))]
const ROOT_SLEEP_ON_BELL: std::time::Duration = std::time::Duration::from_millis(2);
/// Long enough for a unit test to see the sleeper in the queue every time.
#[cfg(test)]
const ROOT_SLEEP_ON_BELL: std::time::Duration = std::time::Duration::from_secs(1);

/// After a sleep on the bell ran out, how long the thread's root futures register their
/// wakers at once. A sleep runs out when rounds take longer than the sleep (a slow disk):
/// then a waker's wake-up is small beside a round, and one poll that joins many waits must
/// not sleep once per wait (review 116).
const ROOT_SLEEP_PAUSE: std::time::Duration = ROOT_SLEEP_ON_BELL.saturating_mul(10);

thread_local! {
    /// When a sleep on the bell of a root future on this thread last ran out.
    static ROOT_SLEEP_RAN_OUT: std::cell::Cell<Option<std::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// True when a root future's sleep on the bell ran out on this thread less than
/// [`ROOT_SLEEP_PAUSE`] ago.
fn root_sleep_paused() -> bool {
    ROOT_SLEEP_RAN_OUT
        .try_with(|last| last.get().is_some_and(|at| at.elapsed() < ROOT_SLEEP_PAUSE))
        .unwrap_or(true)
}

/// Records that a root future's sleep on the bell ran out on this thread now.
fn note_root_sleep_ran_out() {
    let _ = ROOT_SLEEP_RAN_OUT.try_with(|last| last.set(Some(std::time::Instant::now())));
}

/// True when an async caller may sleep on the bell, inside `poll`, for a while
/// ([`ROOT_SLEEP_ON_BELL`]): it is the root future of a `block_on` on a multi-threaded tokio
/// runtime, a thread that blocks in any case and runs no task (a `LocalSet`'s root is the
/// exception tokio does not let us see: its local tasks wait too), and no sleep ran out on
/// this thread lately ([`ROOT_SLEEP_PAUSE`]). Woken by the round's one ring,
/// it costs a fraction of a waker's wake-up (one `unpark` per thread: with 64 appenders
/// calling the EventStore through `block_on`, half the CPU went to waking them). What it
/// delays: the future's siblings in a `join!` or `select!` and timers, by one sleep that runs
/// out at most (then the pause), or by the rounds that end its sleeps (the waits a poll joins
/// were submitted together, and end in a round or two). A current-thread runtime runs its
/// tasks on the thread of its `block_on`, and a future polled outside tokio may share its
/// thread with others: those register their wakers at once.
fn may_sleep_in_poll() -> bool {
    // Under loom (outside any runtime) every root future sleeps first, and its deadline
    // passes at once unless it is rung: the models explore both ways of waiting.
    if cfg!(seglog_loom) {
        return true;
    }
    let root_of_multi_thread = match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            tokio::task::try_id().is_none()
                && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        }
        Err(_) => false,
    };
    root_of_multi_thread && !root_sleep_paused()
}

/// True when an async caller may run its commit round on its own thread: it is not a task
/// on a runtime's worker (which other tasks need), but the root future of a `block_on` (the
/// caller's own thread, blocked in any case) or polled outside any tokio runtime (where
/// there is no blocking pool). Tasks hand the round to the log's round runner instead
/// (`round_runner`; not tokio's blocking pool, which may be full of threads waiting for
/// that very round).
/// (`block_in_place` is not used: tokio refuses it, by panicking, in places a caller cannot
/// see, such as a `LocalSet`.)
pub(super) fn may_lead_in_place() -> bool {
    tokio::runtime::Handle::try_current().is_err() || tokio::task::try_id().is_none()
}

/// Queues `waiter` in LSN order. Waiters arrive in roughly LSN order; a round wakes a prefix.
fn enqueue(st: &mut CommitState, waiter: Arc<Waiter>) {
    let at = st.waiters.partition_point(|w| w.lsn <= waiter.lsn);
    st.waiters.insert(at, waiter);
}

impl<F: FileSystem> Inner<F> {
    /// Blocks until `lsn` is durable, leading commit rounds when nobody else does.
    pub(crate) fn wait_durable(self: &Arc<Self>, lsn: u64) -> Result<()> {
        loop {
            if let Some(outcome) = self.wait_on_bell(lsn, None) {
                return outcome;
            }
        }
    }

    /// Sleeps on the bell until `lsn` is durable (or its wait fails), leading commit rounds
    /// when nobody else does — or, given a deadline, until it passes: then `None`, with the
    /// waiter out of the queue (unless it was woken meanwhile: then it looks, as usual).
    fn wait_on_bell(self: &Arc<Self>, lsn: u64, deadline: Option<&Deadline>) -> Option<Result<()>> {
        let mut st = self.commit.lock();
        loop {
            if let Some(outcome) = st.wait_outcome(lsn) {
                return Some(outcome);
            }
            if let Some(claim) = self.try_claim(&mut st) {
                drop(st);
                claim.lead();
                st = self.commit.lock();
                continue;
            }
            let mask = Mask::bucket(st.round_expected_for(lsn)).or(Mask::slot_of_this_thread());
            let me = Waiter::new(lsn, Wake::Thread(self.bell.clone(), mask));
            enqueue(&mut st, me.clone());
            drop(st);
            // The bell may wake us spuriously (a ring for others); the state says whether we
            // were really woken. IMPORTANT: read the bell before the state (see `bell`).
            let state = loop {
                let seen = self.bell.seen();
                let state = me.state.load(Ordering::Acquire);
                if state != WAITING {
                    break state;
                }
                match deadline {
                    None => self.bell.wait(seen, mask),
                    Some(deadline) => {
                        if !self.bell.wait_until(seen, mask, deadline) {
                            break WAITING;
                        }
                    }
                }
            };
            // The watermark is stored before any waiter is marked woken: a woken waiter whose
            // LSN it covers is done without the commit lock.
            if state == WOKEN && self.durable_lsn.load(Ordering::Acquire) >= lsn {
                return Some(Ok(()));
            }
            st = self.commit.lock();
            if state == WAITING && me.state.load(Ordering::Acquire) == WAITING {
                // The deadline passed, and nobody changed our state (that happens only under
                // the commit lock, now ours): leave the queue.
                st.waiters.retain(|w| !Arc::ptr_eq(w, &me));
                return None;
            }
        }
    }

    /// Like [`Self::wait_durable`], for async callers: the task registers its waker in the
    /// queue and is woken like a thread. A round a spawned task leads runs on the log's
    /// round runner (`round_runner`); a round the root future of a `block_on` leads (or a
    /// future polled outside tokio) runs in place, with no thread hop (see
    /// [`may_lead_in_place`]).
    ///
    /// Dropping the future gives up the wait, never the record: it stays submitted.
    pub(crate) fn wait_durable_async(self: &Arc<Self>, lsn: u64) -> DurableWait<F> {
        DurableWait {
            inner: self.clone(),
            lsn,
            registered: None,
            slept_on_bell: false,
        }
    }

    /// Takes a cancelled async waiter out of the queue and passes on what it was handed.
    fn withdraw(self: &Arc<Self>, me: &Waiter) {
        let claim = {
            let mut st = self.commit.lock();
            match me.state.load(Ordering::Acquire) {
                WAITING => {
                    st.waiters.retain(|w| !std::ptr::eq(Arc::as_ptr(w), me));
                    None
                }
                // Asked to lead, and gone: nobody may be left to start the next round.
                LEAD => self.try_claim(&mut st),
                _ => None,
            }
        };
        // Given back explicitly, not dropped: a drop during a panic of the caller's own would
        // be taken for a panic inside a commit round, and poison the log.
        if let Some(claim) = claim {
            claim.release();
        }
        // IMPORTANT: a woken waiter's group waits for it to pass on the wake-up.
        wake_children(me);
    }
}

/// The future of [`Inner::wait_durable_async`].
pub(crate) struct DurableWait<F: FileSystem> {
    inner: Arc<Inner<F>>,
    lsn: u64,
    /// Our entry in the queue, while we are in it (or were taken out and have not looked).
    registered: Option<Arc<Waiter>>,
    /// True once this future has slept on the bell in `poll` ([`may_sleep_in_poll`]): it
    /// does so once at most.
    slept_on_bell: bool,
}

impl<F: FileSystem> DurableWait<F> {
    /// One look at the commit state: done, lead, or (re)register and sleep.
    fn look(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if !self.slept_on_bell && may_sleep_in_poll() {
            self.slept_on_bell = true;
            let deadline = Deadline::after(ROOT_SLEEP_ON_BELL);
            if let Some(outcome) = self.inner.wait_on_bell(self.lsn, Some(&deadline)) {
                return Poll::Ready(outcome);
            }
            note_root_sleep_ran_out();
        }
        loop {
            let mut st = self.inner.commit.lock();
            if let Some(outcome) = st.wait_outcome(self.lsn) {
                return Poll::Ready(outcome);
            }
            if let Some(claim) = self.inner.try_claim(&mut st) {
                drop(st);
                if may_lead_in_place() {
                    claim.lead();
                    continue;
                }
                self.inner.round_runner.run(claim);
                st = self.inner.commit.lock();
                if let Some(outcome) = st.wait_outcome(self.lsn) {
                    return Poll::Ready(outcome);
                }
            }
            let waker =
                crate::sync::Mutex::new(CallerWaker::new(cx.waker().clone(), "an async waiter's"));
            let me = Waiter::new(
                self.lsn,
                if may_lead_in_place() {
                    Wake::Root(waker)
                } else {
                    Wake::Task(waker)
                },
            );
            enqueue(&mut st, me.clone());
            self.registered = Some(me);
            return Poll::Pending;
        }
    }
}

impl<F: FileSystem> Future for DurableWait<F> {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(me) = self.registered.clone() {
            let mut state = me.state.load(Ordering::Acquire);
            if state == WAITING {
                if let Wake::Task(waker) | Wake::Root(waker) = &me.wake {
                    waker.lock().update(cx.waker());
                }
                // A wake-up between the first look and the new waker went to the old one:
                // look again.
                state = me.state.load(Ordering::Acquire);
                if state == WAITING {
                    return Poll::Pending;
                }
            }
            self.registered = None;
            // IMPORTANT: before anything else (returning included), wake the rest of the
            // group this waiter was acknowledged with: they wait for it.
            wake_children(&me);
            if state == WOKEN && self.inner.durable_lsn.load(Ordering::Acquire) >= self.lsn {
                return Poll::Ready(Ok(()));
            }
        }
        let this = &mut *self;
        this.look(cx)
    }
}

impl<F: FileSystem> Drop for DurableWait<F> {
    fn drop(&mut self) {
        if let Some(me) = self.registered.take() {
            self.inner.withdraw(&me);
        }
    }
}

#[cfg(all(test, not(seglog_loom)))]
#[path = "waiters_tests.rs"]
mod tests;
