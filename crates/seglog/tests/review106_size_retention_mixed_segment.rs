//! Review 106: retention by size (`policy::keep_log_under`, since b6bb948) weighs every
//! durable *record* of a segment at the segment's bytes over its durable records. Records of
//! very different sizes routinely share a segment: concurrent executions interleave, and an
//! execution appended in batches (one record, many events) sits next to executions appended
//! one event per record. The large records are then weighed at the small ones' size, the
//! oldest executions look almost free, and a pass drops all of them and then newer ones to
//! "cover" an excess the first execution alone covered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::sizes::{exact_bytes, local_bytes};
use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::{CompactOptions, Log, Options};

/// Sets the limit half of `old-00` under the log's size, runs one pass of
/// `keep_log_under` and checks it freed at most 3x what dropping `old-00` alone (the exact
/// oracle: oldest first until the excess is covered) frees, and dropped no newer execution.
fn one_pass_is_close_to_the_oracle(log: &Log<SimFs>) {
    let total = local_bytes(log);
    let one_old = exact_bytes(log, &["old-00"]);
    let limit = total - one_old / 2;
    let excess = total - limit;
    let view = log.compaction_view(false).unwrap();
    let plan = policy::keep_log_under(&view, limit);
    let asked: Vec<String> = plan.drop_executions.iter().cloned().collect();
    let old_dropped = asked.iter().filter(|id| id.starts_with("old-")).count();
    let newer_dropped = asked.iter().filter(|id| id.starts_with("new-")).count();
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let after = local_bytes(log);
    assert!(
        report.bytes_reclaimed <= 3 * one_old && newer_dropped == 0,
        "log of {total} bytes, limit {limit} ({excess} over; dropping old-00 alone frees \
         {one_old}): the pass dropped {} executions ({old_dropped} old, {newer_dropped} \
         newer), reclaimed {} bytes ({:.1}x the oracle's); the log now holds {after} bytes, \
         {:.0}% of its limit",
        report.executions_dropped,
        report.bytes_reclaimed,
        report.bytes_reclaimed as f64 / one_old as f64,
        100.0 * after as f64 / limit as f64,
    );
}

/// Concurrent executions interleave: each old execution's ten 100 KB events land in a
/// segment among 10,000 events of 100 bytes of long-running newer executions.
#[test]
fn size_retention_weighs_interleaved_large_records_at_the_small_ones_size() {
    let log = Log::open_with_fs(
        SimFs::new(),
        "/log",
        Options::default().segment_size_bytes(4 << 20),
    )
    .unwrap();
    let big = vec![b'b'; 100_000];
    let small = vec![b's'; 100];
    for round in 0..10 {
        for _ in 0..10 {
            log.append_batch_buffered(&format!("old-{round:02}"), "t", &[big.as_slice()])
                .unwrap();
        }
        for j in 0..100 {
            for _ in 0..100 {
                log.append_batch_buffered(&format!("new-{j:03}"), "t", &[small.as_slice()])
                    .unwrap();
            }
        }
    }
    log.sync_blocking().unwrap();
    log.roll_blocking().unwrap();
    one_pass_is_close_to_the_oracle(&log);
    log.close().unwrap();
}

/// Same-sized events, one segment: the old executions were appended in batches of 100
/// events (one record each), the newer ones one event per record. The mean per event
/// (before b6bb948) weighed them right; the mean per record weighs an old execution at
/// 1/100 of what it holds.
#[test]
fn size_retention_weighs_a_batch_record_like_a_single_event_record() {
    let log = Log::open_with_fs(
        SimFs::new(),
        "/log",
        Options::default().segment_size_bytes(4 << 20),
    )
    .unwrap();
    let event = vec![b'e'; 100];
    let batch: Vec<&[u8]> = vec![event.as_slice(); 100];
    for i in 0..10 {
        for _ in 0..10 {
            log.append_batch_buffered(&format!("old-{i:02}"), "t", &batch)
                .unwrap();
        }
    }
    for i in 0..1000 {
        for _ in 0..10 {
            log.append_batch_buffered(&format!("new-{i:04}"), "t", &[event.as_slice()])
                .unwrap();
        }
    }
    log.sync_blocking().unwrap();
    log.roll_blocking().unwrap();
    assert_eq!(log.segments().iter().filter(|s| s.sealed).count(), 1);
    one_pass_is_close_to_the_oracle(&log);
    log.close().unwrap();
}
