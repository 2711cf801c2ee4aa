//! Review 131: the disk lost the log's last two segments (both read as zeros). The first
//! open removes the last one (a cut creation) and then refuses the sealed one before it
//! (review 129). But the removal already happened: a second open finds the sealed segment
//! last, takes it for a cut creation in turn, and removes it with its acknowledged records.
//! Fixed: recovery removes files only once every check of the open has passed.
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
fn a_second_open_after_a_refusal_does_not_remove_the_lost_sealed_segment() {
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
    let (_, sealed) = segs[segs.len() - 2].clone();
    for (_, path) in &segs[segs.len() - 2..] {
        let f = fs.open(path).unwrap();
        let len = f.len().unwrap();
        f.write_all_at(&vec![0u8; len as usize], 0).unwrap();
        f.sync_data().unwrap();
    }

    let first = Log::open_with_fs(fs.clone(), dir, opts());
    assert!(first.is_err(), "the first open refuses (review 129)");
    eprintln!("first open refused: {}", first.err().unwrap());
    // The same verdict from the tools as before the first open.
    let before_retry = seglog::verify_dir_with_fs(&fs, dir).unwrap();
    eprintln!("verify between the opens: {:?}", before_retry.health());

    match Log::open_with_fs(fs.clone(), dir, opts()) {
        Err(e) => eprintln!("second open refused too: {e}"),
        Ok(log) => {
            let got = dump(&log, &["t"]);
            let count = |d: &common::Dump| -> usize {
                d.values()
                    .flat_map(|rows| rows.iter().map(|(_, _, ev)| ev.len()))
                    .sum()
            };
            panic!(
                "the second open succeeded: removed_incomplete_segment {:?}; {} of {} \
                 acknowledged events are gone; sealed segment {} exists: {}",
                log.stats().recovery.removed_incomplete_segment,
                count(&expected) - count(&got),
                count(&expected),
                sealed.display(),
                fs.read_file(&sealed).is_some(),
            );
        }
    }
}
