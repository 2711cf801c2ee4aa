//! Review 129: when the disk lost the log's last two segments (both read as zeros), the
//! open removes the last one (taken for a segment whose creation a crash cut, as ever) and
//! must refuse the sealed one before it. A first version of the zeroed-file removal
//! (`zeroed_file_under_a_segment_name.rs`) removed both: the open succeeded without the
//! sealed segment's acknowledged records, and its index checkpoint, which listed them, was
//! deleted as an orphan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::dump;
use seglog::io::sim::SimFs;
use seglog::io::{FileSystem, SegmentFile};
use seglog::{CheckpointMode, Log, Options};
use seglog_segment::format::parse_segment_file_name;
use std::path::{Path, PathBuf};

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
}

#[test]
fn a_lost_sealed_segment_before_a_lost_last_segment_is_refused_not_removed() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let log = Log::open_with_fs(fs.clone(), dir, opts()).unwrap();
    for i in 0..200u64 {
        let p = format!("payload {i} {}", "x".repeat((i % 50) as usize));
        log.append_blocking(&format!("exec-{}", i % 11), "t", p.as_bytes())
            .unwrap();
    }
    let expected = dump(&log, &["t"]);
    log.close().unwrap();

    let mut segs: Vec<(u64, PathBuf)> = fs
        .file_names(dir)
        .into_iter()
        .filter_map(|n| Some((parse_segment_file_name(&n)?.ok()?, dir.join(n))))
        .collect();
    segs.sort();
    assert!(segs.len() >= 4, "{segs:?}");
    let (sealed_lsn, sealed) = segs[segs.len() - 2].clone();
    let idx = dir.join(format!("{sealed_lsn:020}.idx"));
    assert!(
        fs.read_file(&idx).is_some(),
        "the sealed segment has a checkpoint"
    );
    // The disk loses the last two segments: both read as zeros.
    for (_, path) in &segs[segs.len() - 2..] {
        let f = fs.open(path).unwrap();
        let len = f.len().unwrap();
        f.write_all_at(&vec![0u8; len as usize], 0).unwrap();
        f.sync_data().unwrap();
    }

    match Log::open_with_fs(fs.clone(), dir, opts()) {
        Err(e) => {
            eprintln!("refused: {e}");
            assert!(fs.read_file(&sealed).is_some());
        }
        Ok(log) => {
            let r = log.stats().recovery;
            let got = dump(&log, &["t"]);
            let count = |d: &common::Dump| -> usize {
                d.values()
                    .flat_map(|rows| rows.iter().map(|(_, _, ev)| ev.len()))
                    .sum()
            };
            panic!(
                "the open succeeded: removed_incomplete_segment {:?}, removed_empty_files \
                 {:?}; {} of {} acknowledged events are gone; sealed segment {} exists: {}, \
                 its checkpoint {} exists: {}",
                r.removed_incomplete_segment,
                r.removed_empty_files,
                count(&expected) - count(&got),
                count(&expected),
                sealed.display(),
                fs.read_file(&sealed).is_some(),
                idx.display(),
                fs.read_file(&idx).is_some(),
            );
        }
    }
}
