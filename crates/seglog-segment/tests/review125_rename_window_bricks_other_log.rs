//! Review 125: the scenario of `roll_into_moved_directory.rs`'s prepared-file test, carried
//! one step further. Its trap fires inside `rename_no_replace`, i.e. *after*
//! `install_prepared`'s new identity comparison: it runs the window design.md calls "still
//! not caught" (A's rename takes tenant B's `NEXT_SEGMENT` and gives it A's segment name in
//! B's directory). That test passes only because B is closed right away. If B simply keeps
//! appending, its next roll writes B's header into its prepared file, which now carries A's
//! segment name. That roll then fails (`stat` of `NEXT_SEGMENT`: not found), so B is
//! poisoned. And B's directory now holds a segment whose name and header disagree, so B's
//! log no longer opens: every record B acknowledged is out of reach until a manual repair.
//!
//! Real files, `TrapFs`, as in the commit's test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::trap_fs::{Action, Call, TrapFs};
use seglog_segment::format::{EventBatch, PREPARED_SEGMENT_FILE_NAME};
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

fn options() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 256 << 10,
        max_record_size_bytes: 64 << 10,
        zero_ahead_bytes: 0,
        prepare_next_segment: true,
        ..SegmentOptions::default()
    }
}

#[test]
fn a_move_in_the_prepared_rename_window_leaves_the_other_log_unopenable() {
    let root = tempfile::tempdir().unwrap();
    let (path, moved) = (root.path().join("log"), root.path().join("moved"));
    let name = common::first_roll_name(&root.path().join("probe"), options(), &record(1));
    let b_acked: Arc<Mutex<Acked>> = Arc::default();
    let b_log: Arc<Mutex<Option<SegmentLog<StdFs>>>> = Arc::default();

    let action: Action = {
        let (path, moved) = (path.clone(), moved.clone());
        let (b_acked, b_log) = (b_acked.clone(), b_log.clone());
        Box::new(move || {
            std::fs::rename(&path, &moved).unwrap();
            let (b, _) = SegmentLog::open(StdFs, &path, options(), &mut ()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !path.join(PREPARED_SEGMENT_FILE_NAME).exists() {
                assert!(Instant::now() < deadline, "B never prepared");
                let p = vec![vec![b'b'; 4 << 10]];
                let lsn = b.append(&batch(b"tenant-b", &p)).unwrap().lsn;
                b_acked.lock().unwrap().push((lsn, p[0].clone()));
                std::thread::sleep(Duration::from_millis(1));
            }
            *b_log.lock().unwrap() = Some(b);
        })
    };
    let fs = TrapFs::new(Call::RenameNoReplace, path.join(&name), action);
    let (a, _) = SegmentLog::open(fs.clone(), &path, options(), &mut ()).unwrap();
    for i in 0..10_000u32 {
        if fs.fired() {
            break;
        }
        let _ = a.append(&batch(b"tenant-a", &record(i as u8)));
    }
    assert!(fs.fired(), "A never rolled");
    let _ = a.close();
    drop(a);

    // Tenant B, unaware of any of this, keeps appending until its own next roll.
    let b = b_log.lock().unwrap().take().unwrap();
    let b_segments_before = common::segment_names(&path);
    let mut b_error = None;
    for _ in 0..200 {
        let p = vec![vec![b'b'; 4 << 10]];
        match b.append(&batch(b"tenant-b", &p)) {
            Ok(r) => b_acked.lock().unwrap().push((r.lsn, p[0].clone())),
            Err(e) => {
                b_error = Some(e.to_string());
                break;
            }
        }
    }
    let _ = b.close();
    drop(b);
    let b_acked = b_acked.lock().unwrap().clone();
    let reopened = SegmentLog::open(StdFs, &path, options(), &mut ());
    let b_after = common::segment_names(&path);
    match reopened {
        Ok((b, _)) => assert_eq!(common::contents(&b), b_acked, "tenant B's records"),
        Err(e) => panic!(
            "tenant B's log, in a directory A's log never owned, no longer opens: {e}\n\
             ({} records B acknowledged are out of reach; B's own append failed with {b_error:?}; \
             B's segments after A's failed roll: {b_segments_before:?}, now: {b_after:?})",
            b_acked.len()
        ),
    }
    assert!(
        b_error.is_none(),
        "tenant B was poisoned by A's failed roll: {b_error:?}"
    );
}
