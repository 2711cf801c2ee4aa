//! Review 113: blocked waiters sleep on one shared futex word (the writer's bell) with a
//! bucket bit and a slot bit. loom models the bell as a mutex + condvar that ignores masks,
//! so only these tests (real futexes, on Linux) exercise the masks: more threads than slots
//! (slots shared), buckets guessed wrong (buffered write-only rounds, rolls, overlapping
//! rounds), blocking threads mixed with spawned tasks and `block_on` root futures, a failed
//! fsync and a close racing the waiters. Every wait must end (watchdog), and an Ok must come
//! only once the watermark covers the LSN.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::waiting::{BusyAppenders, Unpark};
use seglog_segment::io::sim::{Fault, FaultKind, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

fn opts(overlap: usize, buffered: u64) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        max_record_size_bytes: 4096,
        overlap_min_records: overlap,
        buffered_write_bytes: buffered,
        ..SegmentOptions::default()
    }
}

fn open(fs: &SimFs, o: SegmentOptions) -> SegmentLog<SimFs> {
    SegmentLog::open(fs.clone(), "/log", o, &mut ()).unwrap().0
}

fn record(log: &SegmentLog<SimFs>) -> seglog_segment::format::EncodedRecord {
    common::waiting::record(log, 100)
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(500));
    }
}

/// Joins every worker, or panics naming a hang after `limit`.
fn join_all(rx: mpsc::Receiver<(String, bool)>, n: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let mut ok = 0;
    for i in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, true)) => ok += 1,
            Ok((_, false)) => {}
            Err(_) => panic!(
                "hang: {} of {n} workers still waiting after {limit:?}",
                n - i
            ),
        }
    }
    ok
}

/// What every worker checks after each Ok.
fn check_ok(log: &SegmentLog<SimFs>, lsn: u64, what: &str) {
    let d = log.durable_lsn();
    assert!(d >= lsn, "{what}: Ok for lsn {lsn} with durable_lsn {d}");
}

/// Runs the mixed workload until `stop`, or until the first error (then the worker ends).
fn spawn_workers(
    log: &SegmentLog<SimFs>,
    stop: &Arc<AtomicBool>,
    tx: &mpsc::Sender<(String, bool)>,
    blocking: usize,
) -> usize {
    let mut n = 0;
    // Blocking appenders: more than the 28 slots, so slots are shared.
    for t in 0..blocking {
        let (log, stop, tx) = (log.clone(), stop.clone(), tx.clone());
        n += 1;
        std::thread::spawn(move || {
            let mut clean = true;
            while !stop.load(Ordering::Relaxed) {
                let r = match t % 4 {
                    // Buffered appends: write-only rounds take their records, so the bucket
                    // they guessed is not the round that acknowledges them.
                    0 => log
                        .submit_buffered(record(&log))
                        .and_then(|a| log.wait_durable(a.lsn).map(|()| a.lsn)),
                    // A sync waits for the last LSN, which may be a later round's.
                    1 if t % 8 == 1 => log.sync(),
                    _ => log.append_record_for_test(),
                };
                match r {
                    Ok(lsn) => check_ok(&log, lsn, "blocking"),
                    Err(_) => {
                        clean = false;
                        break;
                    }
                }
            }
            let _ = tx.send((format!("blocking {t}"), clean));
        });
    }
    // A roller: rolls take an LSN of their own and seal in a later round.
    {
        let (log, stop, tx) = (log.clone(), stop.clone(), tx.clone());
        n += 1;
        std::thread::spawn(move || {
            let mut clean = true;
            while !stop.load(Ordering::Relaxed) {
                if log.roll().is_err() {
                    clean = false;
                    break;
                }
                std::thread::sleep(Duration::from_millis(3));
            }
            let _ = tx.send(("roller".into(), clean));
        });
    }
    // Root futures (`block_on` on threads of their own).
    for t in 0..4 {
        let (log, stop, tx) = (log.clone(), stop.clone(), tx.clone());
        n += 1;
        std::thread::spawn(move || {
            let mut clean = true;
            while !stop.load(Ordering::Relaxed) {
                let r = log
                    .submit(record(&log))
                    .and_then(|a| block_on(log.wait_durable_async(a.lsn)).map(|()| a.lsn));
                match r {
                    Ok(lsn) => check_ok(&log, lsn, "root"),
                    Err(_) => {
                        clean = false;
                        break;
                    }
                }
            }
            let _ = tx.send((format!("root {t}"), clean));
        });
    }
    // Spawned tasks on a current-thread runtime.
    {
        let (log, stop, tx) = (log.clone(), stop.clone(), tx.clone());
        n += 1;
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let clean = rt.block_on(async move {
                let tasks: Vec<_> = (0..6)
                    .map(|_| {
                        let (log, stop) = (log.clone(), stop.clone());
                        tokio::spawn(async move {
                            while !stop.load(Ordering::Relaxed) {
                                let a = match log.submit(record(&log)) {
                                    Ok(a) => a,
                                    Err(_) => return false,
                                };
                                if log.wait_durable_async(a.lsn).await.is_err() {
                                    return false;
                                }
                                check_ok(&log, a.lsn, "task");
                            }
                            true
                        })
                    })
                    .collect();
                let mut all = true;
                for t in tasks {
                    all &= t.await.unwrap();
                }
                all
            });
            let _ = tx.send(("tasks".into(), clean));
        });
    }
    n
}

