//! Review 124: the zeroing thread checks the directory (`check_dir`, review 121) and *then*
//! opens the tail segment by path (`zero_range`). A move of the directory between the two,
//! with another log opened at the path, is not caught: the zeros go into the other log's
//! segment of the same name (segments are named by their first LSN, so every fresh log has
//! one), over its acknowledged records. Unlike a roll (`create_new` refuses an existing
//! file) this open takes whatever file the path names, and the zeroer never checks that the
//! file it opened is the entry's file.
//!
//! Fixed: after the open, the zeroer compares the file's identity (`SegmentFile::identity`,
//! `fstat`) with the segment's own handle's; another file ends zeroing.
//!
//! The race is made deterministic with a file system that, on the zeroer thread's
//! `identity` call, answers truthfully and then moves the directory and lets tenant B open
//! a log at the old path (real Linux files, `StdFs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tenant_batch;
use common::trap_fs::{Action, Call, TrapFs};
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (LSN, payload) of each acknowledged record.
type Acked = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

fn payload(i: u64) -> Vec<u8> {
    (0..8192)
        .map(|k| 1 + ((i as usize * 7 + k) % 251) as u8)
        .collect()
}

#[test]
fn a_move_between_the_zeroers_check_and_its_open_puts_zeros_into_another_tenants_log() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("log");
    let moved = root.path().join("moved");
    let b_acked: Acked = Arc::default();

    let action: Action = {
        let (path, moved, b_acked) = (path.clone(), moved.clone(), b_acked.clone());
        Box::new(move || {
            std::fs::rename(&path, &moved).unwrap();
            // Tenant B's log at the old path: 40 acknowledged records of 8 KiB, closed.
            let opts = SegmentOptions {
                segment_size_bytes: 4 << 20,
                max_record_size_bytes: 1 << 20,
                ..SegmentOptions::default()
            };
            let (b, _) = SegmentLog::open(StdFs, &path, opts, &mut ()).unwrap();
            for i in 0..40 {
                let p = vec![payload(i)];
                let lsn = b.append(&tenant_batch(b"tenant-b", &p)).unwrap().lsn;
                b_acked.lock().unwrap().push((lsn, p[0].clone()));
            }
            b.close().unwrap();
            drop(b);
        })
    };
    // The zeroer's `check_dir` passed: the move lands right after it, before its open.
    let fs = TrapFs::new(Call::AfterIdentity, path.clone(), action).on_thread("seglog-zeroer");
    let opts_a = SegmentOptions {
        segment_size_bytes: 4 << 20,
        max_record_size_bytes: 1 << 20,
        zero_ahead_bytes: 1 << 20,
        prepare_next_segment: false,
        ..SegmentOptions::default()
    };
    let (a, _) = SegmentLog::open(fs.clone(), &path, opts_a, &mut ()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs.fired() {
        assert!(
            Instant::now() < deadline,
            "the zeroer never checked the directory: {:?}",
            a.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The zeroer goes on from its check to the open (and, before the fix, to the zeros).
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.stats().zeroed_bytes == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let zeroed_by_a = a.stats().zeroed_bytes;
    let _ = a.close();
    drop(a);
    // B's segment (first LSN 1, the same name as A's): the bytes where its records were.
    let name = seglog_segment::format::segment_file_name(1);
    let b_file = std::fs::read(path.join(&name)).unwrap();
    let zeros_in_b = b_file[4096..].iter().filter(|&&x| x == 0).count();

    let opts_b = SegmentOptions {
        segment_size_bytes: 4 << 20,
        max_record_size_bytes: 1 << 20,
        ..SegmentOptions::default()
    };
    let (b, _) =
        SegmentLog::open(StdFs, &path, opts_b, &mut ()).expect("tenant B's log no longer opens");
    let got = common::contents(&b);
    let want = b_acked.lock().unwrap().clone();
    assert!(
        got == want,
        "tenant B acknowledged {} records, {} read back: tenant A's zeroer wrote zeros into \
         B's segment at the path A's directory had (checked, then moved, then opened): A \
         zeroed {zeroed_by_a} bytes; {zeros_in_b} of B's {} bytes after 4096 are zeros",
        want.len(),
        got.len(),
        b_file.len() - 4096
    );
}
