//! Review 10 (of the locality change): a damaged *clustered* segment that is the last segment of
//! the directory (format.md §4 step 5: "salvage cut the segments after it, or a crash undid
//! the roll"). Recovery was changed to treat any bad record in a clustered segment as
//! corruption ("a compaction output, whole and synced before the manifest named it: nothing
//! in it was ever a torn write"), but `verify_dir`, `plan_salvage` / `seglog repair` and the
//! read-only open were not: they still call the same bytes a torn tail of never-acknowledged
//! appends (verify: Health::TornTail, "the next open cuts them"; repair: "a torn tail: never
//! acknowledged", no "acknowledged data among them" warning), or silently serve the records
//! before the damage (read-only), while the records that go are acknowledged events that
//! readers had been served for a long time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::io::StdFs;
use seglog::{CheckpointMode, CompactOptions, Health, Log, Options};
use seglog_segment::inspect::analyze_segment;
use std::path::{Path, PathBuf};

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
}

const EXECS: usize = 4;

fn total_events<F: seglog::io::FileSystem>(log: &Log<F>) -> usize {
    (0..EXECS)
        .map(|e| log.read(&format!("exec-{e}")).unwrap().len())
        .sum()
}

/// A closed log whose last segment is a clustered compaction output (the empty active
/// segment created after it is gone, as when the roll's directory entry never became
/// durable), with the last record *in file order* of that clustered segment damaged.
/// Returns the directory's clustered segment and how many events were acknowledged.
fn damaged_clustered_last_segment(dir: &Path) -> (PathBuf, usize) {
    let log = Log::open_blocking(dir, opts()).unwrap();
    for i in 0..60u64 {
        let body = format!("event {i} {}", "z".repeat((i * 11 % 90) as usize));
        log.append_blocking(
            &format!("exec-{}", i % EXECS as u64),
            "tenant",
            body.as_bytes(),
        )
        .unwrap();
    }
    let acknowledged = total_events(&log);
    assert_eq!(acknowledged, 60);
    // Everything into sealed segments, then cluster them all.
    log.roll_blocking().unwrap();
    let view = log.compaction_view(false).unwrap();
    log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(total_events(&log), 60);
    let segs = log.segments();
    let active = segs.last().unwrap().clone();
    let clustered = segs[segs.len() - 2].clone();
    assert!(clustered.clustered && !active.clustered, "{segs:?}");
    log.close().unwrap();
    // The active segment holds no event (only close's commit marker): a crash that undid
    // its creation leaves the clustered segment last (format.md §4 step 5).
    std::fs::remove_file(&active.path).unwrap();
    let _ = std::fs::remove_file(dir.join(seglog_index::checkpoint::checkpoint_file_name(
        active.first_lsn,
    )));
    // Damage one payload byte of the last record in file order of the clustered segment.
    let mut bytes = std::fs::read(&clustered.path).unwrap();
    let analysis = analyze_segment(&bytes, 0);
    assert!(analysis.damage.is_none());
    let at = *analysis.record_offsets.last().unwrap() as usize;
    bytes[at + 60] ^= 0x10;
    std::fs::write(&clustered.path, &bytes).unwrap();
    (clustered.path, acknowledged)
}

/// Recovery refuses the directory: the damage is to acknowledged data (by the design of
/// this change, asserted here so the other tests' contrast is clear).
#[test]
fn recovery_calls_it_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    damaged_clustered_last_segment(tmp.path());
    let opened = Log::open_blocking(tmp.path(), opts());
    assert!(
        opened.as_ref().is_err_and(seglog::Error::is_corruption),
        "{:?}",
        opened.map(|_| ())
    );
}

/// `verify_dir` says "only a torn tail: bytes of appends that were never acknowledged; the
/// next open cuts them", while the next open refuses the log and the bytes held
/// acknowledged events.
#[test]
fn verify_calls_damage_to_a_clustered_last_segment_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    damaged_clustered_last_segment(tmp.path());
    let report = seglog::verify_dir(tmp.path()).unwrap();
    assert!(
        Log::open_blocking(tmp.path(), opts()).is_err(),
        "the open refuses it"
    );
    assert_eq!(
        report.health(),
        Health::Corrupt,
        "verify says {:?} for a clustered segment (acknowledged data) that open refuses: {:#?}",
        report.health(),
        report.segments.last()
    );
}

/// `plan_salvage` (what `seglog repair` shows and asks about) describes the cut as "a torn
/// tail: never acknowledged" and `drops_acknowledged_data()` is false, so the question
/// carries no "acknowledged data among them, for good" warning; the repair then drops
/// acknowledged events.
#[test]
fn repair_plan_says_never_acknowledged_and_then_drops_acknowledged_events() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, acknowledged) = damaged_clustered_last_segment(tmp.path());
    let plan = seglog::plan_salvage(&StdFs, tmp.path()).unwrap();
    let cut = plan.cut.clone().expect("a cut");
    let report = seglog::repair_dir(tmp.path(), |_| true).unwrap();
    assert!(report.repaired);
    let log = Log::open_blocking(tmp.path(), opts()).unwrap();
    let left = total_events(&log);
    assert!(
        left < acknowledged,
        "the repair dropped events: {left} of {acknowledged}"
    );
    assert!(
        cut.acknowledged && plan.drops_acknowledged_data(),
        "the plan said the cut drops no acknowledged data ({cut:?}), yet {} acknowledged events are gone",
        acknowledged - left
    );
}

/// A read-only open serves the clustered segment up to the damage, without an error, while
/// the writer's open refuses it as corruption: a reader silently misses acknowledged events.
#[test]
fn read_only_open_silently_serves_a_damaged_clustered_last_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, acknowledged) = damaged_clustered_last_segment(tmp.path());
    match Log::open_read_only_blocking(tmp.path()) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(log) => {
            let served = total_events(&log);
            panic!(
                "read-only open succeeded and serves {served} of {acknowledged} acknowledged events (the writer's open refuses the same directory as corrupt)"
            );
        }
    }
}
