//! Review 149: a round that a spawned task wins used to run on tokio's blocking pool, inside
//! the runtime's context; it now runs on the log's round runner, a plain `std::thread`
//! (`writer/round_runner.rs`) with no runtime context. The seal listener runs inside the
//! round (roll.rs `seal_segment`), so a listener that hands the sealed segment to async code
//! (`tokio::spawn`, `Handle::current()`: an uploader, a notifier) worked for an all-async
//! application and now panics on the runner's thread — and a panic in a round poisons the
//! log: every later append fails until the log is reopened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(id: &'a [u8], p: &'a [&'a [u8]]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: id,
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: p,
    }
}

#[test]
fn a_seal_listener_that_spawns_async_work_does_not_poison_a_log_appended_to_by_tasks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let uploaded = Arc::new(AtomicUsize::new(0));
    let in_listener = uploaded.clone();
    log.set_seal_listener(Box::new(move |_, _| {
        // Hand the sealed segment to async code (here: count it).
        eprintln!(
            "listener on {:?}, runtime: {}",
            std::thread::current().name(),
            tokio::runtime::Handle::try_current().is_ok()
        );
        let uploaded = in_listener.clone();
        tokio::spawn(async move {
            uploaded.fetch_add(1, Ordering::Relaxed);
        });
    }));
    let results: Vec<_> = rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..2u8 {
            let log = log.clone();
            handles.push(tokio::spawn(async move {
                let filler = [b'a' + t; 1000];
                let mut out = Vec::new();
                for _ in 0..8 {
                    out.push(
                        log.append_async(&batch(b"x", &[&filler[..]]))
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                    );
                }
                out
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all
    });
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    eprintln!("poisoned: {:?}; failed appends: {failed:?}", log.poisoned());
    assert!(
        failed.is_empty() && log.poisoned().is_none(),
        "appends from spawned tasks failed: the seal listener ran on the round runner's \
         thread, outside the runtime, and its tokio::spawn panicked inside the round"
    );
    assert!(log.segments().len() > 1, "setup: no segment was sealed");
}
