//! Review 52: after a power cut at any point of a workload of every append kind (buffered +
//! sync, batches, rolls, prepared segments, overlapping rounds) and compactions (cluster,
//! merge, erase), the log opens (read-only first, then for writing) and reads in global
//! order without the new out-of-order check firing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, CompactOptions, Log, Options};

fn opts(cp: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(2048)
        .max_record_size_bytes(Some(1024))
        .checkpoints(cp)
        .overlap_min_records(1)
        .prepare_next_segment(true)
        .buffered_write_bytes(512)
}

fn workload(fs: &SimFs, cp: CheckpointMode) {
    let Ok(log) = Log::open_with_fs(fs.clone(), "/log", opts(cp)) else {
        return;
    };
    for i in 0..60u64 {
        let t = if i % 3 == 0 { "gone" } else { "keep" };
        let exec = format!("{t}-{}", i % 4);
        let body = format!("{exec} {i} {}", "q".repeat((i * 17 % 200) as usize));
        let r = match i % 7 {
            0 | 1 => log.append_blocking(&exec, t, body.as_bytes()).map(|_| ()),
            2 => log
                .append_batch_blocking(&exec, t, &[body.as_bytes(), b"x"])
                .map(|_| ()),
            3 => log
                .append_batch_buffered(&exec, t, &[body.as_bytes()])
                .map(|_| ()),
            4 => log
                .append_batch_buffered(&exec, t, &[body.as_bytes()])
                .and_then(|_| log.sync_blocking()),
            5 if i % 10 == 5 => log.roll_blocking().map(|_| ()),
            _ => log.append_blocking(&exec, t, body.as_bytes()).map(|_| ()),
        };
        if r.is_err() {
            return;
        }
        if i == 30 || i == 50 {
            let Ok(view) = log.compaction_view(false) else {
                return;
            };
            let plan = if i == 30 {
                policy::drop_tenant(&view, "gone").and(policy::cluster_sealed_segments(&view))
            } else {
                policy::merge_small_segments(&view, 4096, 4096)
            };
            if log
                .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
                .is_err()
            {
                return;
            }
        }
    }
    let _ = log.close();
}

fn check(fs: &SimFs, cp: CheckpointMode, what: &str) {
    match Log::open_read_only_with_fs(fs.clone(), "/log") {
        Ok(ro) => {
            let all = ro
                .read_global(0, usize::MAX)
                .unwrap_or_else(|e| panic!("{what}: read-only read_global: {e}"));
            assert!(all.windows(2).all(|w| w[0].lsn < w[1].lsn), "{what}");
            ro.latest_lsn()
                .unwrap_or_else(|e| panic!("{what}: read-only latest_lsn: {e}"));
        }
        Err(e) => {
            // Before the first open finished there may be no log yet.
            eprintln!("{what}: read-only open: {e}");
        }
    }
    let forked = fs.fork();
    let repaired =
        seglog::repair_dir_with_fs(forked.clone(), std::path::Path::new("/log"), |_| true);
    // Refused (documented): no segment file yet, or an interrupted compaction's REPLACE.
    if let Ok(report) = repaired {
        assert!(
            report.differences.is_empty(),
            "{what}: repair: {:?}",
            report.differences
        );
        let log = Log::open_with_fs(forked.clone(), "/log", opts(cp))
            .unwrap_or_else(|e| panic!("{what}: open after repair: {e}"));
        log.read_global(0, usize::MAX)
            .unwrap_or_else(|e| panic!("{what}: read_global after repair: {e}"));
        log.close().unwrap();
    }
    let log = Log::open_with_fs(fs.clone(), "/log", opts(cp))
        .unwrap_or_else(|e| panic!("{what}: open: {e}"));
    let all = log
        .read_global(0, usize::MAX)
        .unwrap_or_else(|e| panic!("{what}: read_global: {e}"));
    assert!(all.windows(2).all(|w| w[0].lsn < w[1].lsn), "{what}");
    for r in all.iter().step_by(5) {
        log.read_global(r.lsn, 3)
            .unwrap_or_else(|e| panic!("{what}: read_global({}): {e}", r.lsn));
        log.read_global(r.lsn - 1, 2)
            .unwrap_or_else(|e| panic!("{what}: read_global({}): {e}", r.lsn - 1));
    }
    log.latest_lsn()
        .unwrap_or_else(|e| panic!("{what}: latest_lsn: {e}"));
    log.append_blocking("after", "keep", b"after the cut")
        .unwrap();
    let again = log.read_global(0, usize::MAX).unwrap();
    assert_eq!(again.len(), all.len() + 1, "{what}");
    log.close().unwrap();
}

fn cuts(cp: CheckpointMode) {
    let total = {
        let fs = SimFs::new();
        workload(&fs, cp);
        fs.mutating_ops()
    };
    let step = (total / 150).max(1);
    let mut n = 1;
    while n <= total {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
        ] {
            let fs = SimFs::new();
            fs.power_off_after(n);
            workload(&fs, cp);
            let crashed = fs.crash(mode);
            check(
                &crashed,
                cp,
                &format!("{cp:?} cut after op {n}/{total} {mode:?}"),
            );
        }
        n += step;
    }
}

#[test]
fn power_cuts_inline_checkpoints() {
    cuts(CheckpointMode::Inline);
}

#[test]
fn power_cuts_background_checkpoints() {
    cuts(CheckpointMode::Background);
}
