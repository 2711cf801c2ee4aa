//! Review 130: a file of zeros under a segment name between an offloaded segment and the
//! local segment after it. Counting the offloaded segment's LSNs (its stub), no LSN is
//! missing around the file, and `verify_dir` calls it a leftover that the next open removes
//! (exit status 1 in the CLI). The open's segment layer does not see offloaded segments: to
//! it the greatest LSN before the file is the local segment's before the offloaded one, so
//! it refuses the file ("records are missing").
//! Fixed: the tools count local segments only, as the open does; both refuse the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;
use seglog::io::{FileSystem, SegmentFile};
use seglog::{Damage, Leftover};
use seglog_segment::format::segment_file_name;
use std::path::Path;

#[test]
fn verify_and_the_open_agree_on_a_file_of_zeros_after_an_offloaded_segment() {
    let (fs, source, _) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let segs = log.segments();
    assert!(segs.len() >= 4, "{segs:?}");
    // Offload the second segment only: local, offloaded, local, ...
    let b = segs[1].clone();
    let c = segs[2].clone();
    log.offload_segment(b.number, &target(&source, b.number))
        .unwrap();
    log.close().unwrap();
    assert_eq!(b.last_lsn + 1, c.first_lsn, "{b:?} {c:?}");
    assert!(b.last_lsn > b.first_lsn);

    // The stray file: named inside the offloaded segment's range, before the next local one.
    let dir = Path::new("/log");
    let stray = dir.join(segment_file_name(b.last_lsn));
    let file = fs.create_new(&stray).unwrap();
    file.write_all_at(&vec![0u8; 64 << 10], 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();

    let report = seglog::verify_dir_with_fs(&fs, dir).unwrap();
    let seg = report.segments.iter().find(|s| s.path == stray).unwrap();
    eprintln!(
        "verify_dir: health {:?}, stray's damage {:?}",
        report.health(),
        seg.damage
    );
    let verify_says_leftover = seg.damage == Some(Damage::Leftover(Leftover::Zeros));

    match (open(&fs, &source), verify_says_leftover) {
        (Ok(log), true) => {
            assert_eq!(
                log.stats().recovery.removed_empty_files,
                vec![stray.clone()]
            );
        }
        (Err(e), true) => panic!(
            "verify_dir says {} is a leftover the next open removes (health {:?}, CLI exit \
             status 1), but the open refuses it: {e}",
            stray.display(),
            report.health()
        ),
        (Ok(_), false) => panic!("the open removed a file verify calls corruption"),
        (Err(_), false) => {}
    }
}
