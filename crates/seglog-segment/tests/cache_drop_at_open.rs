//! What the open drops from the page cache of the last segment before reading it (the
//! fsyncgate defence: pages whose writeback failed stay cached and clean, so recovery must
//! read the disk wherever nothing proves the bytes durable), and how far.
//!
//! - The simulated file system drops pages as Linux's `POSIX_FADV_DONTNEED` does: whole pages
//!   only, the last one partly covered kept unless the range ends at the file's end.
//! - With a tail bound covering the data, the drop stops past the bound: a prepared segment's
//!   written zeros (cached whole after zeroing) are not dropped page by page.
//! - A failed commit writeback under the bound is still read from the disk after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append, lost};
use common::tail_bound::{
    crashed_after_a_prepared_roll, open_and_roll_into_a_prepared_segment, opts,
};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::SegmentLog;
use std::path::Path;

const PAGE: u64 = 4096;

/// A file whose pages 0..3 hold durable "old" bytes and, cached only (their writeback
/// failed), "new" ones.
fn file_with_failed_pages() -> (SimFs, <SimFs as FileSystem>::File) {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let file = fs.create_new(Path::new("/d/f")).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    file.write_all_at(&vec![b'o'; 3 * PAGE as usize + 100], 0)
        .unwrap();
    file.sync_data().unwrap();
    common::fail_next_sync(&fs);
    file.write_all_at(&vec![b'n'; 3 * PAGE as usize + 100], 0)
        .unwrap();
    assert!(file.sync_data().is_err());
    (fs, file)
}

fn byte_at(file: &<SimFs as FileSystem>::File, at: u64) -> u8 {
    let mut b = [0u8];
    file.read_exact_at(&mut b, at).unwrap();
    b[0]
}

#[test]
fn the_simulated_cache_drops_whole_pages_only_as_fadvise_does() {
    let (_fs, file) = file_with_failed_pages();
    // Pages 0 and 1 whole, page 2 in part: page 2 stays cached (the kernel keeps partial
    // pages).
    file.evict(0, 2 * PAGE + 10).unwrap();
    assert_eq!(byte_at(&file, 0), b'o');
    assert_eq!(byte_at(&file, PAGE), b'o');
    assert_eq!(
        byte_at(&file, 2 * PAGE),
        b'n',
        "a partly covered page was dropped"
    );
    // A range ending at the file's last byte drops its last (partial) page too.
    file.evict(2 * PAGE, PAGE + 100).unwrap();
    assert_eq!(byte_at(&file, 2 * PAGE), b'o');
    assert_eq!(byte_at(&file, 3 * PAGE + 50), b'o');
}

#[test]
fn after_a_crash_the_open_drops_the_cache_only_up_to_the_tail_bound() {
    let (fs, acked) = crashed_after_a_prepared_roll(20);
    let before = fs.evicted_bytes();
    let (log, report) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    assert!(report.tail_bound_used, "{report:?}");
    let dropped = fs.evicted_bytes() - before;
    assert!(dropped > 0, "nothing dropped");
    // The bound lies 4 MiB past the data; the segment is 16 MiB of written zeros.
    assert!(
        dropped <= (4 << 20) + (128 << 10),
        "dropped {dropped} bytes: the zeros past the bound too"
    );
    assert!(lost(&log, &acked).is_empty());
}

/// A commit whose writeback failed, in a prepared segment with a bound: after a restart
/// (the page cache keeps the failed pages, clean), recovery reads the disk there, so the
/// record is not served, not vouched for by later rounds, and nothing acknowledged is lost
/// at the next power cut.
#[test]
fn a_failed_commit_writeback_under_the_bound_is_read_from_the_disk_after_a_restart() {
    let fs = SimFs::new();
    let (log, mut acked) = open_and_roll_into_a_prepared_segment(&fs, opts());
    for i in 6..=25 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    common::fail_next_sync(&fs);
    assert!(
        append(&log, 26).is_err(),
        "the failed commit was acknowledged"
    );
    drop(log);

    // The process restarts on the same machine: same page cache.
    let (log, report) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    assert!(report.tail_bound_used, "{report:?}");
    assert!(lost(&log, &acked).is_empty());
    for i in 27..=40 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("open after the power cut: {e}"));
    assert!(lost(&log, &acked).is_empty());
}
