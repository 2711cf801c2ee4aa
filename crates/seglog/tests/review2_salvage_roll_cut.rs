//! Regression test for a review finding (fixed): salvage's fix "the cut segment is sealed again and appends go to a new segment"
//! (writer/mod.rs, roll at open) is not crash-safe. The roll runs *after* recovery has already
//! truncated the compacted segment and removed the later ones. A power cut during that roll's
//! `create_segment` (file created, header not yet durable) leaves an empty/headerless last
//! segment. The next open — in the default mode, which docs/format.md §4 promises works after
//! salvage — removes it as "a segment whose creation was interrupted", and the *compacted*
//! segment (LSNs with erasure gaps) becomes the active one again, with no roll (the roll is
//! only done when `salvage_removed` is non-empty in *that* open). Appends then go into a
//! segment with erasure gaps, which is exactly what review_lsn_gap_look_ahead.rs showed breaks
//! the look-ahead's LSN bound: later proven damage before the gap is cut as a torn tail and
//! acknowledged events are silently dropped.
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
fn a_power_cut_during_salvages_roll_makes_the_compacted_segment_active_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)).unwrap();
    for i in 0..5 {
        log.append_blocking("keep", "t", format!("keep {i}").as_bytes())
            .unwrap();
    }
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
    log.close().unwrap();

    // Damage to the compacted segment's last record; Salvage cuts it and rolls.
    flip(&compacted.path, Some(0), 0);
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::Salvage)).unwrap();
    let segs = log.segments();
    assert!(segs[0].sealed);
    let rolled = segs.last().unwrap().clone();
    assert!(!rolled.sealed && rolled.first_lsn != compacted.first_lsn);
    log.close().unwrap();
    // What a power cut during that roll's create_segment leaves behind: the new file's entry
    // made it to disk, its header did not (everything salvage did before the roll — the
    // truncation and removals — is already durable).
    std::fs::write(&rolled.path, b"").unwrap();

    // The default-mode open the docs promise works after salvage.
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)).unwrap();
    let active = log.segments().last().unwrap().clone();
    eprintln!(
        "active segment after reopen: first_lsn {} sealed {} (compacted segment first_lsn {})",
        active.first_lsn, active.sealed, compacted.first_lsn
    );
    for i in 0..3 {
        log.append_blocking("keep", "t", format!("after salvage {i}").as_bytes())
            .unwrap();
    }
    assert_eq!(log.read("keep").unwrap().len(), 12);
    log.close().unwrap();

    // A bit flips in the fifth record (before the erasure gap): every record after it was
    // acknowledged and vouches for it — proven damage, the open must refuse.
    flip(&compacted.path, None, 4);
    match Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)) {
        Err(e) => eprintln!("refused as it should be: {e}"),
        Ok(log) => {
            let kept = log.read("keep").unwrap().len();
            panic!(
                "proven damage to acknowledged data was cut as a torn tail: the default open \
                 succeeded with {kept} of 12 acknowledged events of `keep`"
            );
        }
    }
}
