//! A cancelled async waiter passes on what it was handed (the chance to lead) and leaves the
//! queue. (That a task never relays other waiters' wake-ups is `tests/review6_waiters.rs`.)
//! Each test stages the commit state by hand (a fake running leader) so the
//! moment it checks happens every time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::format::EventBatch;
use crate::io::sim::SimFs;
use crate::{SegmentLog, SegmentOptions};
use std::sync::mpsc;
use std::task::Waker;
use std::time::Duration;

fn open() -> SegmentLog<SimFs> {
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    };
    SegmentLog::open(SimFs::new(), "/log", opts, &mut ())
        .unwrap()
        .0
}

fn submit(log: &SegmentLog<SimFs>) -> u64 {
    let record = log
        .encode(&EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: 1,
            timestamp_unix_nanos: 0,
            payloads: &[b"event".as_slice()],
        })
        .unwrap();
    log.submit(record).unwrap().lsn
}

/// Polls `wait` once, outside any runtime, with a waker that does nothing.
fn poll_once<F: FileSystem>(wait: &mut DurableWait<F>) -> Poll<Result<()>> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(wait).poll(&mut cx)
}

/// A blocking waiter for `lsn` on its own thread; the receiver hears when it returns.
fn blocking_waiter(log: &SegmentLog<SimFs>, lsn: u64) -> mpsc::Receiver<Result<()>> {
    let (tx, rx) = mpsc::channel();
    let log = log.clone();
    std::thread::spawn(move || tx.send(log.wait_durable(lsn)));
    rx
}

