//! Review 147: `Log::close_async` from a compaction's progress callback while another
//! thread's `close` waits for that compaction. `Log::close` from the same place is told
//! Busy and returns `Closed` at once (it passes `may_wait = !on_compaction_thread`), but
//! `close_async` never looks at the compaction thread before `claim()`: the claim fails
//! (the gate is `Closing(Some(other))`), it takes `Started::Elsewhere`, and its future waits
//! on `close_gate.ended()` for a close that itself waits for the compaction running the
//! callback. Awaited there, it never ends: the compaction, both closes and the directory
//! lock hang for good. Before the change the same call returned at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::Plan;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::time::Duration;

#[test]
fn close_async_from_a_progress_callback_while_another_close_waits_does_not_hang() {
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
        let mut done = None;
        let r = compacting.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {
            if done.is_some() {
                return;
            }
            // Another thread closes: it waits for this compaction.
            let other = compacting.clone();
            std::thread::spawn(move || {
                let _ = other.close();
            });
            std::thread::sleep(Duration::from_millis(300));
            eprintln!(
                "callback: slept; compaction thread {:?}",
                std::thread::current().id()
            );
            // The sync close here is told Closed at once ...
            let sync_close = compacting.close().map_err(|e| e.to_string());
            eprintln!("sync close in the callback: {sync_close:?}");
            // ... and the async one, awaited here, should end the same way.
            let f = compacting.close_async();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let async_close = rt.block_on(f).map_err(|e| e.to_string());
            done = Some((sync_close, async_close));
        });
        let _ = tx.send((r.map(|_| ()).map_err(|e| e.to_string()), done));
    });
    let (compacted, closes) = rx.recv_timeout(Duration::from_secs(20)).expect(
        "close_async awaited in a compaction's progress callback, while another thread's \
         close waits for that compaction, hung (close from the same place returns Closed)",
    );
    eprintln!("compaction: {compacted:?}; closes in the callback: {closes:?}");
}
