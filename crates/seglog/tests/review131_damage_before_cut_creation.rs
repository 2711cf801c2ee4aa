//! Review 131: the last segment's creation was cut (a file under its name, no header, all
//! zeros) and the sealed segment before it has a damaged last record. `verify_dir` judges
//! that segment as sealed (not last): the damage is corruption. The open removes the cut
//! creation first, then takes the sealed segment for the last one and cuts its damaged
//! record as a torn tail: the two disagree about that segment.
//! Fixed: that segment was sealed (whole and synced) before the creation began, so the open
//! calls its damage corruption too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::io::{FileSystem, SegmentFile};
use seglog::{CheckpointMode, Health, Log, Options};
use seglog_segment::format::{parse_segment_file_name, segment_file_name};
use seglog_segment::inspect::analyze_segment;
use std::path::{Path, PathBuf};

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Off)
}

#[test]
fn verify_and_the_open_agree_on_damage_before_a_cut_creation() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let log = Log::open_with_fs(fs.clone(), dir, opts()).unwrap();
    for i in 0..200u64 {
        log.append_blocking(
            &format!("exec-{}", i % 11),
            "t",
            format!("payload {i}").as_bytes(),
        )
        .unwrap();
    }
    // A crash (no close: no commit marker vouches for the last record).
    let fs = fs.crash(seglog::io::sim::CrashMode::LoseUnsynced);
    std::mem::forget(log);
    let mut segs: Vec<(u64, PathBuf)> = fs
        .file_names(dir)
        .into_iter()
        .filter_map(|n| Some((parse_segment_file_name(&n)?.ok()?, dir.join(n))))
        .collect();
    segs.sort();
    let (_, last) = segs.last().unwrap().clone();
    // Bit rot in the last record of the last (sealed-to-be) segment.
    let bytes = fs.read_file(&last).unwrap();
    let a = analyze_segment(&bytes, 0);
    let off = *a.record_offsets.last().unwrap() as usize + 30;
    let f = fs.open(&last).unwrap();
    f.write_all_at(&[bytes[off] ^ 0xff], off as u64).unwrap();
    f.sync_data().unwrap();
    // Then a roll's creation of the next segment, cut by a crash.
    let next = dir.join(segment_file_name(a.last_lsn_with_markers + 1));
    let c = fs.create_new(&next).unwrap();
    c.write_all_at(&[0u8; 64], 0).unwrap();
    c.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();

    let report = seglog::verify_dir_with_fs(&fs, dir).unwrap();
    let damage: Vec<_> = report
        .segments
        .iter()
        .map(|s| (&s.path, &s.damage))
        .collect();
    let open = Log::open_with_fs(fs.clone(), dir, opts());
    match (report.health(), open) {
        (Health::Corrupt, Ok(log)) => panic!(
            "verify_dir says the log is corrupt ({damage:?}), the open succeeds: {:?}",
            log.stats().recovery
        ),
        (h, Ok(log)) => eprintln!("agree: {h:?} {damage:?} {:?}", log.stats().recovery),
        (h, Err(e)) if h != Health::Corrupt => {
            panic!("verify_dir says {h:?}, the open refuses: {e}")
        }
        (h, Err(e)) => eprintln!("agree: {h:?} {damage:?} {e}"),
    }
}
