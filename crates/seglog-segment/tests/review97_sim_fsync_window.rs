//! Review 97: the simulated file system against the kernel, for fsyncs that take time.
//!
//! `fdatasync(2)` writes back the pages dirty when it starts (the kernel tags them for
//! writeback, then waits for them); a write that lands while it is in flight is not covered
//! by it. `SimFile::sync_data` sleeps its simulated latency *first* and only then takes the
//! inode's dirty changes, so every write made during the latency is made durable by an
//! fsync that began before it. An engine that acknowledged a record on the strength of an
//! fsync already in flight when the record was written would pass every simulated crash
//! test that sets a sync latency (overlapping_rounds.rs, crash.rs's slow fsyncs, this
//! review's sweeps), and lose it on a real disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use std::path::Path;
use std::time::Duration;

#[test]
fn an_fsync_does_not_cover_a_write_made_after_it_began() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let file = fs.create_new(Path::new("/d/f")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    file.write_all_at(b"before", 0).unwrap();
    fs.set_sync_latency(Duration::from_millis(200));
    std::thread::scope(|s| {
        let syncing = s.spawn(|| file.sync_data().unwrap());
        // Once the fsync has begun (and long before its 200 ms are over).
        while fs.syncs_started() == 0 {
            std::thread::yield_now();
        }
        file.write_all_at(b"AFTER!", 6).unwrap();
        syncing.join().unwrap();
    });
    fs.set_sync_latency(Duration::ZERO);
    let crashed = fs.crash(CrashMode::LoseUnsynced);
    let bytes = crashed.read_file(Path::new("/d/f")).unwrap();
    assert_eq!(
        bytes,
        b"before".to_vec(),
        "a write made while a 200 ms fsync was in flight was made durable by that fsync (the disk \
         holds {:?}); the kernel's fdatasync covers the pages dirty when it starts",
        String::from_utf8_lossy(&bytes)
    );
}
