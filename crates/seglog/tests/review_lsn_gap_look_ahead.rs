// Regression test for a review finding (fixed): the torn-tail look-ahead's new LSN bound (`later_durable_record`,
// crates/seglog-segment/src/inspect.rs: `lsn_limit = last_good + searched/48 + 2`) assumes
// LSNs in the last segment are dense ("LSNs skip only in compacted, sealed segments"). But a
// compacted segment becomes the active one after `RecoveryMode::Salvage` (docs/format.md §4:
// "the cut segment becomes the active one"). Damage just before an erasure gap is then
// followed only by records whose LSNs exceed the bound: the real proof (records and the
// close() commit marker vouching for the damaged record) is never checksummed, the damage is
// called a torn tail, and the default-mode open silently truncates every acknowledged record
// after it — compacted survivors and appends made after the salvage alike.
//! Review finding (see the comment above).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::Plan;
use seglog::{CheckpointMode, CompactOptions, Log, Options, RecoveryMode};
use seglog_segment::inspect::analyze_segment;

fn opts(recovery_mode: RecoveryMode) -> Options {
    Options {
        segment_size_bytes: 4096,
        max_record_size_bytes: Some(2048),
        checkpoints: CheckpointMode::Inline,
        recovery_mode,
        ..Options::default()
    }
}

fn flip(path: &std::path::Path, record_index_from_end: Option<usize>, record_index: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    let i = record_index_from_end.map_or(record_index, |k| offsets.len() - 1 - k);
    bytes[offsets[i] as usize + 60] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn damage_before_an_erasure_gap_in_a_salvaged_compacted_segment_is_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)).unwrap();
    for i in 0..5 {
        log.append_blocking("keep", "t", format!("keep {i}").as_bytes())
            .unwrap();
    }
    // An execution that will be erased: hundreds of LSNs that compaction drops.
    for i in 0..400 {
        log.append_blocking(
            "gone",
            "t",
            format!("gone {i} {}", "g".repeat(60)).as_bytes(),
        )
        .unwrap();
    }
    for i in 5..10 {
        log.append_blocking("keep", "t", format!("keep {i}").as_bytes())
            .unwrap();
    }
    let plan = Plan {
        drop_executions: ["gone".to_string()].into_iter().collect(),
        ..Plan::default()
    };
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let compacted = log.segments()[0].clone();
    assert_eq!(compacted.first_lsn, 1);
    let bytes = std::fs::read(&compacted.path).unwrap();
    assert_eq!(
        analyze_segment(&bytes, 0).record_offsets.len(),
        10,
        "the ten kept records share one compacted segment"
    );
    log.close().unwrap();

    // Damage to the compacted segment's last record; Salvage cuts it there and makes it the
    // active segment.
    flip(&compacted.path, Some(0), 0);
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::Salvage)).unwrap();
    // The compacted segment stays sealed: appends go to a new segment (whose LSNs are
    // dense), so no torn-tail rule ever applies to a segment with erasure gaps.
    assert!(
        log.segments()[0].sealed,
        "salvage made the cut segment active"
    );
    assert_eq!(log.segments()[0].first_lsn, compacted.first_lsn);
    assert_eq!(log.read("keep").unwrap().len(), 9);
    log.close().unwrap();

    // Back to normal: acknowledged appends, a clean close (commit marker).
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)).unwrap();
    for i in 0..3 {
        log.append_blocking("keep", "t", format!("after salvage {i}").as_bytes())
            .unwrap();
    }
    assert_eq!(log.read("keep").unwrap().len(), 12);
    log.close().unwrap();

    // A bit flips in the fifth record (the last one before the erasure gap). Every record
    // after it was acknowledged and vouches for it: this is proven damage.
    flip(&compacted.path, None, 4);
    match Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)) {
        Err(e) => eprintln!("refused as it should be: {e}"),
        Ok(log) => {
            let kept = log.read("keep").unwrap().len();
            panic!(
                "proven damage to acknowledged data was cut as a torn tail: the default open \
                 succeeded with {kept} of 12 acknowledged events of `keep` (8 silently dropped)"
            );
        }
    }
}
