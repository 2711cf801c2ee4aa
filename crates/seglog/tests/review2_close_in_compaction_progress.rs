//! FINDING (low): `Log::close` now takes the compaction mutex (log.rs, "close waits for
//! compaction"). `compact_blocking` holds that mutex while it calls the caller's `progress`
//! callback. A progress callback that closes the log (a shutdown handler reached from it, or
//! simply a clone of the `Log` closed on cancellation) blocks forever: parking_lot's mutex is
//! not re-entrant, and close has already set `closed`, so nothing else can finish either.
//! Before this change close did not touch that mutex. The docs of `close`/`compact_blocking`
//! do not forbid it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::Plan;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::time::Duration;

#[test]
fn closing_the_log_from_compactions_progress_callback_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open_blocking(dir.path(), opts).unwrap();
    for i in 0..100 {
        log.append_blocking(
            "gone",
            "t",
            format!("gone {i} {}", "g".repeat(60)).as_bytes(),
        )
        .unwrap();
    }
    log.append_blocking("keep", "t", b"k").unwrap();
    let plan = Plan {
        drop_executions: ["gone".to_string()].into_iter().collect(),
        ..Plan::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let closer = log.clone();
    std::thread::spawn(move || {
        let mut closed = false;
        let r = log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {
            if !closed {
                closed = true;
                // e.g. a shutdown requested while compacting
                let _ = closer.close();
            }
        });
        let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(r) => eprintln!("compaction returned: {r:?}"),
        Err(_) => panic!("compaction + close from its progress callback hung for 20 s (deadlock on the compaction mutex)"),
    }
}
