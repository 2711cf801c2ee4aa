//! Review 172 (held): attacks on commit 7bbea4e's departure registry that were tried hard
//! and *held* on the current code. In each, a cancelled async append's round is still on
//! the round runner when the last handle goes:
//!
//! - two writers: many cycles of drop-then-reopen at once, the reopened log appending and
//!   acknowledging records while the old round could still write; every acknowledged record
//!   of every generation reads back intact after a final reopen (the `departure` field is
//!   dropped after `dir_lock`, and only `Inner`'s drop or the idle last-handle drop ends
//!   the lock; `release_lock`/`close` need a handle, and no round starts once none is
//!   left);
//! - the last handle dropped *inside* the departing round (a seal listener that owns it):
//!   no deadlock or panic (`Departure::new` takes only the registry's mutex, never under
//!   the commit lock), and the directory reopens;
//! - two departures of one path at once (two `SimFs`), ended in either order: the
//!   registry counts them per log, and an open of each waits (at most for the longer one)
//!   and succeeds;
//! - an open that finds the directory locked by a live log of this process (no
//!   departure): `Locked` at once, no wait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{Appended, Error, SegmentLog, SegmentOptions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 3000,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(payload: &'a [&'a [u8]; 1]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"x",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: payload,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A spawned task's append on `rt`, polled once and dropped (its round goes to the runner).
fn cancelled_append(rt: &tokio::runtime::Runtime, log: &SegmentLog<SimFs>, payload: Vec<u8>) {
    let in_task = log.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let p = [&payload[..]];
            let b = batch(&p);
            let mut append = std::pin::pin!(in_task.append_async(&b));
            std::future::poll_fn(|cx| {
                let _ = std::future::Future::poll(append.as_mut(), cx);
                std::task::Poll::Ready(())
            })
            .await;
        })
        .await
        .unwrap();
    });
}

fn wait_sync(fs: &SimFs, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.syncs_started() == before {
        assert!(Instant::now() < deadline, "setup: no fsync began");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn check(log: &SegmentLog<SimFs>, acked: &[(Appended, Vec<u8>)]) {
    for (a, payload) in acked {
        let rec = log
            .read(a.position)
            .unwrap_or_else(|e| panic!("acknowledged lsn {} lost: {e}", a.lsn));
        assert_eq!(rec.view().lsn(), a.lsn, "acknowledged record overwritten");
        let events: Vec<&[u8]> = rec.view().events().collect();
        assert_eq!(events, vec![&payload[..]], "lsn {} changed", a.lsn);
    }
}

#[test]
fn drop_then_reopen_at_once_never_gives_two_writers() {
    let fs = SimFs::new();
    let rt = runtime();
    let mut acked: Vec<(Appended, Vec<u8>)> = Vec::new();
    for cycle in 0..12u8 {
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        check(&log, &acked);
        for i in 0..3u8 {
            let payload = vec![cycle.wrapping_mul(7).wrapping_add(i); 700];
            let a = log.append(&batch(&[&payload[..]])).unwrap();
            acked.push((a, payload));
        }
        fs.set_sync_latency(Duration::from_millis(60));
        let before = fs.syncs_started();
        cancelled_append(&rt, &log, vec![0xEE; 900 + usize::from(cycle) * 40]);
        wait_sync(&fs, before);
        fs.set_sync_latency(Duration::ZERO);
        drop(log);
    }
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    check(&log, &acked);
    log.close().unwrap();
}

#[test]
fn last_handle_dropped_inside_the_departing_round() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let first = vec![b'a'; 2100];
    let a = log.append(&batch(&[&first[..]])).unwrap();
    let owned: Arc<Mutex<Option<SegmentLog<SimFs>>>> = Arc::new(Mutex::new(None));
    {
        let owned = owned.clone();
        log.set_seal_listener(Box::new(move |_, _| {
            // The listener ends the log's last handle, inside the round, on the runner.
            drop(owned.lock().unwrap().take());
        }));
    }
    *owned.lock().unwrap() = Some(log.clone());
    fs.set_sync_latency(Duration::from_millis(50));
    let rt = runtime();
    cancelled_append(&rt, &log, vec![b'b'; 2100]);
    drop(log);
    drop(rt);
    fs.set_sync_latency(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(10);
    while owned.lock().unwrap().is_some() {
        assert!(Instant::now() < deadline, "the round never sealed");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .expect("the reopen after a drop inside the round");
    check(&log, &[(a, first)]);
    log.close().unwrap();
}

#[test]
fn two_departures_of_one_path_on_two_file_systems() {
    for short_first in [true, false] {
        let fss = [SimFs::new(), SimFs::new()];
        let rt = runtime();
        let latencies = if short_first {
            [Duration::from_millis(200), Duration::from_millis(700)]
        } else {
            [Duration::from_millis(700), Duration::from_millis(200)]
        };
        let mut acked = Vec::new();
        for (fs, latency) in fss.iter().zip(latencies) {
            let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
            let a = log.append(&batch(&[b"acked".as_slice()])).unwrap();
            acked.push(a);
            fs.set_sync_latency(latency);
            let before = fs.syncs_started();
            cancelled_append(&rt, &log, b"cancelled".to_vec());
            wait_sync(fs, before);
            fs.set_sync_latency(Duration::ZERO);
            drop(log);
        }
        for (fs, a) in fss.iter().zip(acked) {
            let started = Instant::now();
            let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
                .expect("reopen with two departures of one path");
            assert!(started.elapsed() < Duration::from_secs(3));
            check(&log, &[(a, b"acked".to_vec())]);
            log.close().unwrap();
        }
    }
}

#[test]
fn a_live_log_of_this_process_is_reported_locked_at_once() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let started = Instant::now();
    let second = SegmentLog::open(fs.clone(), "/log", opts(), &mut ());
    assert!(matches!(second, Err(Error::Locked { .. })));
    assert!(started.elapsed() < Duration::from_millis(500));
    log.close().unwrap();
}