trait AppendForTest {
    fn append_record_for_test(&self) -> seglog_segment::Result<u64>;
}

impl AppendForTest for SegmentLog<SimFs> {
    fn append_record_for_test(&self) -> seglog_segment::Result<u64> {
        let a = self.submit(record(self))?;
        self.wait_durable(a.lsn)?;
        Ok(a.lsn)
    }
}

fn cycle(fs: &SimFs) {
    fs.set_sync_latency_cycle(&[
        Duration::from_micros(300),
        Duration::from_micros(20),
        Duration::from_millis(1),
        Duration::ZERO,
    ]);
}

/// The mixed workload, with overlapping rounds, for a while: nobody hangs, no early Ok.
#[test]
fn mixed_waiters_with_shared_slots_and_misguessed_buckets_all_return() {
    for overlap in [0, 1] {
        let fs = SimFs::new();
        let log = open(&fs, opts(overlap, 512));
        cycle(&fs);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let n = spawn_workers(&log, &stop, &tx, 40);
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        let ok = join_all(rx, n, Duration::from_secs(30));
        assert_eq!(ok, n, "no worker failed");
        log.close().unwrap();
    }
}

/// A failed fsync in the middle of the workload reaches every waiter, and none hangs.
#[test]
fn a_failed_fsync_amid_mixed_waiters_reaches_all_of_them() {
    let repeat: u64 = std::env::var("REVIEW113_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let cases = (0..repeat).flat_map(|r| [(0, 40 + r), (1, 57 + 3 * r), (1, 200 + r)]);
    for (overlap, nth) in cases {
        let fs = SimFs::new();
        let log = open(&fs, opts(overlap, 512));
        cycle(&fs);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let before = fs.op_count(Op::SyncData);
        fs.inject(Fault {
            op: Some(Op::SyncData),
            nth: before + nth,
            kind: FaultKind::Eio,
            // Persistent: a failed sync of the zeroer or of a prepared segment does not
            // poison, so a one-shot fault could be spent without poisoning.
            persistent: true,
        });
        let n = spawn_workers(&log, &stop, &tx, 36);
        // Every worker ends with its first error; give them time to meet it.
        let ok = join_all(rx, n, Duration::from_secs(30));
        stop.store(true, Ordering::Relaxed);
        assert_eq!(ok, 0, "every worker met the poisoning");
        assert!(log.close().is_err());
    }
}

/// `close` races the workload: every waiter returns (Ok only once durable), close returns.
#[test]
fn close_racing_mixed_waiters_strands_nobody() {
    for round in 0..4 {
        let fs = SimFs::new();
        let log = open(&fs, opts(round % 2, 512));
        cycle(&fs);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let n = spawn_workers(&log, &stop, &tx, 32);
        std::thread::sleep(Duration::from_millis(300 + 100 * round as u64));
        let closer = {
            let log = log.clone();
            std::thread::spawn(move || log.close())
        };
        join_all(rx, n, Duration::from_secs(30));
        stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !closer.is_finished() {
            assert!(Instant::now() < deadline, "close hangs");
            std::thread::sleep(Duration::from_millis(10));
        }
        closer.join().unwrap().unwrap();
    }
}

/// A lone thread asked to lead (its slot rung) while its bucket-mates sleep on: one waiter
/// per bucket and slot collisions, with the leader stopping after each round
/// (`MAX_ROUNDS_PER_LEADER` forces hand-offs on a busy log).
#[test]
fn hand_offs_to_threads_sharing_a_slot_are_received() {
    let fs = SimFs::new();
    let log = open(&fs, opts(1, 1 << 20));
    fs.set_sync_latency(Duration::from_micros(200));
    let done = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    // 57 threads: slots 0..28 taken twice over, and one more.
    let n = 57;
    for t in 0..n {
        let (log, tx, done) = (log.clone(), tx.clone(), done.clone());
        std::thread::spawn(move || {
            for _ in 0..200 {
                let a = log.submit(record(&log)).unwrap();
                log.wait_durable(a.lsn).unwrap();
                check_ok(&log, a.lsn, "hand-off");
            }
            done.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send((format!("t{t}"), true));
        });
    }
    assert_eq!(join_all(rx, n, Duration::from_secs(30)), n);
    log.close().unwrap();
}

/// A round panics (in the seal listener) while 40 blocked threads sleep on the bell: the
/// claim's drop poisons, and every one of them gets the error.
#[test]
fn a_panicking_round_reaches_every_blocked_waiter() {
    let fs = SimFs::new();
    let log = open(&fs, opts(1, 1 << 20));
    let (in_tx, in_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (in_tx, go_rx) = (std::sync::Mutex::new(in_tx), std::sync::Mutex::new(go_rx));
    log.set_seal_listener(Box::new(move |_, _| {
        let _ = in_tx.lock().unwrap().send(());
        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(20));
        panic!("seal listener panics");
    }));
    log.append_record_for_test().unwrap();
    let roller = {
        let log = log.clone();
        std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| log.roll())).is_err()
        })
    };
    in_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let (tx, rx) = mpsc::channel();
    let n = 40;
    for t in 0..n {
        let (log, tx) = (log.clone(), tx.clone());
        std::thread::spawn(move || {
            let r = log.append_record_for_test();
            let _ = tx.send((format!("t{t}"), r.is_ok()));
        });
    }
    // Let them all fall asleep on the bell behind the stuck round.
    std::thread::sleep(Duration::from_millis(300));
    go_tx.send(()).unwrap();
    assert_eq!(
        join_all(rx, n, Duration::from_secs(30)),
        0,
        "every waiter failed"
    );
    assert!(roller.join().unwrap(), "the roll's round panicked");
}

