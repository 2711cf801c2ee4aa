//! Review 105: retention by size (`policy::keep_log_under`) sizes every execution at the
//! log's *mean* bytes per durable event. When the oldest executions hold few, large events
//! (an import of documents, model outputs) and the newer ones many small events, the
//! oldest are estimated at a tiny fraction of what they hold: the pass drops all of them
//! (freeing far more than the excess) and then keeps going through the newer executions
//! to "cover" the excess the estimate thinks is left. The log ends far under its limit,
//! with acknowledged executions gone that no limit asked to drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::sizes::{exact_bytes, local_bytes};
use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::{CompactOptions, Log, Options, Retention};
use std::time::{Duration, Instant};

/// 10 old executions of 10 events of 100 KB (about 10 MB), then 1,000 newer ones of 100
/// events of 100 bytes (about 16 MB with framing), all durable and sealed.
fn build(log: &Log<SimFs>) {
    let big = vec![b'b'; 100_000];
    for i in 0..10 {
        for _ in 0..10 {
            log.append_batch_buffered(&format!("old-{i:02}"), "t", &[big.as_slice()])
                .unwrap();
        }
    }
    let small = vec![b's'; 100];
    for i in 0..1000 {
        for _ in 0..100 {
            log.append_batch_buffered(&format!("new-{i:04}"), "t", &[small.as_slice()])
                .unwrap();
        }
    }
    log.sync_blocking().unwrap();
    log.roll_blocking().unwrap();
}

/// The same through automatic retention (`Retention::max_log_bytes`).
#[test]
fn automatic_size_retention_half_a_megabyte_over_leaves_the_log_far_under_its_limit() {
    let fs = SimFs::new();
    let options = Options::default().segment_size_bytes(4 << 20);
    let log = Log::open_with_fs(fs.clone(), "/log", options.clone()).unwrap();
    build(&log);
    let total = local_bytes(&log);
    let one_old = exact_bytes(&log, &["old-00".to_string()]);
    log.close().unwrap();
    let limit = total - one_old / 2;
    let retention = Retention::default()
        .max_log_bytes(limit)
        .interval(Duration::from_millis(50));
    let log = Log::open_with_fs(fs.clone(), "/log", options.retention(retention)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while local_bytes(&log) > limit {
        assert!(
            Instant::now() < deadline,
            "retention never got under the limit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = local_bytes(&log);
    let stats = log.stats().retention;
    let newer_kept = (0..1000)
        .filter(|i| log.exists(&format!("new-{i:04}")).unwrap())
        .count();
    assert!(
        newer_kept == 1000 && after + 3 * one_old >= limit,
        "limit {limit}, log {total} bytes ({} over; old-00 alone holds {one_old}): \
         retention dropped {} executions ({} newer ones), the log now holds {after} bytes, \
         {:.0}% of its limit; {stats:?}",
        total - limit,
        stats.executions_dropped,
        1000 - newer_kept,
        100.0 * after as f64 / limit as f64,
    );
    log.close().unwrap();
}

#[test]
fn size_retention_two_percent_over_drops_every_old_and_newer_executions_too() {
    let fs = SimFs::new();
    let options = Options::default().segment_size_bytes(4 << 20);
    let log = Log::open_with_fs(fs.clone(), "/log", options).unwrap();
    build(&log);
    let total = local_bytes(&log);
    // A little over: dropping the single oldest execution (1 MB) is all the limit needs.
    let one_old = exact_bytes(&log, &["old-00".to_string()]);
    let limit = total - one_old / 2;
    let excess = total - limit;

    let view = log.compaction_view(false).unwrap();
    let plan = policy::keep_log_under(&view, limit);
    let asked: Vec<String> = plan.drop_executions.iter().cloned().collect();
    let newer_dropped = asked.iter().filter(|id| id.starts_with("new-")).count();
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let after = local_bytes(&log);
    assert!(
        report.bytes_reclaimed <= 3 * one_old && newer_dropped == 0,
        "log of {total} bytes, limit {limit} ({excess} over; dropping old-00 alone frees \
         {one_old}): the pass dropped {} executions ({newer_dropped} of the newer ones), \
         reclaimed {} bytes ({:.1}x the excess); the log now holds {after} bytes, {:.0}% of \
         its limit",
        report.executions_dropped,
        report.bytes_reclaimed,
        report.bytes_reclaimed as f64 / excess as f64,
        100.0 * after as f64 / limit as f64,
    );
    log.close().unwrap();
}
