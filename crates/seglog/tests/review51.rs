//! Review 51: a repair of a log whose interrupted offload (stub committed, file still here)
//! has a damaged checkpoint. The salvage open finishes the offload, writing the checkpoint
//! again from the file and removing the file; the repair then removed the "damaged"
//! checkpoint it had planned to remove, which was by then the only index of the offloaded
//! segment: the log no longer opened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;
use seglog::io::sim::SimFs;
use seglog::io::{FileSystem, SegmentFile};
use std::path::Path;

fn put_file(fs: &SimFs, path: &Path, bytes: &[u8]) {
    let f = fs.create_new(path).unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
    drop(f);
    fs.sync_dir(Path::new("/log")).unwrap();
}

#[test]
fn review51_a_repair_never_removes_the_checkpoint_of_an_offload_the_open_finishes() {
    let (fs, source, expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let victim = sealed[1].clone();
    let seg_bytes = fs.read_file(&victim.path).unwrap();
    log.offload_segment(victim.number, &target(&source, victim.number))
        .unwrap();
    log.close().unwrap();
    drop(log);
    put_file(&fs, &victim.path, &seg_bytes);
    let idx = Path::new("/log").join(format!("{:020}.idx", victim.first_lsn));
    let mut cp = fs.read_file(&idx).unwrap();
    let at = cp.len() / 2;
    cp[at] ^= 0x01;
    fs.replace_file(&idx, cp).unwrap();

    let result = seglog::repair_dir_with_fs(fs.clone(), Path::new("/log"), |_| true);
    let log = open(&fs, &source).unwrap_or_else(|e| {
        panic!(
            "after repair ({:?}) the log does not open: {e}",
            result.as_ref().map(|r| &r.plan)
        )
    });
    assert_eq!(common::dump(&log, &TENANTS), expected);
    log.close().unwrap();
    let report = result.unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}
