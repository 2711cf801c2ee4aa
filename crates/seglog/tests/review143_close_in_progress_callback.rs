//! Review 143's fix makes a second close wait for the first. One caller cannot: a compaction's
//! progress callback, while another thread's close waits for that compaction (close takes the
//! compaction lock). It must neither hang nor report a flush it did not wait for: it fails
//! with `Closed` at once, and the first close then finishes as usual.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::Plan;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::time::{Duration, Instant};

#[test]
fn a_close_from_the_progress_callback_of_a_compaction_another_close_waits_for() {
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
        let mut inner_close = None;
        let mut first_close = None;
        let r = compacting.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {
            if first_close.is_some() {
                return;
            }
            // Another thread closes: it waits for this compaction.
            let closer = compacting.clone();
            first_close = Some(std::thread::spawn(move || closer.close()));
            let began = Instant::now();
            while !compacting.is_closed() {
                assert!(began.elapsed() < Duration::from_secs(20));
                std::thread::yield_now();
            }
            // Let that close reach the gate and the compaction lock.
            std::thread::sleep(Duration::from_millis(50));
            inner_close = Some(compacting.close());
        });
        let first = first_close.map(|t| t.join().unwrap());
        let _ = tx.send((r.map(|_| ()).map_err(|e| e.to_string()), inner_close, first));
    });
    let (compacted, inner, first) = rx.recv_timeout(Duration::from_secs(20)).expect(
        "a close from the progress callback hung while another close waited for the compaction",
    );
    eprintln!(
        "compaction: {compacted:?}; close in the callback: {inner:?}; first close: {first:?}"
    );
    assert!(
        matches!(inner, Some(Err(seglog::Error::Closed))),
        "the callback's close could not wait for the running one, so it must not report Ok: {inner:?}"
    );
    assert!(matches!(first, Some(Ok(()))), "{first:?}");
    let reopened = Log::open_blocking(dir.path(), opts).unwrap();
    assert_eq!(reopened.read("keep").unwrap().len(), 1);
    reopened.close().unwrap();
}
