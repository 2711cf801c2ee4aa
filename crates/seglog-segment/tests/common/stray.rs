//! Another log's file of zeros under a segment name in this log's directory (design.md, "The
//! directory moved under an open log"), and a writer's records around it: unsynced ones, or
//! an append cut short.

use super::{append_one, contents, payload};
use seglog_segment::format::{segment_file_name, EventBatch};
use seglog_segment::io::sim::{Fault, FaultKind, Op, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::{Path, PathBuf};

/// Another log's prepared file (64 KiB of zeros, no header), renamed into `dir` under the
/// segment name of `name_lsn`, durably.
pub fn place_stray<F: FileSystem>(fs: &F, dir: &Path, name_lsn: u64) -> PathBuf {
    let path = dir.join(segment_file_name(name_lsn));
    let file = fs.create_new(&path).unwrap();
    file.write_all_at(&vec![0u8; 64 << 10], 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();
    path
}

/// Submits event `i` without waiting for its sync (with `buffered_write_bytes: 1`, written
/// to the file at once); returns its LSN.
pub fn submit_buffered<F: FileSystem>(log: &SegmentLog<F>, i: u64) -> u64 {
    let p = payload(i);
    let record = log
        .encode(&EventBatch {
            encoding: 0,
            execution_id: format!("exec-{}", i % 7).as_bytes(),
            tenant_id: b"tenant",
            first_seq: i,
            timestamp_unix_nanos: i as i64,
            payloads: &[&p[..]],
        })
        .unwrap();
    log.submit_buffered(record).unwrap().lsn
}

/// The greatest LSN a fresh read-only open of `dir` serves (0 for none).
pub fn served_through<F: FileSystem + Clone>(fs: &F, dir: &str) -> u64 {
    let (reader, _) = SegmentLog::open_read_only(fs.clone(), dir, &mut ()).unwrap();
    contents(&reader).last().map_or(0, |r| r.0)
}

/// A log at `/log` of 10 acknowledged records whose 11th append was cut short by a short
/// write (the log is poisoned); `stray`: whether another log's file arrived meanwhile, named
/// after every segment of this log. Returns the acknowledged records.
pub fn torn_log(opts: SegmentOptions, stray: bool) -> (SimFs, Vec<(u64, Vec<u8>)>) {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts, &mut ()).unwrap();
    for i in 1..=10 {
        append_one(&log, i).unwrap();
    }
    let acked = contents(&log);
    if stray {
        place_stray(&fs, Path::new("/log"), 1 << 40);
    }
    fs.inject(Fault {
        op: Some(Op::Write),
        nth: fs.op_count(Op::Write) + 1,
        kind: FaultKind::ShortWrite,
        persistent: false,
    });
    assert!(
        append_one(&log, 11).is_err(),
        "the short write was acknowledged"
    );
    drop(log);
    fs.clear_faults();
    (fs, acked)
}
