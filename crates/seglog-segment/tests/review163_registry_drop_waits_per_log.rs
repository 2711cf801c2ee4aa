//! Review 163: the last handle's drop is bounded per log (5 s), not per program, so a
//! program that drops several logs at once hangs for 5 s times the number of logs.
//!
//! The shape: a multi-tenant service keeps one log per tenant in a registry behind one
//! mutex, and each log's seal listener records the sealed segment in that registry (the
//! listener is "short", as the docs ask: one lock and one push). Each tenant had an async
//! append cancelled (a request timeout), so each log has a round on its round runner, and
//! that round's seal listener waits for the registry's mutex. Shutdown clears the registry
//! under its mutex (`registry.lock().logs.clear()`): every log's `LastHandle::drop` now
//! waits (commit 68dff88) for a round that waits for the dropping thread's mutex. Each wait
//! gives up after `LAST_HANDLE_WAIT`, one log after the other: three logs hang the shutdown
//! for ~15 s, five for ~25 s. Before 68dff88 no drop blocked at all; review 162 only
//! checked one log, where the 5 s "bound" looks like a bound.
//!
//! Root cause: `RoundRunner::wait_until_led` blocks the dropping thread although the round
//! it waits for may be waiting for that very thread (any lock it holds), and the code cannot
//! tell; the 5 s bound only caps each occurrence, and nothing caps their sum.
//!
//! Expected (fails on the current code): clearing the registry of three logs stays within
//! the documented bound of one `LAST_HANDLE_WAIT` (5 s, plus a second of slack); it takes
//! ~15 s.
//!
//! Fixed (2026-12-08): the last handle's drop no longer waits for the runner's rounds; an
//! open of the directory in this process waits for the departing log instead
//! (`departing.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
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

#[derive(Default)]
struct Registry {
    logs: HashMap<String, SegmentLog<SimFs>>,
    sealed: Vec<(String, u64)>,
}

const TENANTS: usize = 3;

#[test]
fn clearing_a_registry_of_logs_hangs_five_seconds_per_log() {
    let fs = SimFs::new();
    fs.set_sync_latency(Duration::from_millis(2));
    let registry = Arc::new(Mutex::new(Registry::default()));
    let entered = Arc::new(AtomicUsize::new(0));
    let mut mine = Vec::new();
    for t in 0..TENANTS {
        let name = format!("tenant{t}");
        let (log, _) =
            SegmentLog::open(fs.clone(), format!("/logs/{name}"), opts(), &mut ()).unwrap();
        {
            let (registry, entered, name) =
                (Arc::downgrade(&registry), entered.clone(), name.clone());
            log.set_seal_listener(Box::new(move |info, _| {
                entered.fetch_add(1, Ordering::SeqCst);
                if let Some(registry) = registry.upgrade() {
                    registry
                        .lock()
                        .unwrap()
                        .sealed
                        .push((name.clone(), info.number));
                }
            }));
        }
        let first = [b'a'; 2100];
        log.append(&batch(&[&first[..]])).unwrap();
        registry.lock().unwrap().logs.insert(name, log.clone());
        mine.push(log);
    }

    // The shutdown thread: takes the registry's mutex, then clears it on a signal.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let shutdown = {
        let registry = registry.clone();
        std::thread::spawn(move || {
            let mut reg = registry.lock().unwrap();
            locked_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            let started = Instant::now();
            reg.logs.clear();
            let took = started.elapsed();
            drop(reg);
            done_tx.send(took).unwrap();
        })
    };
    locked_rx.recv().unwrap();

    // Each tenant: an async append (a record that cannot fit the segment: its round seals
    // the first one) cancelled after its first poll; the round goes to the log's runner.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for log in mine.drain(..) {
        rt.block_on(async move {
            tokio::spawn(async move {
                let second = [b'b'; 2100];
                let payload = [&second[..]];
                let second = batch(&payload);
                let mut append = std::pin::pin!(log.append_async(&second));
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while entered.load(Ordering::SeqCst) < TENANTS {
        assert!(
            Instant::now() < deadline,
            "setup: the runners' rounds never called the seal listeners"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    go_tx.send(()).unwrap();
    let took = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("clearing the registry hung for a minute");
    shutdown.join().unwrap();
    drop(rt);
    assert!(
        took < Duration::from_secs(6),
        "clearing a registry of {TENANTS} logs blocked the shutdown thread for {took:?}: each \
         log's last-handle drop waited up to 5 s for a round whose seal listener waits for the \
         dropping thread's mutex, one log after the other"
    );
}
