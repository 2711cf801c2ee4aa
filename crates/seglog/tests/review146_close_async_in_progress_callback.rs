//! Review 146 (e751268): `Log::close_async` outside a tokio runtime runs the claimed close in
//! place (`Started::Ended(ClaimedClose { .. }.run())`), and `ClaimedClose::run` calls
//! `close_holding(turn, false)`: `on_compaction_thread` is hard-coded false. Called from a
//! compaction's progress callback (compact_blocking on a plain thread), `close_holding` then
//! takes `shared.compaction.lock()` on the very thread that holds it (compact_locked's
//! `_one_at_a_time`): parking_lot's mutex is not reentrant, the thread hangs for good, and
//! the compaction, the close and the directory lock with it. Before the commit the same call
//! ran `log.close()`, which saw the compaction thread and closed without that lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::Plan;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::time::Duration;

#[test]
fn close_async_from_a_progress_callback_outside_a_runtime_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open_blocking(dir.path(), opts.clone()).unwrap();
    for i in 0..100 {
        let event = format!("gone {i} {}", "g".repeat(60));
        log.append_blocking("gone", "t", event.as_bytes()).unwrap();
    }
    log.append_blocking("keep", "t", b"k").unwrap();
    let plan = Plan {
        drop_executions: ["gone".to_string()].into_iter().collect(),
        ..Plan::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let compacting = log.clone();
    std::thread::spawn(move || {
        eprintln!("compaction thread {:?}", std::thread::current().id());
        let mut closing = None;
        let r = compacting.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {
            if closing.is_none() {
                // No tokio runtime on this thread: the close runs now, in place.
                eprintln!(
                    "callback on {:?}, runtime: {}",
                    std::thread::current().id(),
                    tokio::runtime::Handle::try_current().is_ok()
                );
                closing = Some(compacting.close_async());
                eprintln!("close_async returned; closed: {}", compacting.is_closed());
            }
        });
        let closed = closing.map(|f| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(f)
                .map_err(|e| e.to_string())
        });
        let _ = tx.send((r.map(|_| ()).map_err(|e| e.to_string()), closed));
    });
    let (compacted, closed) = rx.recv_timeout(Duration::from_secs(20)).expect(
        "close_async from a compaction's progress callback (outside a runtime) hung: it \
         takes the compaction lock its own thread holds",
    );
    eprintln!("compaction: {compacted:?}; close_async in the callback: {closed:?}");
    drop(log);
    let reopened = Log::open_blocking(dir.path(), opts).unwrap();
    assert_eq!(reopened.read("keep").unwrap().len(), 1);
    reopened.close().unwrap();
}
