// FINDING: Salvage of damage in a sealed (non-last) segment truncates that segment (and
// fsyncs it) *before* it removes the later segments. A power cut between the two leaves a
// clean, shorter sealed segment followed by the intact later segments. Nothing is damaged
// any more, so the next Salvage cuts nothing, and the index rebuild refuses the sequence hole:
// "execution exec-0 jumps from sequence 14 to 19". The log opens in no mode, Salvage
// included, so the only repair tool leaves it unusable. (Had the rebuild accepted the hole,
// readers would see events that come after the dropped ones.)
// The state below is exactly the disk after `truncate` (set_len + fsync) in recovery.rs and
// before `remove_if_present` of the first later segment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{CheckpointMode, Log, Options, RecoveryMode};
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

#[test]
fn power_cut_between_salvage_cut_and_removal_of_later_segments_leaves_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)).unwrap();
    for i in 0..120u64 {
        let exec = format!("exec-{}", i % 4);
        let body = format!("event {i} {}", "y".repeat((i * 7 % 80) as usize));
        log.append_blocking(&exec, "tenant", body.as_bytes()).unwrap();
    }
    let segments = log.segments();
    assert!(segments.len() >= 4);
    log.close().unwrap();
    // Salvage's cut of segment 1 at a damaged record, made durable; the power goes before
    // the later segments are removed.
    let victim = &segments[1];
    let bytes = std::fs::read(&victim.path).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    let cut_at = offsets[offsets.len() / 2];
    let f = std::fs::OpenOptions::new().write(true).open(&victim.path).unwrap();
    f.set_len(cut_at).unwrap();
    f.sync_all().unwrap();
    drop(f);
    for mode in [RecoveryMode::Salvage, RecoveryMode::TolerateTornTail] {
        let log = Log::open_blocking(dir.path(), opts(mode))
            .unwrap_or_else(|e| panic!("{mode:?}: open failed: {e}"));
        for e in 0..4 {
            let exec = format!("exec-{e}");
            let seqs: Vec<u64> = log.read(&exec).unwrap().iter().map(|ev| ev.seq).collect();
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(
                seqs, expected,
                "{mode:?}: {exec} is served with a hole: events after the salvage cut \
                 survive while events before them are gone"
            );
        }
        log.close().unwrap();
    }
}
