//! Review 143, the engine's side: `Log::append_batch_buffered` submits its batch (numbered,
//! indexed, queued), then writes the queue if it is large, which failed with `Closed` once a
//! close had begun. That close drains the queue, the batch included: the caller was told the
//! append failed for events that the reopened log holds, under their sequence numbers, and an
//! import that retried them stored them twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::SimFs;
use seglog::{Log, Options};
use std::time::Duration;

#[test]
fn a_buffered_append_that_reports_closed_leaves_no_event_behind() {
    let payload = vec![b'p'; 64];
    for attempt in 0..100u64 {
        let fs = SimFs::new();
        // Every append writes the queue: the step that failed after the submit.
        let options = Options::default()
            .segment_size_bytes(1 << 20)
            .buffered_write_bytes(1);
        let log = Log::open_with_fs(fs.clone(), "/log", options.clone()).unwrap();
        let importer = {
            let log = log.clone();
            let payload = payload.clone();
            std::thread::spawn(move || {
                let mut acknowledged = 0usize;
                loop {
                    match log.append_batch_buffered("import", "tenant", &[&payload[..]]) {
                        Ok(_) => acknowledged += 1,
                        Err(e) => return (acknowledged, e),
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_micros(200 + attempt % 7 * 100));
        log.close().unwrap();
        let (acknowledged, error) = importer.join().unwrap();
        assert!(matches!(error, seglog::Error::Closed), "{error}");
        let reopened = Log::open_with_fs(fs.clone(), "/log", options).unwrap();
        let stored = reopened.read("import").map(|e| e.len()).unwrap_or(0);
        reopened.close().unwrap();
        assert_eq!(
            stored, acknowledged,
            "attempt {attempt}: {acknowledged} buffered appends returned Ok and the next one \
             returned {error:?}, yet the reopened log holds {stored} events"
        );
    }
}
