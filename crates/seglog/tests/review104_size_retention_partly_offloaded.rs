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
use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::{CompactOptions, Log};
use std::sync::Arc;

fn local_bytes(log: &Log<SimFs>) -> u64 {
    log.segments().iter().map(|s| s.data_end).sum()
}

#[test]
fn a_partly_offloaded_execution_makes_size_retention_drop_every_local_execution() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    log.set_segment_source(source.clone());
    // A long-running execution: many small events, in segments that get offloaded.
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
        log.offload_segment(s.number, &target(&source, s.number))
            .unwrap();
    }
    // It goes on (its latest record is local), and ten newer executions are local only.
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
    // A quarter of the local bytes over the limit: two or three local executions' worth.
    let limit = local - local / 4;
    let view = log.compaction_view(false).unwrap();
    let plan = policy::keep_log_under(&view, limit);
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let kept = (0..10)
        .filter(|i| log.exists(&format!("new-{i}")).unwrap())
        .count();
    let now = local_bytes(&log);
    assert!(
        kept >= 6,
        "to bring {local} local bytes under {limit}, retention by size dropped {} of the 10 \
         local executions ({} events); the local log now holds {now} bytes ({} offloaded \
         segments, 'long' kept: {}); plan: {:?}",
        10 - kept,
        report.events_dropped,
        old_segments.len(),
        log.exists("long").unwrap(),
        plan.drop_executions
    );
    log.close().unwrap();
}