/// A thread-local's destructor that appends (say, a logger flushing at thread exit) while
/// another thread leads: the slot is read from thread-local storage during its teardown.
#[test]
fn a_wait_from_a_thread_local_destructor_works() {
    struct AtExit(SegmentLog<SimFs>, mpsc::Sender<(String, bool)>);
    impl Drop for AtExit {
        fn drop(&mut self) {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for _ in 0..50 {
                    self.0.append_record_for_test().unwrap();
                }
            }))
            .is_ok();
            let _ = self.1.send(("at exit".into(), ok));
        }
    }
    thread_local! {
        static AT_EXIT: std::cell::RefCell<Option<AtExit>> = const { std::cell::RefCell::new(None) };
    }
    let fs = SimFs::new();
    let log = open(&fs, opts(0, 1 << 20));
    fs.set_sync_latency(Duration::from_millis(1));
    let busy = BusyAppenders::start(&log, 3, 100);
    let (tx, rx) = mpsc::channel();
    let n = 8;
    for _ in 0..n {
        let (log, tx) = (log.clone(), tx.clone());
        std::thread::spawn(move || {
            AT_EXIT.with(|c| *c.borrow_mut() = Some(AtExit(log, tx)));
        });
    }
    let ok = join_all(rx, n, Duration::from_secs(30));
    drop(busy);
    assert_eq!(ok, n);
}

/// Not the bell's (the same before it): a wait for an LSN nobody submitted — on a read-only
/// log, or past the last submit — led empty rounds in a loop at 100% CPU, forever. It now
/// ends at once with `NotSubmitted`, blocking or async, and a real wait still works after.
#[test]
fn a_wait_for_an_lsn_never_submitted_ends() {
    fn ends_not_submitted(
        what: &str,
        wait: impl FnOnce() -> seglog_segment::Result<()> + Send + 'static,
    ) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(wait()));
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Err(seglog_segment::Error::NotSubmitted { .. })) => {}
            Ok(other) => panic!("{what}: expected NotSubmitted, got {other:?}"),
            Err(_) => panic!("{what}: still waiting after 10 s"),
        }
    }
    let fs = SimFs::new();
    let log = Arc::new(open(&fs, opts(0, 1 << 20)));
    let last = log.append_record_for_test().unwrap();
    let l = log.clone();
    ends_not_submitted("writable, past the last submit", move || {
        l.wait_durable(last + 1)
    });
    let l = log.clone();
    ends_not_submitted("async, past the last submit", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(l.wait_durable_async(last + 5))
    });
    let next = log.append_record_for_test().unwrap();
    assert_eq!(next, last + 1);
    log.wait_durable(next).unwrap();
    Arc::try_unwrap(log).ok().unwrap().close().unwrap();
    let ro = SegmentLog::open_read_only(fs.clone(), "/log", &mut ())
        .unwrap()
        .0;
    ro.wait_durable(next).unwrap();
    ends_not_submitted("read-only", move || ro.wait_durable(next + 5));
}
