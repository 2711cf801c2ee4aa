//! Helpers of the tests of the prepared next segment (`prepared_segment.rs`, review 26).

use seglog_segment::format::{EventBatch, PREPARED_SEGMENT_FILE_NAME};
use seglog_segment::io::FileSystem;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;
use std::path::Path;

/// 64 KiB segments; only the prepared file keeps zeros (no zeroed window in the active
/// segment).
pub fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 64 << 10,
        max_record_size_bytes: 8 << 10,
        zero_ahead_bytes: 0,
        ..SegmentOptions::default()
    }
}

/// A payload of `i`'s own size (up to ~3 KiB) and bytes, so a zeroed byte shows.
pub fn payload(i: u64) -> Vec<u8> {
    let len = 1 + (i * 7919 % 3000) as usize;
    (0..len)
        .map(|k| 1 + ((i as usize + k) % 251) as u8)
        .collect()
}

/// Appends [`payload`] `i`; returns its LSN.
pub fn append<F: FileSystem>(log: &SegmentLog<F>, i: u64) -> seglog_segment::Result<u64> {
    append_bytes(log, format!("exec-{}", i % 5).as_bytes(), &payload(i))
}

/// Appends one event, `payload`, to `execution`; returns its LSN.
pub fn append_bytes<F: FileSystem>(
    log: &SegmentLog<F>,
    execution: &[u8],
    payload: &[u8],
) -> seglog_segment::Result<u64> {
    Ok(log
        .append(&EventBatch {
            encoding: 0,
            execution_id: execution,
            tenant_id: b"tenant",
            first_seq: 1,
            timestamp_unix_nanos: 0,
            payloads: &[payload],
        })?
        .lsn)
}

/// Every record's LSN and first payload.
pub fn stored<F: FileSystem>(log: &SegmentLog<F>) -> BTreeMap<u64, Vec<u8>> {
    log.records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            let v = r.view();
            let first = v.events().next().unwrap().to_vec();
            (v.lsn(), first)
        })
        .collect()
}

/// The LSNs of `acked` (LSN → payload index) that `log` does not hold as appended.
pub fn lost<F: FileSystem>(log: &SegmentLog<F>, acked: &BTreeMap<u64, u64>) -> Vec<u64> {
    let stored = stored(log);
    acked
        .iter()
        .filter(|(lsn, i)| stored.get(lsn) != Some(&payload(**i)))
        .map(|(lsn, _)| *lsn)
        .collect()
}

/// Whether `dir` holds a prepared file.
pub fn prepared_exists(fs: &impl FileSystem, dir: &Path) -> bool {
    fs.list(dir)
        .unwrap()
        .iter()
        .any(|n| n == PREPARED_SEGMENT_FILE_NAME)
}
