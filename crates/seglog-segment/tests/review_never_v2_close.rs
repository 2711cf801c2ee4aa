// Regression test for a review finding (fixed): `SyncMode::Never` promises "nothing is synced until the segment is sealed or the
// log is closed", and close() is documented to make everything submitted durable. But
// `write_commit_marker` (crates/seglog-segment/src/writer/close.rs) returns early for a
// version-1/2 active segment (`if entry.header.salt == 0 { return Ok(()) }`) *before* the
// `if synced < last { sync()? }` that makes the records durable. A log created by an older
// build and opened by this one with `SyncMode::Never` closes Ok without an fsync: appends
// made before close() are lost in a power cut after close() returned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Review finding (see the comment above).

use seglog_segment::format::{segment_file_name, EventBatch, SEGMENT_HEADER_LEN};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::{SegmentLog, SegmentOptions, SyncMode};
use std::path::Path;

/// The header of an empty version-2 segment 1 starting at LSN 1 (as an older build wrote it).
fn v2_header() -> Vec<u8> {
    let mut b = vec![0u8; SEGMENT_HEADER_LEN];
    b[..8].copy_from_slice(b"SEGLOGSG");
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
    b[16..24].copy_from_slice(&1u64.to_le_bytes());
    b[24..32].copy_from_slice(&1u64.to_le_bytes());
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b
}

fn batch<'a>(payloads: &'a [&'a [u8]]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads,
    }
}

#[test]
fn close_syncs_never_mode_appends_in_a_version_2_segment() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    fs.create_dir_all(dir).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let path = dir.join(segment_file_name(1));
    let f = fs.create_new(&path).unwrap();
    f.write_all_at(&v2_header(), 0).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();
    drop(f);

    let opts = SegmentOptions {
        sync_mode: SyncMode::Never,
        ..SegmentOptions::default()
    };
    let (log, _) = SegmentLog::open(fs.clone(), dir, opts.clone(), &mut ()).unwrap();
    for _ in 0..3 {
        log.append(&batch(&[b"appended before close"])).unwrap();
    }
    log.close().unwrap();
    drop(log);
    // Power cut after a successful close.
    let after = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(after, dir, opts, &mut ()).unwrap();
    let n = log.records().unwrap().count();
    assert_eq!(
        n,
        3,
        "close() returned Ok, yet {} of 3 appends were lost in a power cut after it",
        3 - n
    );
}