fn wait_for_queue(log: &SegmentLog<SimFs>, len: usize) {
    while log.inner.commit.lock().waiters.len() < len {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_cancelled_waiter_asked_to_lead_hands_the_round_on() {
    let log = open();
    let first = submit(&log);
    let second = submit(&log);
    // A leader is busy: both waiters queue.
    log.inner.commit.lock().leader_active = true;
    let mut wait = log.inner.wait_durable_async(first);
    assert!(poll_once(&mut wait).is_pending());
    let other = blocking_waiter(&log, second);
    wait_for_queue(&log, 2);
    // The leader ends, records still queued: it asks the oldest waiter — ours — to lead.
    {
        let mut st = log.inner.commit.lock();
        st.leader_active = false;
        let oldest = st.waiters.pop_front().unwrap();
        oldest.state.store(LEAD, Ordering::Release);
    }
    // The task is cancelled before it runs.
    drop(wait);
    let outcome = other
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiter behind a cancelled would-be leader was stranded");
    outcome.unwrap();
    assert!(log.durable_lsn() >= second);
}

#[test]
fn a_waiter_in_the_queue_withdraws_when_cancelled() {
    let log = open();
    let lsn = submit(&log);
    log.inner.commit.lock().leader_active = true;
    let mut wait = log.inner.wait_durable_async(lsn);
    assert!(poll_once(&mut wait).is_pending());
    assert_eq!(log.inner.commit.lock().waiters.len(), 1);
    drop(wait);
    assert!(log.inner.commit.lock().waiters.is_empty());
    log.inner.commit.lock().leader_active = false;
    // The record itself is still submitted: the next wait makes it durable.
    let mut wait = log.inner.wait_durable_async(lsn);
    assert!(matches!(poll_once(&mut wait), Poll::Ready(Ok(()))));
    assert!(log.durable_lsn() >= lsn);
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Three async waits polled outside any runtime (root futures) queue behind a fake leader;
/// then their round is acknowledged, as a commit round's end does. Returns them with the
/// counters of their wakers.
#[allow(clippy::type_complexity)]
fn acknowledged_roots(
    log: &SegmentLog<SimFs>,
) -> Vec<(Pin<Box<DurableWait<SimFs>>>, Arc<Count>, Waker)> {
    log.inner.commit.lock().leader_active = true;
    let mut roots = Vec::new();
    for _ in 0..3 {
        let lsn = submit(log);
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut wait = Box::pin(log.inner.wait_durable_async(lsn));
        assert!(wait
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        roots.push((wait, count, waker));
    }
    let wakeups = {
        let mut st = log.inner.commit.lock();
        // As if a round had made them durable (the test never reads the records back).
        st.durable_lsn = st.next_lsn - 1;
        log.inner
            .durable_lsn
            .store(st.durable_lsn, Ordering::Release);
        Wakeups::acknowledge(&mut st, 3)
    };
    wakeups.wake();
    roots
}

/// The leader of a round whose waiters are root futures (`block_on` from many threads) wakes
/// one of them: each passes the wake-up on to two more when it runs, as blocked threads do.
/// (Woken one by one, 32 `block_on` threads cost the leader ~32 system calls per round before
/// its next write: the EventStore path at 64 writers ran 0.66× the raw log's fsyncs/s.)
#[test]
fn root_futures_acknowledged_together_relay_the_wake_ups() {
    let log = open();
    let mut roots = acknowledged_roots(&log);
    let counts: Vec<usize> = roots.iter().map(|(_, c, _)| c.get()).collect();
    assert_eq!(counts, [1, 0, 0], "the leader woke more than the first");
    let (first, _, waker) = &mut roots[0];
    assert!(matches!(
        first.as_mut().poll(&mut Context::from_waker(waker)),
        Poll::Ready(Ok(()))
    ));
    let counts: Vec<usize> = roots.iter().map(|(_, c, _)| c.get()).collect();
    assert_eq!(counts, [1, 1, 1], "the first did not relay to its children");
    log.inner.commit.lock().leader_active = false;
}

/// A root future that is not polled again (its own code holds its thread up, or it was
/// leaked) relays nothing: the group it heads is woken by the next acknowledgement, one
/// round later, instead of never.
#[test]
fn a_stalled_root_future_holds_its_group_up_for_one_round_at_most() {
    let log = open();
    let roots = acknowledged_roots(&log);
    assert_eq!(roots[1].1.get(), 0);
    // The next round's acknowledgement (nobody in it) sweeps the group.
    let wakeups = Wakeups::acknowledge(&mut log.inner.commit.lock(), 0);
    wakeups.wake();
    let counts: Vec<usize> = roots.iter().map(|(_, c, _)| c.get()).collect();
    assert_eq!(
        counts,
        [1, 1, 1],
        "the sweep skipped a stranded waiter or woke one twice"
    );
    log.inner.commit.lock().leader_active = false;
}

/// When the leader stops leading there may be no next acknowledgement: it sweeps the last
/// group itself.
#[test]
fn a_leader_that_stops_sweeps_the_group_it_acknowledged_last() {
    let log = open();
    let roots = acknowledged_roots(&log);
    let mut wakeups = Wakeups::default();
    wakeups.end_relays(&mut log.inner.commit.lock());
    wakeups.wake();
    let counts: Vec<usize> = roots.iter().map(|(_, c, _)| c.get()).collect();
    assert_eq!(counts, [1, 1, 1]);
    assert!(log.inner.commit.lock().relayed_group.is_none());
    log.inner.commit.lock().leader_active = false;
}

/// Which kind of waiter is first in the queue, if any.
fn first_waiter_kind(log: &SegmentLog<SimFs>) -> Option<&'static str> {
    log.inner
        .commit
        .lock()
        .waiters
        .front()
        .map(|w| match w.wake {
            Wake::Thread(..) => "thread",
            Wake::Task(_) => "task",
            Wake::Root(_) => "root",
        })
}

/// Waits until the first waiter in the queue is of `kind`.
fn wait_for_first_waiter(log: &SegmentLog<SimFs>, kind: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while first_waiter_kind(log) != Some(kind) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {kind} waiter came: {:?}",
            first_waiter_kind(log)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Acknowledges every waiter, as the end of a round that made everything durable does.
fn acknowledge_all(log: &SegmentLog<SimFs>) {
    let wakeups = {
        let mut st = log.inner.commit.lock();
        st.durable_lsn = st.next_lsn - 1;
        log.inner
            .durable_lsn
            .store(st.durable_lsn, Ordering::Release);
        let all = st.waiters.len();
        st.leader_active = false;
        Wakeups::acknowledge(&mut st, all)
    };
    wakeups.wake();
}

/// A multi-threaded runtime with one worker.
fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap()
}

/// A log with one record submitted and a fake leader busy; `block_on(wait)` for the record on
/// its own thread, on `runtime`. Returns the log, the record's LSN, and the receiver that
/// hears when the wait returns.
fn root_behind_a_leader(
    runtime: &tokio::runtime::Runtime,
) -> (SegmentLog<SimFs>, u64, mpsc::Receiver<Result<()>>) {
    let log = open();
    let lsn = submit(&log);
    log.inner.commit.lock().leader_active = true;
    let done = block_on_waiter(&log, runtime, lsn);
    (log, lsn, done)
}

/// The fake leader ends with records still queued, and asks a waiter to lead, as a real one
/// does.
fn end_the_leader_asking_a_waiter_to_lead(log: &SegmentLog<SimFs>) {
    let wakeups = {
        let mut st = log.inner.commit.lock();
        st.leader_active = false;
        let mut wakeups = Wakeups::default();
        wakeups.hand_leadership(&mut st);
        wakeups
    };
    wakeups.wake();
}

/// `block_on(wait)` on its own thread, on `runtime`; the receiver hears when it returns.
fn block_on_waiter(
    log: &SegmentLog<SimFs>,
    runtime: &tokio::runtime::Runtime,
    lsn: u64,
) -> mpsc::Receiver<Result<()>> {
    let (tx, rx) = mpsc::channel();
    let (log, handle) = (log.clone(), runtime.handle().clone());
    std::thread::spawn(move || tx.send(handle.block_on(log.inner.wait_durable_async(lsn))));
    rx
}

/// The root future of a `block_on` on a multi-threaded runtime first sleeps on the bell, as a
/// blocked thread does (one ring wakes a whole group of those, where each waker costs its own
/// system call), but only for a while: behind a round that does not end, it leaves the queue
/// and registers its waker, which the acknowledgement then wakes.
#[test]
fn a_block_on_root_sleeps_on_the_bell_for_a_while_then_registers_its_waker() {
    let runtime = multi_thread();
    let (log, _, done) = root_behind_a_leader(&runtime);
    wait_for_queue(&log, 1);
    assert_eq!(
        first_waiter_kind(&log),
        Some("thread"),
        "it did not sleep on the bell"
    );
    wait_for_first_waiter(&log, "root");
    assert_eq!(
        log.inner.commit.lock().waiters.len(),
        1,
        "it left its bell entry behind"
    );
    assert!(
        done.try_recv().is_err(),
        "it returned before it was durable"
    );
    acknowledge_all(&log);
    done.recv_timeout(Duration::from_secs(10))
        .expect("the acknowledged root future was stranded")
        .unwrap();
}

/// Rung while it sleeps on the bell, the root future returns.
#[test]
fn a_block_on_root_asleep_on_the_bell_is_acknowledged_by_the_ring() {
    let runtime = multi_thread();
    let (log, _, done) = root_behind_a_leader(&runtime);
    wait_for_first_waiter(&log, "thread");
    acknowledge_all(&log);
    done.recv_timeout(Duration::from_secs(10))
        .expect("the rung root future was stranded")
        .unwrap();
    assert!(log.inner.commit.lock().waiters.is_empty());
}

/// Asked to lead while it sleeps on the bell (the round before ended with records queued),
/// the root future leads in place and returns once its record is durable.
#[test]
fn a_block_on_root_asleep_on_the_bell_leads_when_asked() {
    a_block_on_root_asked_to_lead_as_a("thread");
}

/// The root future of a `block_on` on a multi-threaded runtime, waiting as a waiter of
/// `kind` behind a fake leader, is asked to lead when that leader ends: it leads, and returns
/// once its record is durable.
fn a_block_on_root_asked_to_lead_as_a(kind: &str) {
    let runtime = multi_thread();
    let (log, lsn, done) = root_behind_a_leader(&runtime);
    wait_for_first_waiter(&log, kind);
    end_the_leader_asking_a_waiter_to_lead(&log);
    done.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("the root future waiting as a {kind} was never asked to lead"))
        .unwrap();
    assert!(log.durable_lsn() >= lsn);
}

/// A current-thread runtime runs its tasks on the thread of its `block_on`: the root future
/// must not sleep there, it registers its waker at once.
#[test]
fn a_current_thread_root_never_sleeps_on_the_bell() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (log, _, done) = root_behind_a_leader(&runtime);
    wait_for_queue(&log, 1);
    assert_eq!(first_waiter_kind(&log), Some("root"));
    acknowledge_all(&log);
    done.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
}

/// After its sleep on the bell, the root future is in the queue once, by its waker: when the
/// round ahead ends with its record still queued, asking it to lead reaches it (an entry left
/// from its sleep would be asked first, ring a bell nobody sleeps on, and strand it).
#[test]
fn a_block_on_root_past_its_sleep_is_asked_to_lead_through_its_waker() {
    a_block_on_root_asked_to_lead_as_a("root");
}

/// Review 116: a `LocalSet` driven by the `block_on` of a multi-threaded runtime runs its
/// tasks on the thread of that `block_on`, as a current-thread runtime does, but tokio gives
/// no way to tell its root future from a `block_on`'s (no task id, a multi-threaded handle):
/// it sleeps on the bell, and the set's ready tasks wait. They wait one sleep at most (1 s
/// under `cfg(test)`, 2 ms in a build): the sleep runs out, the root registers its waker, and
/// the tasks run before the round ends.
#[test]
fn a_local_set_root_holds_its_tasks_up_for_one_sleep_at_most() {
    let log = open();
    let lsn = submit(&log);
    log.inner.commit.lock().leader_active = true;
    let runtime = multi_thread();
    let (ran_tx, ran_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    {
        let (log, handle) = (log.clone(), runtime.handle().clone());
        std::thread::spawn(move || {
            let local = tokio::task::LocalSet::new();
            let outcome = handle.block_on(local.run_until(async move {
                // A task of the set, ready to run before the wait is polled.
                drop(tokio::task::spawn_local(async move {
                    let _ = ran_tx.send(());
                }));
                log.inner.wait_durable_async(lsn).await
            }));
            let _ = done_tx.send(outcome);
        });
    }
    let ran = ran_rx.recv_timeout(ROOT_SLEEP_ON_BELL * 5);
    let kind_then = first_waiter_kind(&log);
    acknowledge_all(&log);
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the LocalSet's wait was stranded")
        .unwrap();
    assert!(
        ran.is_ok(),
        "the LocalSet's ready task did not run while the round did not end (first waiter: \
         {kind_then:?})"
    );
    assert_eq!(
        kind_then,
        Some("root"),
        "after the sleep, the root waits by its waker"
    );
}
