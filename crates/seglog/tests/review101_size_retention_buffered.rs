//! Review 101: retention by size (`policy::keep_log_under`, `Retention::max_log_bytes`)
//! while a bulk import's buffered appends are queued.
//!
//! Since 91933a9 the policies' view counts, in `ExecutionSummary::events`, every indexed
//! event, also those of buffered appends that are neither written nor durable; the
//! segments' `bytes` count durable data only. `keep_log_under` divides the one by the
//! other to estimate each execution's share, so queued events shrink the estimate and the
//! policy drops far more durable, acknowledged executions than the limit asks for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Log, Options, Retention};
use std::time::{Duration, Instant};

fn options(retention: Retention) -> Options {
    Options::default()
        .segment_size_bytes(64 << 10)
        .checkpoints(CheckpointMode::Inline)
        .retention(retention)
}

fn durable_bytes(log: &Log) -> u64 {
    log.segments().iter().map(|s| s.data_end).sum()
}

/// 40 executions of 20 KB each, oldest first: ~800 KB.
fn fill(log: &Log) {
    let payload = vec![7u8; 1_000];
    for i in 0..40 {
        for _ in 0..20 {
            log.append_blocking(&format!("e{i:02}"), "t", &payload)
                .unwrap();
        }
    }
}

/// A bulk import: many small buffered appends, queued in memory (nothing synced).
fn buffered_import(log: &Log) {
    for _ in 0..4_000 {
        log.append_batch_buffered("import", "t", &[b"12345678".as_slice()])
            .unwrap();
    }
}

fn surviving(log: &Log) -> usize {
    (0..40)
        .filter(|i| log.exists(&format!("e{i:02}")).unwrap())
        .count()
}

/// The policy itself: the same log, the same limit, once without and once with the import
/// queued. The limit asks for ~100 KB (5 executions of 20 KB) either way: the import's
/// bytes are not on the disk.
#[test]
fn keep_log_under_drops_no_more_durable_executions_while_an_import_is_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), options(Retention::default())).unwrap();
    fill(&log);
    let total = durable_bytes(&log);
    let limit = total - (100 << 10);
    let baseline = policy::keep_log_under(&log.compaction_view(false).unwrap(), limit);
    let baseline_n = baseline.drop_executions.len();
    assert!((5..=7).contains(&baseline_n), "{baseline:?}");

    buffered_import(&log);
    assert_eq!(durable_bytes(&log), total, "the import is only queued");
    let plan = policy::keep_log_under(&log.compaction_view(false).unwrap(), limit);
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    log.sync_blocking().unwrap();
    let kept = surviving(&log);
    assert!(
        40 - kept <= baseline_n,
        "retention by size dropped {} of the 40 durable executions (and {} events) to free \
         ~100 KB, where the same limit without the queued import drops {baseline_n}; the log \
         now holds {} of its {total} durable bytes, limit {limit}; import erased too: {}",
        40 - kept,
        report.events_dropped,
        durable_bytes(&log),
        !log.exists("import").unwrap(),
    );
    log.close().unwrap();
}

/// The same through automatic retention (`Retention::max_log_bytes`), which plans from the
/// same summaries at the compaction's start.
#[test]
fn automatic_size_retention_during_a_buffered_import_keeps_what_the_limit_allows() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), options(Retention::default())).unwrap();
    fill(&log);
    let total = durable_bytes(&log);
    log.close().unwrap();
    let limit = total - (100 << 10);
    let retention = Retention::default()
        .max_log_bytes(limit)
        .interval(Duration::from_millis(1500));
    let log = Log::open_blocking(dir.path(), options(retention)).unwrap();
    buffered_import(&log);
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.stats().retention.passes == 0 {
        assert!(Instant::now() < deadline, "no retention pass");
        std::thread::sleep(Duration::from_millis(20));
    }
    log.sync_blocking().unwrap();
    let kept = surviving(&log);
    let stats = log.stats().retention;
    assert!(
        kept >= 32,
        "automatic retention kept {kept} of 40 durable executions to free ~100 KB of \
         {total} bytes: {stats:?}"
    );
    log.close().unwrap();
}

/// The extreme: a small log a little over its limit and a larger import queued. The limit
/// asks for about one execution's worth; the policy erases every durable execution and the
/// import with them, whose appends all returned and whose `sync` then returns Ok.
#[test]
fn keep_log_under_erases_the_whole_log_and_the_import_for_one_executions_worth() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), options(Retention::default())).unwrap();
    for i in 0..10 {
        log.append_blocking(&format!("e{i:02}"), "t", &[7u8; 1_000])
            .unwrap();
    }
    let total = durable_bytes(&log);
    let limit = total - 1_000;
    for _ in 0..5_000 {
        log.append_batch_buffered("import", "t", &[b"12345678".as_slice()])
            .unwrap();
    }
    let plan = policy::keep_log_under(&log.compaction_view(false).unwrap(), limit);
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    log.sync_blocking().unwrap();
    let kept: Vec<String> = (0..10)
        .map(|i| format!("e{i:02}"))
        .filter(|id| log.exists(id).unwrap())
        .collect();
    let import = log.read("import").unwrap().len();
    assert!(
        kept.len() >= 8 && import == 5_000,
        "to free ~1 KB of {total} bytes (limit {limit}) retention by size erased {:?}: kept \
         {kept:?} of 10 durable executions and {import} of the 5,000 imported events",
        plan.drop_executions
    );
    log.close().unwrap();
}
