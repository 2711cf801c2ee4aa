//! Review 104: retention by size (`policy::keep_log_under`) when one long execution spans
//! offloaded segments and the local ones.
//!
//! Since 08db7ef `keep_log_under` only drops executions held wholly in the listed (local)
//! segments, but the denominator of its bytes-per-event estimate still counts *every*
//! durable event of any execution with *some* record locally — also its events in offloaded
//! segments, whose bytes are not in the local total. One long-running execution with many
//! events shipped to the bucket and its latest record local shrinks the estimate of every
//! local execution's share to almost nothing, and a pass asked to free a few executions'
//! worth drops every local execution (acknowledged data the limit never asked to erase).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::offload::*;
use common::sizes::local_bytes;
use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::{CompactOptions, Log, Retention};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The log of both tests: `long`'s 10,000 events offloaded but its latest event local, and
/// ten local-only executions of 20 events of 150 bytes. Returns the local bytes.
fn build(fs: &SimFs, source: &Arc<MapSource>) -> (Log<SimFs>, usize, u64) {
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    log.set_segment_source(source.clone());
    let tiny: Vec<&[u8]> = vec![b"x".as_slice(); 100];
    for _ in 0..100 {
        log.append_batch_blocking("long", "t0", &tiny).unwrap();
    }
    log.roll_blocking().unwrap();
    let old_segments: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    for s in &old_segments {
        let bytes = fs.read_file(&s.path).unwrap();
        source
            .objects
            .lock()
            .unwrap()
            .insert(location(s.number), Bytes::from(bytes));
        log.offload_segment(s.number, &target(source, s.number))
            .unwrap();
    }
    log.append_blocking("long", "t0", b"still running").unwrap();
    let payload = vec![b'y'; 150];
    for i in 0..10 {
        for _ in 0..20 {
            log.append_blocking(&format!("new-{i}"), "t0", &payload)
                .unwrap();
        }
    }
    log.roll_blocking().unwrap();
    let local = local_bytes(&log);
    (log, old_segments.len(), local)
}

fn kept_new(log: &Log<SimFs>) -> usize {
    (0..10)
        .filter(|i| log.exists(&format!("new-{i}")).unwrap())
        .count()
}

/// The same through automatic retention (`Retention::max_log_bytes`), which never downloads.
#[test]
fn automatic_size_retention_erases_every_local_execution_for_a_quarter_over() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let (log, offloaded, local) = build(&fs, &source);
    log.close().unwrap();
    let limit = local - local / 4;
    let retention = Retention::default()
        .max_log_bytes(limit)
        .interval(Duration::from_millis(30));
    let log = Log::open_with_fs(fs.clone(), "/log", opts().retention(retention)).unwrap();
    log.set_segment_source(source.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.stats().retention.passes < 4 {
        assert!(Instant::now() < deadline, "{:?}", log.stats().retention);
        std::thread::sleep(Duration::from_millis(20));
    }
    let kept = kept_new(&log);
    assert!(
        kept >= 6,
        "limit {limit} for {local} local bytes: automatic retention erased {} of the 10 local \
         executions; the local log now holds {} bytes ({offloaded} offloaded segments); {:?}",
        10 - kept,
        local_bytes(&log),
        log.stats().retention
    );
    log.close().unwrap();
}

/// The policy itself, carried out by an explicit compaction.
#[test]
fn a_partly_offloaded_execution_makes_size_retention_drop_every_local_execution() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let (log, offloaded, local) = build(&fs, &source);
    // A quarter of the local bytes over the limit: two or three local executions' worth.
    let limit = local - local / 4;
    let plan = policy::keep_log_under(&log.compaction_view(false).unwrap(), limit);
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let kept = kept_new(&log);
    assert!(
        kept >= 6,
        "to bring {local} local bytes under {limit}, retention by size dropped {} of the 10 \
         local executions ({} events); the local log now holds {} bytes ({offloaded} offloaded \
         segments, 'long' kept: {}); plan: {:?}",
        10 - kept,
        report.events_dropped,
        local_bytes(&log),
        log.exists("long").unwrap(),
        plan.drop_executions
    );
    log.close().unwrap();
}
