//! Review 135: the tools' and the read-only open's copy of the open's rule for damage before
//! a header-less last file (`successor_fits`, `tail_may_be_torn`).
//!
//! - They counted every written byte after the damage, where the open counts up to the tail
//!   bound: a segment made from a prepared file holds written zeros to its end, so a name
//!   the open found too far for the segment's records "fit" for them (corruption).
//!   Fixed: they read the bound file as the open does (without writing to it).
//! - The repair plan listed the cut creation after a cut among the segments removed after
//!   it, so it said the repair drops acknowledged data; the salvage open removes it as a
//!   cut creation. Fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::{CrashMode, SimFs};
use seglog::io::{FileSystem, SegmentFile};
use seglog::Health;
use seglog_segment::format::{parse_segment_file_name, segment_file_name, EventBatch};
use seglog_segment::inspect::analyze_segment;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::{Path, PathBuf};

fn append<F: FileSystem>(log: &SegmentLog<F>, i: u64) -> u64 {
    let p = vec![b'a' + (i % 26) as u8; 100 + (i as usize * 37) % 900];
    log.append(&EventBatch {
        encoding: 0,
        execution_id: format!("exec-{}", i % 5).as_bytes(),
        tenant_id: b"tenant",
        // Each execution's sequence goes on from where it was: verify checks it.
        first_seq: (i - 1) / 5 + 1,
        timestamp_unix_nanos: 0,
        payloads: &[&p[..]],
    })
    .unwrap()
    .lsn
}

fn segments(fs: &SimFs, dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter_map(|n| Some((parse_segment_file_name(&n)?.ok()?, dir.join(n))))
        .collect();
    v.sort();
    v
}

/// Writes `garbage` right after the intact records of `path` (an append torn by a crash).
/// Returns the greatest LSN of the intact part.
fn tear_after_data(fs: &SimFs, path: &Path) -> u64 {
    let bytes = fs.read_file(path).unwrap();
    let a = analyze_segment(&bytes, 0);
    assert!(a.damage.is_none(), "{:?}", a.damage);
    let f = fs.open(path).unwrap();
    f.write_all_at(&[0xA5u8; 100], a.data_end).unwrap();
    f.sync_data().unwrap();
    a.last_lsn_with_markers
}

/// A zero file named `first_lsn` (another log's prepared file, put here by a roll that
/// raced a move of its directory), durably.
fn place_stray(fs: &SimFs, dir: &Path, first_lsn: u64) -> PathBuf {
    let path = dir.join(segment_file_name(first_lsn));
    let file = fs.create_new(&path).unwrap();
    file.write_all_at(&vec![0u8; 64 << 10], 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();
    path
}

/// What the writer's open, the read-only open and `verify_dir` make of the same state.
fn judge(fs: &SimFs, dir: &Path, opts: SegmentOptions) -> (Health, Result<u64, String>, String) {
    let verdict = seglog::verify_dir_with_fs(fs, dir).unwrap();
    let damage: Vec<_> = verdict.segments.iter().map(|s| s.damage.clone()).collect();
    let reader = SegmentLog::open_read_only(fs.clone(), dir, &mut ())
        .map(|(_, r)| r.last_lsn)
        .map_err(|e| e.to_string());
    let writer = match SegmentLog::open(fs.clone(), dir, opts, &mut ()) {
        Ok((log, report)) => {
            let s = format!(
                "opens: torn_tail {:?}, removed_incomplete {:?}, tail_bound_used {}",
                report.torn_tail, report.removed_incomplete_segment, report.tail_bound_used
            );
            drop(log);
            s
        }
        Err(e) => format!("refuses: {e}"),
    };
    eprintln!(
        "verify: {:?} {damage:?}\nreader: {reader:?}\nwriter: {writer}",
        verdict.health()
    );
    (verdict.health(), reader, writer)
}

/// 16 MiB segments made from a prepared file (written zeros to their end), whose tail the
/// writer bounds with `TAIL_BOUND` (4 MiB steps).
fn prepared_opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 16 << 20,
        max_record_size_bytes: 8 << 10,
        zero_ahead_bytes: 0,
        ..SegmentOptions::default()
    }
}

