//! Where a commit round runs when a spawned async task wins the leader's seat: on threads
//! of the log's own, never on the caller's blocking pool.
//!
//! A task on a runtime's worker must not block it for a round (write + fdatasync). It used
//! to hand the round to tokio's blocking pool (`spawn_blocking`), and that pool may be full
//! of the very threads the round would release: blocking appends run there
//! (`spawn_blocking(|| log.append_blocking(..))`), asleep until a round acknowledges them,
//! and unable to lead it themselves while the handed claim holds the seat. With every pool
//! thread such an appender, the round never ran and every append hung (the pool's cap is
//! the runtime's to choose; two was enough). A close waiting on a pool thread could starve it
//! the same way (review 146).
//!
//! The runner's threads only ever lead rounds, so a claim handed to them always runs. A
//! claim handed while every thread leads gets a new thread: while one round's fsync is in
//! flight the seat is free, and the next round may start beside it (overlap), so a few
//! claims can be under way at once — at most one in the seat and the rounds whose fsyncs
//! overlap, three. A thread leaves after a second without a claim, so a log that is only
//! appended to from threads, or no longer at all, keeps none; a thread holds the log only
//! while it leads.
//!
//! A round runs inside the runtime context of the task that handed it over (a seal listener
//! in it may spawn tasks, as it could on the blocking pool; review 149).
//!
//! A runtime's drop waits for its blocking tasks, not for these threads: when the log's last
//! handle goes while a handed round is under way (a cancelled append's), the directory lock
//! goes only when that round ends, and the log's drop does not wait for it (see
//! `crate::departing` for how an open of the same directory in this process does).

use super::group_commit::LeaderClaim;
use crate::io::FileSystem;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// How long a runner thread waits for the next claim before it leaves.
const IDLE_EXIT: Duration = Duration::from_secs(1);

/// The log's round runner (see the module's documentation).
pub(crate) struct RoundRunner<F: FileSystem> {
    shared: Arc<Shared<F>>,
}

struct Shared<F: FileSystem> {
    state: Mutex<State<F>>,
    handed: Condvar,
}

/// A claim handed over, with the runtime of the task that handed it.
type Handed<F> = (LeaderClaim<F>, Option<tokio::runtime::Handle>);

struct State<F: FileSystem> {
    /// Claims handed over and not yet taken.
    claims: VecDeque<Handed<F>>,
    /// Threads waiting for a claim and not yet notified.
    idle: usize,
    /// Notifications sent and not yet taken by a waking thread. A hand-off that notifies
    /// counts its thread out of `idle`; whichever thread wakes takes one of these.
    notified: usize,
}

impl<F: FileSystem> Default for RoundRunner<F> {
    fn default() -> Self {
        RoundRunner {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    claims: VecDeque::new(),
                    idle: 0,
                    notified: 0,
                }),
                handed: Condvar::new(),
            }),
        }
    }
}

impl<F: FileSystem> RoundRunner<F> {
    /// Runs `claim`'s rounds on a runner thread: an idle one, or a new one. If no thread can
    /// be started, leads them here, on the caller's thread: a round that blocks a worker
    /// for a while beats one that never runs.
    pub(crate) fn run(&self, claim: LeaderClaim<F>) {
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut state = self.shared.state.lock();
        state.claims.push_back((claim, runtime));
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            drop(state);
            self.shared.handed.notify_one();
            return;
        }
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name("seglog-rounds".into())
            .spawn(move || shared.serve());
        if let Err(e) = started {
            let claim = state.claims.pop_back();
            drop(state);
            tracing::warn!(error = %e, "cannot start a thread for async appends' commit rounds; leading the round on the caller's thread");
            if let Some((claim, _)) = claim {
                claim.lead();
            }
        }
    }
}

impl<F: FileSystem> Shared<F> {
    /// A thread's body: lead each claim handed over; leave after [`IDLE_EXIT`] without one.
    fn serve(&self) {
        loop {
            let (claim, runtime) = {
                let mut state = self.state.lock();
                loop {
                    if let Some(handed) = state.claims.pop_front() {
                        break handed;
                    }
                    state.idle += 1;
                    let timed_out = self.handed.wait_for(&mut state, IDLE_EXIT).timed_out();
                    if state.notified > 0 {
                        // Counted out of `idle` by the hand-off that notified.
                        state.notified -= 1;
                        continue;
                    }
                    state.idle -= 1;
                    if timed_out && state.claims.is_empty() {
                        return;
                    }
                }
            };
            // A panic in a round (a seal listener's, say) poisons the log as the claim
            // unwinds (`LeaderClaim`'s drop); the thread stays, so that later claims run.
            let led = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
                claim.lead();
            }));
            if led.is_err() {
                tracing::error!("a commit round panicked on the round runner's thread");
            }
        }
    }
}
