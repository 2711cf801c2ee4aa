//! Review 164: on a current-thread runtime, the last handle's drop blocks the runtime's only
//! thread for a round that needs that very runtime, 5 s per log.
//!
//! Commit 68dff88 says the drop "does not wait where it would wait for itself: on a runner
//! thread, or in code the log calls back". It does wait for itself here. A round on the
//! round runner runs inside the handing task's runtime context precisely so that its seal
//! listener may spawn tasks there (review 149); a listener that spawns its work as a task
//! and waits for that task's answer needs the runtime's thread to run it. On a
//! current-thread runtime that thread is the one blocked in `LastHandle::drop` (a task that
//! owned the log ended, right after one of its async appends was cancelled), so the round
//! cannot end before the drop gives up after `LAST_HANDLE_WAIT`. Meanwhile the whole runtime
//! stands still: every task, timer and socket. Two tenant tasks ending one after the other
//! stall it ~10 s, more than the bound: each task's drop waits in turn, and the bound
//! is per drop.
//!
//! Root cause: `wait_until_led` cannot know whether the round needs the dropping thread; it
//! only excludes runner threads and callbacks, not a worker of the runtime the round runs
//! in (here the runtime's only thread), and the 5 s bound adds up over logs.
//!
//! Expected (fails on the current code): the runtime gets through both tasks' ends within
//! one `LAST_HANDLE_WAIT` (plus a second of slack); every round is a 20 ms fsync.
//!
//! Fixed (2026-12-08): the last handle's drop no longer waits for the runner's rounds; an
//! open of the directory in this process waits for the departing log instead
//! (`departing.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::mpsc;
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

const TENANTS: usize = 2;

#[test]
fn a_current_thread_runtime_stalls_five_seconds_per_log_dropped() {
    let fs = SimFs::new();
    fs.set_sync_latency(Duration::from_millis(20));
    let mut logs = Vec::new();
    for t in 0..TENANTS {
        let (log, _) =
            SegmentLog::open(fs.clone(), format!("/logs/t{t}"), opts(), &mut ()).unwrap();
        // The listener hands the sealed segment to a task (an uploader, say) on the runtime
        // the round runs in, and waits for its answer.
        log.set_seal_listener(Box::new(move |info, _| {
            let number = info.number;
            let (tx, rx) = mpsc::channel();
            drop(tokio::spawn(async move {
                let _ = tx.send(number);
            }));
            let _ = rx.recv();
        }));
        let first = [b'a'; 2100];
        log.append(&batch(&[&first[..]])).unwrap();
        logs.push(log);
    }

    let (done_tx, done_rx) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for log in logs {
                // A tenant's task: one append cancelled (a request timed out), then the task
                // ends and its log (the last handle) goes with it.
                tasks.push(tokio::spawn(async move {
                    {
                        let second = [b'b'; 2100];
                        let payload = [&second[..]];
                        let second = batch(&payload);
                        let mut append = std::pin::pin!(log.append_async(&second));
                        std::future::poll_fn(|cx| {
                            let _ = std::future::Future::poll(append.as_mut(), cx);
                            std::task::Poll::Ready(())
                        })
                        .await;
                    }
                    drop(log);
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        });
        let took = started.elapsed();
        drop(rt);
        done_tx.send(took).unwrap();
    });
    let took = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the current-thread runtime hung for a minute");
    runner.join().unwrap();
    // The rounds ended once the runtime ran again: the directories are free.
    for t in 0..TENANTS {
        let mut reopened = None;
        for _ in 0..500 {
            match SegmentLog::open(fs.clone(), format!("/logs/t{t}"), opts(), &mut ()) {
                Ok((log, _)) => {
                    reopened = Some(log);
                    break;
                }
                Err(seglog_segment::Error::Locked { .. }) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("reopen: {e}"),
            }
        }
        reopened.expect("directory stayed locked").close().unwrap();
    }
    assert!(
        took < Duration::from_secs(6),
        "the current-thread runtime stood still for {took:?}: each of {TENANTS} last-handle \
         drops on its only thread waited up to 5 s for a round whose seal listener waits for a \
         task of that very runtime"
    );
}
