//! A compaction output has LSN gaps where erased records were; the torn-tail look-ahead
//! assumes the active segment's LSNs do not skip. So no compaction output may ever become the
//! active segment — not when salvage cuts the segments after it, and not when a power cut
//! undoes the roll that salvage makes away from it. Otherwise damage before a gap would be
//! cut as a torn tail and acknowledged events lost without an error (both found by reviews:
//! "the default open succeeded with 4 of 12 acknowledged events").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::small_inline_opts as opts;

use seglog::compaction::Plan;
use seglog::{CompactOptions, Log, RecoveryMode};
use seglog_segment::inspect::analyze_segment;
use seglog_segment::SegmentInfo;
use std::path::Path;

/// Flips a bit in record `index` of the segment (counted from the end with `from_end`).
fn flip(path: &Path, index: usize, from_end: bool) {
    let mut bytes = std::fs::read(path).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    let i = if from_end {
        offsets.len() - 1 - index
    } else {
        index
    };
    bytes[offsets[i] as usize + 60] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
}

/// Ten events of `keep` around 400 of `gone`, `gone` erased: one compaction output, first
/// LSN 1, with a gap of 400 LSNs after its fifth record. Then its last record is damaged
/// and the log opened with salvage. Returns the compaction output and the segments after
/// the salvaging open.
fn salvaged_compacted_log(dir: &Path) -> (SegmentInfo, Vec<SegmentInfo>) {
    let log = Log::open_blocking(dir, opts(RecoveryMode::TolerateTornTail)).unwrap();
    let append = |exec: &str, body: String| {
        log.append_blocking(exec, "t", body.as_bytes()).unwrap();
    };
    (0..5).for_each(|i| append("keep", format!("keep {i}")));
    (0..400).for_each(|i| append("gone", format!("gone {i} {}", "g".repeat(60))));
    (5..10).for_each(|i| append("keep", format!("keep {i}")));
    let plan = Plan {
        drop_executions: ["gone".to_string()].into_iter().collect(),
        ..Plan::default()
    };
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let compacted = log.segments()[0].clone();
    assert_eq!(compacted.first_lsn, 1);
    let bytes = std::fs::read(&compacted.path).unwrap();
    assert_eq!(analyze_segment(&bytes, 0).record_offsets.len(), 10);
    log.close().unwrap();
    flip(&compacted.path, 0, true);
    let log = Log::open_blocking(dir, opts(RecoveryMode::Salvage)).unwrap();
    assert_eq!(log.read("keep").unwrap().len(), 9);
    let segments = log.segments();
    log.close().unwrap();
    (compacted, segments)
}

/// Three acknowledged appends and a clean close; then a bit flips in the compaction output's
/// fifth record, before the gap. Every record after it vouches for it: the open must refuse.
fn damage_before_the_gap_is_refused(dir: &Path, compacted: &SegmentInfo) {
    let log = Log::open_blocking(dir, opts(RecoveryMode::TolerateTornTail)).unwrap();
    for i in 0..3 {
        log.append_blocking("keep", "t", format!("after salvage {i}").as_bytes())
            .unwrap();
    }
    assert_eq!(log.read("keep").unwrap().len(), 12);
    assert!(
        log.segments()[0].sealed,
        "the compaction output is the active segment"
    );
    log.close().unwrap();
    flip(&compacted.path, 4, false);
    if let Ok(log) = Log::open_blocking(dir, opts(RecoveryMode::TolerateTornTail)) {
        panic!(
            "proven damage to acknowledged data was cut as a torn tail: the default open \
             succeeded with {} of 12 acknowledged events of `keep`",
            log.read("keep").unwrap().len()
        );
    }
}

#[test]
fn salvage_never_leaves_a_compaction_output_as_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (compacted, segments) = salvaged_compacted_log(dir.path());
    assert!(segments[0].sealed && segments[0].first_lsn == compacted.first_lsn);
    damage_before_the_gap_is_refused(dir.path(), &compacted);
}

#[test]
fn a_power_cut_during_salvages_roll_leaves_no_compaction_output_active() {
    let dir = tempfile::tempdir().unwrap();
    let (compacted, segments) = salvaged_compacted_log(dir.path());
    let rolled = segments.last().unwrap();
    assert!(!rolled.sealed && rolled.first_lsn != compacted.first_lsn);
    // What a power cut during the roll's segment creation leaves: the new file's name made
    // it to disk, its header did not (the next open removes it as an interrupted creation).
    std::fs::write(&rolled.path, b"").unwrap();
    damage_before_the_gap_is_refused(dir.path(), &compacted);
}
