//! Review 54: root futures (`block_on`, or polled outside tokio) relay their group's
//! wake-ups. Every acknowledged waiter must return, whatever a root future's own code does
//! (stall, leak, drop), and the wait a stalled relay adds must stay bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::waiting::{BusyAppenders, Noop, Unpark};
use seglog_segment::io::sim::{Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn opts(overlap: usize) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 256 << 10,
        max_record_size_bytes: 4096,
        overlap_min_records: overlap,
        ..SegmentOptions::default()
    }
}

fn open(fs: &SimFs, overlap: usize) -> SegmentLog<SimFs> {
    SegmentLog::open(fs.clone(), "/log", opts(overlap), &mut ())
        .unwrap()
        .0
}

fn record(log: &SegmentLog<SimFs>) -> seglog_segment::format::EncodedRecord {
    common::waiting::record(log, 200)
}

/// A plain `block_on` (thread-unpark waker), which may hold its thread up for `stall` after
/// each Pending (user code of its own).
fn block_on_stalling<T>(f: impl Future<Output = T>, stall: Duration) -> T {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        if !stall.is_zero() {
            std::thread::sleep(stall);
        }
        std::thread::park_timeout(Duration::from_millis(500));
    }
}

/// A root future polled once and then leaked heads a group with a blocking appender: the
/// appender returns one round later while the log stays busy, and at once when it idles.
#[test]
fn leaked_root_parents_strand_nobody_on_a_busy_log() {
    let fs = SimFs::new();
    let log = open(&fs, 0);
    fs.set_sync_latency(Duration::from_millis(20));
    // Busy appenders: the leader keeps leading.
    let busy = BusyAppenders::start(&log, 3, 200);
    let noop = Waker::from(Arc::new(Noop));
    for _ in 0..40 {
        let mine = log.submit(record(&log)).unwrap();
        let mut wait = Box::pin(log.wait_durable_async(mine.lsn));
        if wait
            .as_mut()
            .poll(&mut Context::from_waker(&noop))
            .is_ready()
        {
            continue;
        }
        // Blocking appenders right behind the leaked root.
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let (log, tx) = (log.clone(), tx.clone());
            std::thread::spawn(move || {
                let a = log.submit(record(&log)).unwrap();
                let r = log.wait_durable(a.lsn);
                tx.send((a.lsn, r)).unwrap();
            });
        }
        std::mem::forget(wait);
        for _ in 0..4 {
            let (lsn, r) = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("a blocking appender behind a leaked root future never returned");
            r.unwrap();
            assert!(log.durable_lsn() >= lsn);
        }
    }
    drop(busy);
}

/// Mixed callers — blocking threads, plain `block_on` roots that stall (their own code holds
/// the thread), tokio current-thread runtimes whose root joins appends with spawned tasks
/// (one of them blocking its runtime's thread), roots dropped early — all return, bounded.
#[test]
fn mixed_callers_all_return() {
    for overlap in [0usize, 1] {
        let fs = SimFs::new();
        let log = open(&fs, overlap);
        fs.set_sync_latency(Duration::from_millis(3));
        let done = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<String>();
        let mut handles = Vec::new();
        for t in 0..12u64 {
            let (log, done, tx) = (log.clone(), done.clone(), tx.clone());
            handles.push(std::thread::spawn(move || {
                for i in 0..40u64 {
                    match t % 4 {
                        0 => {
                            let a = log.submit(record(&log)).unwrap();
                            log.wait_durable(a.lsn).unwrap();
                        }
                        1 => {
                            let stall = Duration::from_millis(if i % 3 == 0 { 15 } else { 0 });
                            let a = log.submit(record(&log)).unwrap();
                            block_on_stalling(log.wait_durable_async(a.lsn), stall).unwrap();
                        }
                        2 => {
                            let rt = tokio::runtime::Builder::new_current_thread()
                                .build()
                                .unwrap();
                            rt.block_on(async {
                                let l2 = log.clone();
                                let task = tokio::spawn(async move {
                                    let a = l2.submit(record(&l2)).unwrap();
                                    l2.wait_durable_async(a.lsn).await.unwrap();
                                });
                                let l3 = log.clone();
                                let blocking_task = tokio::spawn(async move {
                                    // Blocks the runtime's only thread.
                                    let a = l3.submit(record(&l3)).unwrap();
                                    l3.wait_durable(a.lsn).unwrap();
                                });
                                let a = log.submit(record(&log)).unwrap();
                                let b = log.submit(record(&log)).unwrap();
                                let (x, y) = tokio::join!(
                                    log.wait_durable_async(a.lsn),
                                    log.wait_durable_async(b.lsn)
                                );
                                x.unwrap();
                                y.unwrap();
                                task.await.unwrap();
                                blocking_task.await.unwrap();
                            });
                        }
                        _ => {
                            // A root dropped after one poll (a select! that went the other
                            // way), then a blocking wait.
                            let a = log.submit(record(&log)).unwrap();
                            let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
                            {
                                let mut w = Box::pin(log.wait_durable_async(a.lsn));
                                let _ = w.as_mut().poll(&mut Context::from_waker(&waker));
                                std::thread::sleep(Duration::from_millis(i % 3));
                            }
                            log.wait_durable(a.lsn).unwrap();
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                tx.send(format!("thread {t} done")).unwrap();
            }));
        }
        drop(tx);
        for _ in 0..12 {
            rx.recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    panic!(
                        "overlap {overlap}: an appender hung ({} iterations done, {} fsyncs)",
                        done.load(Ordering::Relaxed),
                        fs.op_count(Op::SyncData)
                    )
                });
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(log.poisoned(), None);
        log.close().unwrap();
    }
}
