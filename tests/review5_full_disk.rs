//! Review 5: a log reopened on a nearly full disk (real ext4). `SegmentLog::open` goes on
//! when it cannot reserve the active segment ("a full disk must not keep a log from opening
//! (to be read, or to be compacted)"), and small appends still fit. The zeroing thread's
//! zeros past the end of the file do not fit: its ENOSPC must not poison the log.
//!
//! Needs root, loop devices and mkfs.ext4; elsewhere it says why it skips and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use seglog_tests::kernel_fs::{skip, FsKind, LoopMount};
use std::io::Write;
use std::time::Duration;

fn opts(preallocate: bool, zero_ahead_bytes: u64) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4 << 20,
        max_record_size_bytes: 8 << 10,
        preallocate,
        zero_ahead_bytes,
        ..SegmentOptions::default()
    }
}

fn append(log: &SegmentLog<StdFs>, i: u64) -> seglog_segment::Result<u64> {
    let payload = format!("event {i} ").repeat(8);
    Ok(log
        .append(&EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: i + 1,
            timestamp_unix_nanos: 0,
            payloads: &[payload.as_bytes()],
        })?
        .lsn)
}

/// Fills the file system but for about `spare` bytes.
fn fill_but(mount: &std::path::Path, spare: usize) {
    let keep = mount.join("spare");
    std::fs::write(&keep, vec![1u8; spare]).unwrap();
    let mut filler = std::fs::File::create(mount.join("filler")).unwrap();
    for chunk in [1usize << 20, 4096, 1024] {
        let buf = vec![0xa5u8; chunk];
        while filler.write_all(&buf).is_ok() {}
    }
    let _ = filler.sync_all();
    std::fs::remove_file(&keep).unwrap();
    rustix::fs::sync();
}

/// Appends `n` small records after reopening, with the disk full but for 256 KiB;
/// returns the first error.
fn appends_on_a_nearly_full_disk(zero_ahead_bytes: u64) -> Result<(), String> {
    let mount = match LoopMount::new(FsKind::Ext4, 64) {
        Ok(m) => m,
        Err(why) => {
            skip(
                "appends_that_fit_on_a_nearly_full_disk_succeed_with_zeros_ahead_on",
                &why,
            );
            return Ok(());
        }
    };
    let dir = mount.path().join("log");
    {
        // A log written without preallocation (or whose torn tail was cut): its active
        // segment is as long as its data.
        let (log, _) = SegmentLog::open(StdFs, &dir, opts(false, 0), &mut ()).unwrap();
        for i in 0..3 {
            append(&log, i).unwrap();
        }
        log.close().unwrap();
    }
    fill_but(mount.path(), 256 << 10);
    let (log, _) = SegmentLog::open(StdFs, &dir, opts(true, zero_ahead_bytes), &mut ())
        .map_err(|e| format!("reopen: {e}"))?;
    std::thread::sleep(Duration::from_millis(500));
    for i in 3..40 {
        append(&log, i).map_err(|e| format!("append {i}: {e}"))?;
    }
    log.close().map_err(|e| format!("close: {e}"))
}

#[test]
fn appends_that_fit_on_a_nearly_full_disk_succeed_with_zeros_ahead_off() {
    appends_on_a_nearly_full_disk(0).unwrap_or_else(|e| panic!("zeros ahead off: {e}"));
}

#[test]
fn appends_that_fit_on_a_nearly_full_disk_succeed_with_zeros_ahead_on() {
    appends_on_a_nearly_full_disk(SegmentOptions::default().zero_ahead_bytes)
        .unwrap_or_else(|e| panic!("zeros ahead on (the default): {e}"));
}
