//! Review 52: the global-order checks of 2753958 (a record out of its segment's LSN range is
//! corruption) must never fire on a log written only through the public API, whatever runs
//! at the same time: appends of every kind with overlapping commit rounds and prepared
//! segments, rolls, buffered appends + sync, compactions that merge, cluster and erase,
//! a writer's global readers and a read-only follower's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Log, LogRecord, Options};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

fn opts(checkpoints: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(checkpoints)
        .overlap_min_records(1)
        .prepare_next_segment(true)
        .buffered_write_bytes(1024)
}

fn check_ordered(what: &str, recs: &[LogRecord], after: u64) {
    let mut prev = after;
    for r in recs {
        assert!(r.lsn > prev, "{what}: {} after {prev}", r.lsn);
        prev = r.lsn;
    }
}

fn global_reader(log: Log, stop: Arc<AtomicBool>, done: Arc<AtomicU64>, who: &str) -> u64 {
    let mut n = 0u64;
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if log.is_read_only() && k.is_multiple_of(3) {
            log.refresh()
                .unwrap_or_else(|e| panic!("{who}: refresh: {e}"));
        }
        let all = log
            .read_global(0, usize::MAX)
            .unwrap_or_else(|e| panic!("{who}: read_global(0): {e}"));
        check_ordered(who, &all, 0);
        if !all.is_empty() {
            let mid = all[(k as usize * 7919) % all.len()].lsn;
            let page = log
                .read_global(mid, 1 + (k as usize % 17))
                .unwrap_or_else(|e| panic!("{who}: read_global({mid}): {e}"));
            check_ordered(who, &page, mid);
            let mid1 = mid.saturating_sub(1 + k % 3);
            let page = log
                .read_global(mid1, 5)
                .unwrap_or_else(|e| panic!("{who}: read_global({mid1}): {e}"));
            check_ordered(who, &page, mid1);
        }
        let latest = log
            .latest_lsn()
            .unwrap_or_else(|e| panic!("{who}: latest_lsn: {e}"));
        if let Some(last) = all.last() {
            assert!(latest >= last.lsn, "{who}: latest {latest} < {}", last.lsn);
        }
        k += 1;
        n += 1;
        done.fetch_add(1, Ordering::Relaxed);
    }
    n
}

fn run(checkpoints: CheckpointMode) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(checkpoints)).unwrap();
    for i in 0..200u64 {
        let t = if i % 3 == 0 { "gone" } else { "keep" };
        log.append_blocking(
            &format!("{t}-{}", i % 7),
            t,
            format!("seed {i} {}", "s".repeat((i % 50) as usize)).as_bytes(),
        )
        .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let appends = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (log, stop, appends) = (log.clone(), stop.clone(), appends.clone());
        writers.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = if (i + w).is_multiple_of(3) {
                    "gone"
                } else {
                    "keep"
                };
                let exec = format!("{t}-w{w}-{}", i % 5);
                let body = format!("{exec} {i} {}", "p".repeat(((i * 13 + w) % 300) as usize));
                let r = match (i + w) % 6 {
                    0 => log.append_blocking(&exec, t, body.as_bytes()).map(|_| ()),
                    1 => log
                        .append_batch_blocking(&exec, t, &[body.as_bytes(), b"b2", b"b3"])
                        .map(|_| ()),
                    2 => rt
                        .block_on(log.append(&exec, t, body.as_bytes()))
                        .map(|_| ()),
                    3 => log
                        .append_batch_buffered(&exec, t, &[body.as_bytes()])
                        .map(|_| ()),
                    4 => log.sync_blocking(),
                    _ => {
                        if i.is_multiple_of(11) {
                            log.roll_blocking().map(|_| ())
                        } else {
                            log.append_blocking(&exec, t, body.as_bytes()).map(|_| ())
                        }
                    }
                };
                match r {
                    Ok(()) | Err(seglog::Error::Erasing { .. }) => {}
                    Err(e) => panic!("writer {w}: {e}"),
                }
                i += 1;
                appends.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2 {
        let (log, stop, reads) = (log.clone(), stop.clone(), reads.clone());
        readers.push(std::thread::spawn(move || {
            global_reader(
                log,
                stop,
                reads,
                if r == 0 {
                    "writer-side reader 0"
                } else {
                    "writer-side reader 1"
                },
            )
        }));
    }
    let follower = Log::open_read_only_blocking(dir.path()).unwrap();
    {
        let (log, stop, reads) = (follower.clone(), stop.clone(), reads.clone());
        readers.push(std::thread::spawn(move || {
            global_reader(log, stop, reads, "read-only follower")
        }));
    }
    while appends.load(Ordering::Relaxed) < 50 || reads.load(Ordering::Relaxed) < 3 {
        std::thread::yield_now();
    }
    for round in 0..12 {
        let view = log.compaction_view(false).unwrap();
        let plan = match round % 4 {
            0 => policy::cluster_sealed_segments(&view),
            1 => policy::merge_small_segments(&view, 8 * 1024, 16 * 1024),
            2 => policy::drop_executions(
                &view,
                [format!("gone-w{}-{}", round % 4, round % 5).as_str()],
            ),
            _ => policy::rewrite_all_sealed(&view),
        };
        match log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {}) {
            Ok(_) => {}
            Err(e) => panic!("compaction round {round}: {e}"),
        }
        let (a, r) = (
            appends.load(Ordering::Relaxed),
            reads.load(Ordering::Relaxed),
        );
        while appends.load(Ordering::Relaxed) < a + 20 || reads.load(Ordering::Relaxed) < r + 2 {
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    log.sync_blocking().unwrap();
    let before = log.read_global(0, usize::MAX).unwrap();
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), opts(checkpoints)).unwrap();
    let after = log.read_global(0, usize::MAX).unwrap();
    assert_eq!(before, after);
    follower.refresh().unwrap();
    assert_eq!(follower.read_global(0, usize::MAX).unwrap(), after);
}

#[test]
fn global_reads_never_see_corruption_under_mixed_load_background_checkpoints() {
    run(CheckpointMode::Background);
}

#[test]
fn global_reads_never_see_corruption_under_mixed_load_inline_checkpoints() {
    run(CheckpointMode::Inline);
}
