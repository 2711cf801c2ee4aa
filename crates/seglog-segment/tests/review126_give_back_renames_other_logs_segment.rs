//! Review 126: the give-back rename in `install_prepared` (`rename_no_replace(path, &from)`
//! when `named_here(path, own)` is false) assumes that a false `named_here` means the
//! rename just done took another log's prepared file *at this path*, so that the prepared
//! name "was just freed". But `named_here` is also false when the directory moved *after*
//! the rename and before the look: the rename then went into this log's own (moved)
//! directory, the prepared path `P/NEXT_SEGMENT` was never freed, and `P/<segment>` names
//! whatever another log (B, opened at the old path) keeps under that name: one of its
//! segments. The give-back renames B's segment to `NEXT_SEGMENT`, which B's next open
//! removes as a leftover prepared file: every record B acknowledged in it is gone.
//!
//! Before this change, A would have failed later (or gone on) but never touched B's
//! segment files by name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::trap_fs::{Action, Call, TrapFs};
use seglog_segment::format::{EventBatch, PREPARED_SEGMENT_FILE_NAME};
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;
use std::sync::{Arc, Mutex};

type Acked = Vec<(u64, Vec<u8>)>;

fn batch<'a>(tenant: &'a [u8], payloads: &'a [Vec<u8>]) -> EventBatch<'a, Vec<u8>> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: tenant,
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads,
    }
}

fn record(i: u8) -> Vec<Vec<u8>> {
    vec![vec![i.max(1); 16 << 10]]
}

fn options(prepare: bool) -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 256 << 10,
        max_record_size_bytes: 64 << 10,
        zero_ahead_bytes: 0,
        prepare_next_segment: prepare,
        overlap_min_records: 0,
        ..SegmentOptions::default()
    }
}

/// Opens log B at `path` and appends until it has a second segment (`name`); closes it.
fn make_b(path: &Path, name: &str, acked: &Mutex<Acked>) {
    let (b, _) = SegmentLog::open(StdFs, path, options(false), &mut ()).unwrap();
    for i in 0..10_000u32 {
        if path.join(name).exists() {
            // A few records into that segment, acknowledged.
            for j in 0..3u8 {
                let p = vec![vec![b'B'.wrapping_add(j); 1000]];
                let lsn = b.append(&batch(b"tenant-b", &p)).unwrap().lsn;
                acked.lock().unwrap().push((lsn, p[0].clone()));
            }
            break;
        }
        let p = record(i as u8);
        let lsn = b.append(&batch(b"tenant-b", &p)).unwrap().lsn;
        acked.lock().unwrap().push((lsn, p[0].clone()));
    }
    assert!(path.join(name).exists(), "B never rolled into {name}");
    b.close().unwrap();
}

#[test]
fn a_move_right_after_the_prepared_rename_does_not_rename_another_logs_segment() {
    let root = tempfile::tempdir().unwrap();
    let (path, moved) = (root.path().join("log"), root.path().join("moved"));
    let name = common::first_roll_name(&root.path().join("probe"), options(true), &record(1));
    let b_acked: Arc<Mutex<Acked>> = Arc::default();

    // Sprung at A's first look at `P/<segment>`: `named_here`, right after A's rename of
    // its own prepared file (in its own directory, not yet moved).
    let action: Action = {
        let (path, moved, name, b_acked) = (path.clone(), moved.clone(), name.clone(), b_acked.clone());
        Box::new(move || {
            assert!(
                path.join(&name).exists() && !path.join(PREPARED_SEGMENT_FILE_NAME).exists(),
                "the trap did not spring right after A's rename"
            );
            std::fs::rename(&path, &moved).unwrap();
            make_b(&path, &name, &b_acked);
        })
    };
    let fs = TrapFs::new(Call::Identity, path.join(&name), action);
    let (a, _) = SegmentLog::open(fs.clone(), &path, options(true), &mut ()).unwrap();
    let mut a_acked = Vec::new();
    let mut error = None;
    for i in 0..10_000u32 {
        if fs.fired() {
            break;
        }
        let p = record(i as u8);
        match a.append(&batch(b"tenant-a", &p)) {
            Ok(r) => a_acked.push((r.lsn, p[0].clone())),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(fs.fired(), "A never rolled into its prepared file");
    eprintln!("A's roll: {error:?}");
    let _ = a.close();
    drop(a);

    let b_names = common::segment_names(&path);
    let next_there = path.join(PREPARED_SEGMENT_FILE_NAME).exists();
    eprintln!("B's directory after A's roll: {b_names:?}, NEXT_SEGMENT there: {next_there}");
    let b_acked = b_acked.lock().unwrap().clone();
    let (b, _) = SegmentLog::open(StdFs, &path, options(false), &mut ()).unwrap();
    let got = common::contents(&b);
    assert!(
        got == b_acked,
        "B acknowledged {} records, {} read back after its reopen: A's give-back rename took \
         B's segment {name} (B's directory then held {b_names:?}, NEXT_SEGMENT: {next_there}), \
         and B's open removed it as a leftover prepared file",
        b_acked.len(),
        got.len()
    );
    drop(b);
    let (a, _) = SegmentLog::open(StdFs, &moved, options(false), &mut ()).unwrap();
    assert_eq!(common::contents(&a), a_acked, "A's records");
}
