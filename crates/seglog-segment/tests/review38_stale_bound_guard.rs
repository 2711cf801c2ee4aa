//! Review 38 (tail bound, 87cabd7): recovery's guard against a stale bound ("trusted only
//! while the data it reads ends before it": a build that keeps none may have appended past
//! it) fails as soon as the scan stops *before* the bound because of damage. The bound is
//! then trusted and the torn-tail look-ahead stops at it, so damage to an acknowledged record
//! lying across the stale bound, proven acknowledged by the records after it, is cut silently
//! with every record after it — the same crash without the bound file refuses to open.
//!
//! The stale bound is made as it can arise: a build that does not know the file (simulated:
//! the file is set aside while a writer keeping no bound appends, then put back as an old
//! build would have left it) appends past it. Such a build can only open a segment of format
//! version 4 or earlier, so the segment's header is made version 4 first (a segment an old
//! build created, which this build then appended to, keeping a bound for it).
//!
//! Fixed by trusting a bound only for a segment of version 5 (`TAIL_BOUND_SEGMENT_VERSION`),
//! which no such build can open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tail_bound::{last_segment, opts};

use common::prepared::{append, lost};
use seglog_segment::format::{TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn damage_across_a_bound_an_old_build_wrote_past_is_refused_as_without_the_file() {
    let fs = SimFs::new();
    let tb = Path::new("/log").join(TAIL_BOUND_FILE_NAME);
    let mut acked = BTreeMap::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=5 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert!(log.prepare_next_segment_now());
    log.roll().unwrap();
    let mut i = 5;
    for _ in 0..20 {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::KeepUnsynced);
    // The segment, as an old build would have created it: format version 4.
    let last = last_segment(&fs);
    let mut bytes = fs.read_file(&last).unwrap();
    bytes[8..10].copy_from_slice(&4u16.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    fs.replace_file(&last, bytes).unwrap();
    let saved = fs.read_file(&tb).unwrap();
    let stale = TailBound::newest(&saved).unwrap();

    // The old build: ignores TAIL_BOUND, appends past its bound in the same segment.
    let old_build = SegmentOptions {
        prepare_next_segment: false,
        ..opts()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", old_build, &mut ()).unwrap();
    while log.segments().last().unwrap().data_end < stale.bound + (64 << 10) {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let fs = fs.crash(CrashMode::LoseUnsynced);
    // ... which never removed the file.
    let f = fs.create_new(&tb).unwrap();
    f.write_all_at(&saved, 0).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/log")).unwrap();

    let seg = last_segment(&fs);
    // One flipped bit in the acknowledged record lying across the stale bound.
    let mut bytes = fs.read_file(&seg).unwrap();
    bytes[stale.bound as usize - 1] ^= 0x40;
    fs.replace_file(&seg, bytes).unwrap();

    let control = fs.fork();
    control.remove(&tb).unwrap();
    let Err(err) = SegmentLog::open(control, "/log", opts(), &mut ()) else {
        panic!("control: damaged acknowledged data opened without the bound file");
    };
    assert!(err.is_corruption(), "{err}");

    match SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok((log, report)) => panic!(
            "opened, cutting {} acknowledged records (tail_bound_used={}, torn_tail={:?})",
            lost(&log, &acked).len(),
            report.tail_bound_used,
            report.torn_tail
        ),
    }
}
