//! Review 112: attacks on the incarnation check (`Plan::drops`, `dropped_by`), the
//! rehydration it now gates, and the split view (`policy_view`). None failed; kept as guards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::{location, target, MapSource};
use seglog::compaction::{policy, Incarnation, Plan};
use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::sync::Arc;

fn small() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

/// Offloads every sealed segment except those in `keep` (copying the bytes to `source`).
fn offload_sealed_except(log: &Log<SimFs>, fs: &SimFs, source: &MapSource, keep: &[u64]) -> usize {
    let active = log.segments().last().unwrap().number;
    let mut n = 0;
    for s in log.segments().into_iter().filter(|s| s.sealed) {
        if s.number == active || keep.contains(&s.number) {
            continue;
        }
        let bytes = fs.read_file(&s.path).unwrap();
        source
            .objects
            .lock()
            .unwrap()
            .insert(location(s.number), bytes::Bytes::from(bytes));
        log.offload_segment(s.number, &target(source, s.number))
            .unwrap();
        n += 1;
    }
    n
}

fn segments_of(log: &Log<SimFs>, id: &str) -> Vec<u64> {
    log.compaction_view(false)
        .unwrap()
        .executions
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.segments.clone())
        .unwrap_or_default()
}

/// Without a segment source: a stale plan of acme that names run-1 (now beta's, offloaded)
/// must not be refused with `Offloaded` for beta's segments, and must erase acme's a2.
#[test]
fn stale_plan_without_source_is_not_refused_for_another_tenants_offloaded_execution() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let log = Log::open_with_fs(fs.clone(), "/log", small()).unwrap();
    log.set_segment_source(source.clone());
    log.append_blocking("a2", "acme", b"acme's other").unwrap();
    log.append_blocking("run-1", "acme", b"acme's run-1")
        .unwrap();
    let view = log.compaction_view(false).unwrap();
    let acme_erasure = policy::drop_tenant(&view, "acme");
    log.compact_blocking(
        &policy::drop_executions(&view, ["run-1"]),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    log.roll_blocking().unwrap();
    for i in 0..40 {
        log.append_blocking(
            "run-1",
            "beta",
            format!("beta {i} {}", "b".repeat(300)).as_bytes(),
        )
        .unwrap();
    }
    log.roll_blocking().unwrap();
    let keep = segments_of(&log, "a2");
    assert!(offload_sealed_except(&log, &fs, &source, &keep) >= 2);
    // Reopened without a source: the bucket is out of reach.
    log.close().unwrap();
    let log = Log::open_with_fs(fs.clone(), "/log", small()).unwrap();
    let outcome = log.compact_blocking(&acme_erasure, CompactOptions::default(), &mut |_, _| {});
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(!log.exists("a2").unwrap());
    assert_eq!(log.tenant_of("run-1").unwrap().as_deref(), Some("beta"));
    // Beta's events read back through the source.
    log.set_segment_source(source.clone());
    assert_eq!(log.read("run-1").unwrap().len(), 40);
    log.close().unwrap();
}

/// A plan with an entry of no incarnations for an offloaded execution drops nothing,
/// downloads nothing, and fails nothing; the same id by hand is rehydrated and erased.
#[test]
fn empty_incarnation_set_drops_nothing_by_hand_erases_through_rehydration() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let log = Log::open_with_fs(fs.clone(), "/log", small()).unwrap();
    log.set_segment_source(source.clone());
    for i in 0..30 {
        log.append_blocking("x", "acme", format!("x {i} {}", "x".repeat(300)).as_bytes())
            .unwrap();
        log.append_blocking("y", "bolt", format!("y {i} {}", "y".repeat(300)).as_bytes())
            .unwrap();
    }
    log.roll_blocking().unwrap();
    let offloaded = offload_sealed_except(&log, &fs, &source, &[]);
    assert!(offloaded >= 2);
    let mut none = Plan::default();
    none.drop_executions.insert("x".into());
    none.drop_incarnations
        .insert("x".into(), Default::default());
    let r = log
        .compact_blocking(&none, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(r.executions_dropped, 0);
    assert_eq!(
        log.offloaded_segments().len(),
        offloaded,
        "downloaded for nothing"
    );
    assert_eq!(log.read("x").unwrap().len(), 30);
    // Wrong tenant at the right LSN: nothing either.
    let created = log
        .compaction_view(false)
        .unwrap()
        .executions
        .iter()
        .find(|e| e.id == "x")
        .unwrap()
        .created_lsn;
    let mut wrong = Plan::default();
    wrong.drop_executions.insert("x".into());
    wrong.drop_incarnations.insert(
        "x".into(),
        [Incarnation {
            created_lsn: created,
            tenant: "bolt".into(),
        }]
        .into(),
    );
    let r = log
        .compact_blocking(&wrong, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(r.executions_dropped, 0);
    assert_eq!(log.offloaded_segments().len(), offloaded);
    // By hand: rehydrated and erased; bolt's y intact.
    let mut by_hand = Plan::default();
    by_hand.drop_executions.insert("x".into());
    let r = log
        .compact_blocking(&by_hand, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(r.executions_dropped, 1);
    assert!(!log.exists("x").unwrap());
    assert_eq!(log.read("y").unwrap().len(), 30);
    log.close().unwrap();
    let log = Log::open_with_fs(fs.clone(), "/log", small()).unwrap();
    log.set_segment_source(source.clone());
    assert!(!log.exists("x").unwrap());
    assert_eq!(log.read("y").unwrap().len(), 30);
    log.close().unwrap();
}

/// The split view: bytes over listed segments add up to at most the segments' bytes, each
/// execution's segments ascend without repeats, and offloaded records count 0 bytes.
#[test]
fn split_view_bytes_and_segments_are_consistent_with_offloaded_segments() {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let log = Log::open_with_fs(fs.clone(), "/log", small()).unwrap();
    log.set_segment_source(source.clone());
    for i in 0..60 {
        let id = format!("e{}", i % 7);
        log.append_blocking(
            &id,
            "t",
            format!("{i} {}", "z".repeat(100 + i * 7)).as_bytes(),
        )
        .unwrap();
    }
    log.roll_blocking().unwrap();
    let keep: Vec<u64> = log.segments().iter().skip(1).map(|s| s.number).collect();
    offload_sealed_except(&log, &fs, &source, &keep);
    for i in 0..20 {
        log.append_batch_buffered(&format!("e{}", i % 3), "t", &[b"late".as_slice()])
            .unwrap();
    }
    let view = log.compaction_view(false).unwrap();
    let total: u64 = view.segments.iter().map(|s| s.bytes).sum();
    let sum: u64 = view.executions.iter().map(|e| e.bytes).sum();
    assert!(sum <= total, "{sum} > {total}");
    let listed: Vec<u64> = view.segments.iter().map(|s| s.number).collect();
    for e in &view.executions {
        assert!(e.segments.windows(2).all(|w| w[0] < w[1]), "{e:?}");
        if e.segments.iter().all(|s| !listed.contains(s)) {
            assert_eq!(e.bytes, 0, "{e:?}");
        }
    }
    log.close().unwrap();
}
