//! Review 136: a reader's snapshot sees a cut creation (left by a crash in an explicit
//! roll, named the sealed segment's greatest LSN + 2); a writer's open then removes it and
//! appends to the segment before it, which is active again, before the reader reads that
//! segment whole. Review 134's first fix then served the unsynced append (its name fit), or
//! called an append in flight corruption. Fixed: readers serve the segment before a last
//! file with no header as the active one (its proven part).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::stray::submit_buffered;
use common::trap_fs::{Call, TrapFs};
use common::{append_one, contents, small_opts};
use seglog_segment::format::segment_file_name;
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::FileSystem;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        prepare_next_segment: false,
        buffered_write_bytes: 1,
        ..small_opts()
    }
}

#[test]
fn reader_serves_unsynced_records_after_a_writer_removed_a_cut_creation() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let (writer, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&writer, i).unwrap();
    }
    let last = contents(&writer).last().unwrap().0;
    writer.roll().unwrap();
    drop(writer);
    // A crash cut the roll's creation: its file holds no header.
    let by_roll = dir.join(segment_file_name(last + 2));
    fs.remove(&by_roll).unwrap();
    fs.create_new(&by_roll).unwrap();
    fs.sync_dir(dir).unwrap();
    let first = dir.join(segment_file_name(1));

    // The writer's open comes while the reader loads: after the reader's snapshot (the cut
    // creation still there), before it reads the segment before it.
    let live: Arc<Mutex<Option<SegmentLog<SimFs>>>> = Arc::default();
    let unsynced = Arc::new(AtomicU32::new(0));
    let (live2, unsynced2, fs2) = (live.clone(), unsynced.clone(), fs.clone());
    let hook = TrapFs::over(
        fs.clone(),
        Call::OpenReadOnly,
        first.clone(),
        Box::new(move || {
            let (w, report) = SegmentLog::open(fs2, "/log", opts(), &mut ()).unwrap();
            assert!(report.removed_incomplete_segment.is_some(), "{report:?}");
            let lsn = submit_buffered(&w, 11);
            assert!(w.durable_lsn() < lsn);
            unsynced2.store(lsn as u32, Ordering::SeqCst);
            *live2.lock().unwrap() = Some(w);
        }),
    )
    .at_nth(2);
    let (reader, _) = SegmentLog::open_read_only(hook, "/log", &mut ()).unwrap();
    let served = contents(&reader).last().map_or(0, |r| r.0);
    let unsynced = u64::from(unsynced.load(Ordering::SeqCst));
    assert!(unsynced > 0, "the hook did not fire");
    let after = fs.crash(CrashMode::LoseUnsynced);
    drop(live.lock().unwrap().take());
    let (reopened, _) = SegmentLog::open(after, "/log", opts(), &mut ()).unwrap();
    let kept = contents(&reopened).last().map_or(0, |r| r.0);
    assert!(
        served <= kept,
        "the reader served through LSN {served} (the writer's unsynced append was LSN \
         {unsynced}); after a power cut the log holds through {kept}"
    );
}

/// The same race with a normal roll's name (the greatest LSN + 1): the restarted writer's
/// first append is cut short (a short write; in a live log, simply an append in flight).
/// The reader calls it damage to a sealed segment, where the segment is the active one and
/// the writer's open cuts the torn tail.
#[test]
fn reader_calls_an_append_in_flight_corruption_after_a_writer_removed_a_cut_creation() {
    use seglog_segment::io::sim::{Fault, FaultKind, Op};
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let o = SegmentOptions {
        buffered_write_bytes: 0,
        ..opts()
    };
    let (writer, _) = SegmentLog::open(fs.clone(), "/log", o.clone(), &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&writer, i).unwrap();
    }
    let acked = contents(&writer);
    let last = acked.last().unwrap().0;
    drop(writer);
    // A crash in a roll: the next file, named the greatest LSN + 1, has no header.
    let next = dir.join(segment_file_name(last + 1));
    fs.create_new(&next).unwrap();
    fs.sync_dir(dir).unwrap();
    let first = dir.join(segment_file_name(1));
    let (fs2, o2) = (fs.clone(), o.clone());
    let hook = TrapFs::over(
        fs.clone(),
        Call::OpenReadOnly,
        first,
        Box::new(move || {
            let (w, report) = SegmentLog::open(fs2.clone(), "/log", o2, &mut ()).unwrap();
            assert!(report.removed_incomplete_segment.is_some(), "{report:?}");
            fs2.inject(Fault {
                op: Some(Op::Write),
                nth: fs2.op_count(Op::Write) + 1,
                kind: FaultKind::ShortWrite,
                persistent: false,
            });
            assert!(append_one(&w, 11).is_err());
            drop(w);
            fs2.clear_faults();
        }),
    )
    .at_nth(2);
    let read = SegmentLog::open_read_only(hook, "/log", &mut ()).map(|(r, _)| contents(&r));
    let (writer, report) = SegmentLog::open(fs.clone(), "/log", o, &mut ()).unwrap();
    assert!(report.torn_tail.is_some(), "{report:?}");
    assert_eq!(contents(&writer), acked);
    match read {
        Ok(records) => assert!(acked.starts_with(&records)),
        Err(e) => panic!("the reader refuses a log the writer's open accepts: {e}"),
    }
}
