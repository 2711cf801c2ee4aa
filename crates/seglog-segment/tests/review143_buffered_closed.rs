//! Review 143: `SegmentLog::submit_buffered` submits its record (it takes an LSN and joins the
//! queue), then calls `write_queued_if_large`, which fails with `Error::Closed` once `close`
//! has begun (`Inner::write_queued_if_large` → `check_usable`). A close that begins between the
//! two drains the queue — the record included — and writes it durably behind a commit marker.
//! So the call returns an error for a record that is in the log: a caller that retries it (an
//! import that resumes from what it was told succeeded) stores it twice. (The same holds for
//! the engine's `Log::append_batch_buffered`, whose record also keeps its sequence number.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::{Error, SegmentLog, SegmentOptions};
use std::time::Duration;

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    }
}

#[test]
fn a_buffered_submit_that_reports_closed_leaves_no_record_behind() {
    for attempt in 0..300u64 {
        let fs = SimFs::new();
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        let payload = [b'p'; 64];
        let importer = {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut ok = 0u64;
                loop {
                    let record = log
                        .encode(&EventBatch {
                            encoding: 0,
                            execution_id: b"import",
                            tenant_id: b"tenant",
                            first_seq: ok + 1,
                            timestamp_unix_nanos: 0,
                            payloads: &[&payload[..]],
                        })
                        .unwrap();
                    match log.submit_buffered(record) {
                        Ok(_) => ok += 1,
                        Err(e) => return (ok, e),
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_micros(200 + attempt % 7 * 50));
        log.close().unwrap();
        let (acknowledged, error) = importer.join().unwrap();
        assert!(matches!(error, Error::Closed), "{error}");
        let (reopened, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        let stored = reopened
            .records()
            .unwrap()
            .filter(|r| {
                r.as_ref()
                    .is_ok_and(|r| r.view().execution_id() == b"import")
            })
            .count() as u64;
        reopened.close().unwrap();
        assert_eq!(
            stored, acknowledged,
            "attempt {attempt}: {acknowledged} buffered submits returned Ok and the next one \
             returned {error:?}, yet the log holds {stored} of their records: the failed \
             submit's record was made durable by the close"
        );
    }
}
