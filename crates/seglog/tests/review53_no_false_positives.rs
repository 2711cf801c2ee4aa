//! Review 53 (held): compactions of every policy, automatic retention, batches, buffered
//! appends + sync, rolls, erasures and re-creations under the same id, reopen from
//! checkpoints and compaction of already-clustered segments, with global and per-execution
//! reads on other threads: no compaction is refused by dd532b7's record check and no read
//! fails (ff964b8).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Error, Log, Options, Retention};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// False positives: a log written only through the public API; every compaction must
// succeed and no read may fail, whatever runs at the same time.

fn live_options(retention: bool) -> Options {
    let o = Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
        .overlap_min_records(1)
        .prepare_next_segment(true)
        .buffered_write_bytes(1024);
    if retention {
        o.retention(
            Retention::default()
                .max_log_bytes(48 * 1024)
                .interval(Duration::from_millis(5)),
        )
    } else {
        o
    }
}

fn run_phase(dir: &Path, phase: u64, retention: bool) {
    let log = Log::open_blocking(dir, live_options(retention)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let appends = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for w in 0..3u64 {
        let (log, stop, appends) = (log.clone(), stop.clone(), appends.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let tenant = if (i + w).is_multiple_of(4) {
                    "gone"
                } else {
                    "keep"
                };
                let exec = format!("{tenant}-{}", (i * 7 + w) % 9);
                let body = format!(
                    "{exec} {phase} {i} {}",
                    "p".repeat(((i * 31 + w) % 200) as usize)
                );
                let r = match (i + w) % 7 {
                    0 | 5 => log
                        .append_blocking(&exec, tenant, body.as_bytes())
                        .map(|_| ()),
                    1 => log
                        .append_batch_blocking(&exec, tenant, &[body.as_bytes(), b"b2", b"b3"])
                        .map(|_| ()),
                    2 => log
                        .append_batch_buffered(&exec, tenant, &[body.as_bytes(), b"x"])
                        .map(|_| ()),
                    3 => log
                        .append_batch_buffered(&exec, tenant, &[body.as_bytes()])
                        .map(|_| ()),
                    4 => log.sync_blocking(),
                    _ => log.roll_blocking().map(|_| ()),
                };
                match r {
                    Ok(()) | Err(Error::Erasing { .. }) => {}
                    Err(e) => panic!("writer {w}: {e}"),
                }
                if i.is_multiple_of(5) {
                    match log.read_global(0, usize::MAX) {
                        Ok(_) => {}
                        Err(e) => panic!("writer {w}: read_global: {e}"),
                    }
                    log.latest_lsn().unwrap();
                    for e in 0..9 {
                        log.read(&format!("keep-{e}"))
                            .unwrap_or_else(|err| panic!("read keep-{e}: {err}"));
                    }
                }
                i += 1;
                appends.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for round in 0..14u64 {
        let a = appends.load(Ordering::Relaxed);
        while appends.load(Ordering::Relaxed) < a + 30 {
            std::thread::yield_now();
        }
        let view = log.compaction_view(true).unwrap();
        let finished = |e: &seglog::compaction::ExecutionSummary| e.events.is_multiple_of(2);
        let plan = match (round + phase) % 10 {
            0 => policy::cluster_sealed_segments(&view),
            1 => policy::merge_small_segments(&view, 8 * 1024, 16 * 1024),
            2 => policy::drop_executions(&view, [format!("gone-{}", round % 9).as_str()]),
            3 => policy::rewrite_all_sealed(&view),
            4 => policy::cluster_finished(&view, finished),
            5 => policy::drop_tenant(&view, "gone"),
            6 => policy::keep_log_under(&view, 64 * 1024),
            7 => policy::drop_finished_before(&view, Duration::ZERO, finished),
            8 => policy::drop_older_than(&view, Duration::from_millis(50)),
            _ => policy::cluster_sealed_segments(&view),
        };
        if let Err(e) = log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {}) {
            stop.store(true, Ordering::Relaxed);
            panic!("phase {phase} round {round}: compaction failed: {e}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let stats = log.stats();
    assert_eq!(
        stats.retention.failures, 0,
        "retention: {:?}",
        stats.retention.last_error
    );
    log.sync_blocking().unwrap();
    let before = log.read_global(0, usize::MAX).unwrap();
    log.close().unwrap();
    let log = Log::open_blocking(dir, live_options(false)).unwrap();
    let after = log.read_global(0, usize::MAX).unwrap();
    if retention {
        // Retention may have dropped whole executions between `before` and the close.
        let kept: std::collections::BTreeSet<&str> =
            after.iter().map(|r| r.execution.as_str()).collect();
        let expected: Vec<_> = before
            .iter()
            .filter(|r| kept.contains(r.execution.as_str()))
            .cloned()
            .collect();
        assert_eq!(after, expected);
    } else {
        assert_eq!(after, before);
    }
    // Already compacted, reopened from checkpoints: compact again.
    let view = log.compaction_view(false).unwrap();
    log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    log.close().unwrap();
}

#[test]
fn compactions_of_every_policy_never_refuse_a_log_written_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    for phase in 0..3 {
        run_phase(dir.path(), phase, phase == 1);
    }
}
