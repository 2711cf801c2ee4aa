//! A log under `SyncMode::Never` with 3,000-byte records of one execution (`sync` tests).

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions, SyncMode};

/// Small segments, so that an import rolls (sealing syncs a segment whatever the mode).
pub fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 * 1024,
        max_record_size_bytes: 16 * 1024,
        sync_mode: SyncMode::Never,
        ..SegmentOptions::default()
    }
}

pub fn payload(i: u64) -> Vec<u8> {
    let mut p = format!("record-{i}-").into_bytes();
    p.resize(3000, b'a' + (i % 26) as u8);
    p
}

pub fn batch(i: u64, payload: &Vec<u8>) -> EventBatch<'_, Vec<u8>> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: 0,
        payloads: std::slice::from_ref(payload),
    }
}

/// What a reopen of `/log` reads: each record's LSN and events.
pub fn recovered(fs: &SimFs) -> Vec<(u64, Vec<Vec<u8>>)> {
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    log.records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.view().lsn(),
                r.view().events().map(<[u8]>::to_vec).collect(),
            )
        })
        .collect()
}
