//! Review 114: `wait_outcome` decides `NotSubmitted` from the commit state's `next_lsn`.
//! A read-only log's commit state is made once, at open, and `install_view` (after
//! `reload_read_only`) moves only the atomic durable watermark: a wait for a record the new
//! view serves, and that `durable_lsn()` reports durable, then ends with
//! "no record with LSN .. was submitted".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::io::sim::SimFs;
use seglog_segment::SegmentLog;
use std::sync::mpsc;
use std::time::Duration;

fn within_10s(
    what: &str,
    wait: impl FnOnce() -> seglog_segment::Result<()> + Send + 'static,
) -> seglog_segment::Result<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(wait()));
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(r) => r,
        Err(_) => panic!("{what}: still waiting after 10 s"),
    }
}

#[test]
fn a_wait_on_a_reloaded_read_only_view_for_a_record_it_serves_succeeds() {
    let fs = SimFs::new();
    let log = common::waiting::open_small_log(&fs);
    log.append_record_sync(&log);
    log.roll().unwrap();
    let ro = SegmentLog::open_read_only(fs.clone(), "/log", &mut ())
        .unwrap()
        .0;
    let first = ro.durable_lsn();
    assert!(first >= 1, "the reader serves the sealed record");
    ro.wait_durable(first).unwrap();

    // The writer goes on (and seals); the reader reloads and serves the new record.
    log.append_record_sync(&log);
    log.roll().unwrap();
    let view = ro.reload_read_only(&mut ()).unwrap();
    ro.install_view(view).unwrap();
    let second = ro.durable_lsn();
    assert!(second > first, "the new view serves the new record");

    let ro = std::sync::Arc::new(ro);
    let r = ro.clone();
    let blocking = within_10s("blocking", move || r.wait_durable(second));
    let r = ro.clone();
    let async_ = within_10s("async", move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(r.wait_durable_async(second))
    });
    assert!(
        blocking.is_ok() && async_.is_ok(),
        "durable_lsn() is {} but wait_durable({second}) gave {blocking:?} (blocking), \
         {async_:?} (async)",
        ro.durable_lsn()
    );
    log.close().unwrap();
}

trait AppendSync {
    fn append_record_sync(&self, log: &SegmentLog<SimFs>) -> u64;
}

impl AppendSync for SegmentLog<SimFs> {
    fn append_record_sync(&self, log: &SegmentLog<SimFs>) -> u64 {
        let a = self.submit(common::waiting::record(log, 100)).unwrap();
        self.wait_durable(a.lsn).unwrap();
        a.lsn
    }
}
