//! Small logs of one tenant each on real files, for the tests of which log a reader serves.

use seglog_segment::format::EventBatch;
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;

pub fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    }
}

/// Creates a log at `dir` holding `records` records of `tenant`, sealed, and closes it.
pub fn write_log(dir: &Path, tenant: &[u8], records: usize) {
    let (log, _) = SegmentLog::open(StdFs, dir, opts(), &mut ()).unwrap();
    for i in 0..records {
        log.append(&EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: tenant,
            first_seq: i as u64 + 1,
            timestamp_unix_nanos: 0,
            payloads: &[b"event".as_slice()],
        })
        .unwrap();
    }
    log.roll().unwrap();
    log.close().unwrap();
}

/// The tenant of every record `log` serves, in log order.
pub fn tenants(log: &SegmentLog<StdFs>) -> Vec<String> {
    log.records()
        .unwrap()
        .map(|r| String::from_utf8_lossy(r.unwrap().view().tenant_id()).into_owned())
        .collect()
}