/// The active segment (made from a prepared file) has a torn tail; a stray zero file named
/// 200 000 LSNs after its records sorts last. The writer's open reads the segment only to its
/// tail bound (`written_end.min(bound)`), so the name does not fit (4 MiB / 48 ≈ 87 000
/// LSNs) and it cuts a torn tail. The tools and the read-only open count every written zero
/// of the 16 MiB file (≈ 350 000 LSNs): the name fits, the damage is "corruption".
#[test]
fn tools_and_reader_judge_a_torn_prepared_segment_before_a_far_stray_as_the_open_does() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let (log, _) = SegmentLog::open(fs.clone(), dir, prepared_opts(), &mut ()).unwrap();
    for i in 1..=5 {
        append(&log, i);
    }
    assert!(log.prepare_next_segment_now());
    log.roll().unwrap();
    for i in 6..=40 {
        append(&log, i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::KeepUnsynced);
    let segs = segments(&fs, dir);
    let (_, last) = segs.last().unwrap().clone();
    let last_good = tear_after_data(&fs, &last);
    place_stray(&fs, dir, last_good + 200_000);

    let (health, reader, writer) = judge(&fs, dir, prepared_opts());
    assert!(
        writer.starts_with("opens") && writer.contains("torn_tail Some"),
        "{writer}"
    );
    assert!(
        writer.contains("tail_bound_used true"),
        "the writer's open did not use the bound: {writer}"
    );
    assert!(
        reader.is_ok(),
        "the read-only open refuses what the writer's open cuts as a torn tail: {reader:?}"
    );
    assert_eq!(
        health,
        Health::TornTail,
        "verify_dir's verdict differs from the writer's open ({writer})"
    );
}

/// Review 134's state (a torn active segment, a stray zero file named far after the log):
/// the open removes the file as a cut creation and cuts the torn tail; the repair plan now
/// calls the cut "a torn tail: never acknowledged", but lists the stray file as a segment
/// removed after the cut, so it still says the repair drops acknowledged data.
#[test]
fn the_repair_plan_of_a_torn_tail_before_a_far_stray_drops_no_acknowledged_data() {
    let opts = SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        ..SegmentOptions::default()
    };
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let (log, _) = SegmentLog::open(fs.clone(), dir, opts.clone(), &mut ()).unwrap();
    for i in 1..=30 {
        append(&log, i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    let segs = segments(&fs, dir);
    assert!(segs.len() >= 3);
    let (_, last) = segs.last().unwrap().clone();
    tear_after_data(&fs, &last);
    let stray = place_stray(&fs, dir, 1 << 40);

    let plan = seglog::plan_salvage(&fs, dir).unwrap();
    eprintln!("{plan:#?}");
    let cut = plan.cut.as_ref().unwrap();
    assert!(!cut.acknowledged, "{cut:?}");

    // What the salvage open does with it.
    let salvage = SegmentOptions {
        recovery_mode: seglog_segment::RecoveryMode::Salvage,
        ..opts
    };
    let copy = fs.crash(CrashMode::KeepUnsynced);
    let (_, report) = SegmentLog::open(copy, dir, salvage, &mut ()).unwrap();
    eprintln!("{report:?}");
    assert_eq!(
        report.removed_incomplete_segment.as_deref(),
        Some(stray.as_path())
    );
    assert!(report.salvage_removed.is_empty());

    assert_eq!(
        plan.incomplete_segment.as_deref(),
        Some(stray.as_path()),
        "the salvage open removes the stray as a cut creation; the plan: {:?}",
        plan.removed
    );
    assert!(
        !plan.drops_acknowledged_data(),
        "the plan says acknowledged data is dropped (removed: {:?}); the salvage drops a torn \
         tail and a file with no record",
        plan.removed
    );
}
