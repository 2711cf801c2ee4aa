//! The second handle of the active segment (`open_overlap_file`, for overlapping commit
//! rounds) is opened by path, right after the segment's own file is created (or found at
//! open, or installed from the prepared file). A move of the directory in that window, with
//! another log created at the old path, hands the log a descriptor of the *other* log's
//! segment of the same name (segments are named by their first LSN, so every fresh log has
//! one). Odd-ticket overlapping rounds then `fdatasync` that file instead of their own:
//! records would be acknowledged without their bytes being on stable storage.
//!
//! Fixed: the second handle is kept only when its identity (`SegmentFile::identity`,
//! `fstat`) is the segment file's own; otherwise the roll fails with `DirectoryMoved` (its
//! other steps by path, the directory fsync, went astray too: review 125).
//!
//! The race is made deterministic with a file system that, on the `open` of the second
//! segment's file (a roll: at open, a later directory check catches the move), moves the
//! directory and lets tenant B write a log at the old path until it has a segment of that
//! name, then opens (real Linux files, `StdFs`). A power cut cannot be made on real files, so the test looks
//! at what the log holds: no descriptor of this process may name B's segment once B is
//! closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tenant_batch;

use common::trap_fs::{Action, Call, TrapFs};
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::os::unix::fs::MetadataExt;

/// Same size for both logs, so that both roll at the same LSN and name their second
/// segments alike.
fn record() -> Vec<Vec<u8>> {
    vec![vec![7u8; 64 << 10]]
}

fn options() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 256 << 10,
        zero_ahead_bytes: 0,
        prepare_next_segment: false,
        ..SegmentOptions::default()
    }
}

/// The descriptors of this process open on the file `(device, inode)`.
fn descriptors_on(device: u64, inode: u64) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        // `metadata` follows the magic link to the open file itself (even an unlinked one).
        if let Ok(m) = std::fs::metadata(entry.path()) {
            if m.dev() == device && m.ino() == inode {
                let target = std::fs::read_link(entry.path()).unwrap_or_default();
                found.push(format!(
                    "fd {:?} -> {}",
                    entry.file_name(),
                    target.display()
                ));
            }
        }
    }
    found
}

#[test]
fn a_move_between_creating_the_active_segment_and_opening_its_second_handle_does_not_hand_the_log_another_logs_file(
) {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("log");
    let moved = root.path().join("moved");

    // A's second segment: where a log of these records rolls.
    let name = common::first_roll_name(&root.path().join("probe"), options(), &record());

    let action: Action = {
        let (path, moved, name) = (path.clone(), moved.clone(), name.clone());
        Box::new(move || {
            std::fs::rename(&path, &moved).unwrap();
            // Tenant B's fresh log at the old path, written until it has A's new segment's name.
            let (b, _) = SegmentLog::open(StdFs, &path, options(), &mut ()).unwrap();
            for _ in 0..1000 {
                if path.join(&name).exists() {
                    break;
                }
                b.append(&tenant_batch(b"tenant-b", &record())).unwrap();
            }
            b.close().unwrap();
            drop(b);
        })
    };
    let fs = TrapFs::new(Call::Open, path.join(&name), action);
    let (a, _) = SegmentLog::open(fs.clone(), &path, options(), &mut ()).unwrap();
    let (mut a_acked, mut refused) = (Vec::new(), None);
    while !fs.fired() {
        assert!(a_acked.len() < 1000, "A never rolled: {:?}", a.stats());
        match a.append(&tenant_batch(b"tenant-a", &record())) {
            Ok(r) => a_acked.push((r.lsn, record()[0].clone())),
            Err(e) => refused = Some(e),
        }
    }
    let b_segment = std::fs::metadata(path.join(&name)).unwrap();
    let a_segment = std::fs::metadata(moved.join(&name)).unwrap();
    assert_ne!(
        (b_segment.dev(), b_segment.ino()),
        (a_segment.dev(), a_segment.ino())
    );
    let held = descriptors_on(b_segment.dev(), b_segment.ino());
    assert!(
        held.is_empty(),
        "tenant B's log is closed, yet tenant A's log holds {held:?} on B's segment: the \
         second handle of A's active segment, opened by path after the directory moved. \
         A's overlapping commit rounds would fdatasync B's file and acknowledge A's records \
         unsynced"
    );

    // The roll that found the move failed (its directory fsync, by path, went astray too:
    // review 125), and with it the append that rolled; the log acknowledges nothing more.
    let refused = refused.expect("the roll went on after its second handle named another file");
    assert!(refused.to_string().contains("was moved"), "{refused}");
    assert!(a.append(&tenant_batch(b"tenant-a", &record())).is_err());
    let _ = a.close();
    drop(a);
    let (a, _) = SegmentLog::open(StdFs, &moved, options(), &mut ()).unwrap();
    assert_eq!(common::contents(&a), a_acked);
}
