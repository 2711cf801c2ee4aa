//! Review 115: `install_view` took any reloaded view into any log. Into a log open for
//! writing, a view loaded earlier replaced the writer's segment table with read-only handles
//! (the next append failed, and poisoned the log) and rewound the commit state (`next_lsn`,
//! the durable watermarks) to the view's last LSN, so LSNs already acknowledged would be
//! given again. Into a read-only log of another directory, it served that directory's
//! records as this log's.
//!
//! Fixed: `install_view` refuses (with an error, changing nothing) a log open for writing and
//! a view of another directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog_segment::io::sim::SimFs;
use seglog_segment::{SegmentLog, SegmentOptions};

fn append(log: &SegmentLog<SimFs>) -> u64 {
    let appended = log.submit(common::waiting::record(log, 100)).unwrap();
    log.wait_durable(appended.lsn).unwrap();
    appended.lsn
}

#[test]
fn a_view_installed_into_a_writable_log_is_refused_and_lsns_never_repeat() {
    let fs = SimFs::new();
    let log = common::waiting::open_small_log(&fs);
    append(&log);
    log.roll().unwrap();
    let reader = SegmentLog::open_read_only(fs.clone(), "/log", &mut ())
        .unwrap()
        .0;
    let stale = reader.reload_read_only(&mut ()).unwrap();
    let before = (0..5).map(|_| append(&log)).max().unwrap();
    let durable = log.durable_lsn();

    let refused = log.install_view(stale);
    let next = append(&log);
    assert!(
        next > before,
        "after install_view, the writer gave LSN {next} again (it had acknowledged up to \
         {before})"
    );
    assert!(
        log.durable_lsn() >= durable,
        "the durable watermark moved back"
    );
    assert!(
        refused.is_err(),
        "install_view into a writable log was taken"
    );
    log.close().unwrap();
}

#[test]
fn a_view_of_another_directory_is_refused() {
    let fs = SimFs::new();
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        max_record_size_bytes: 4096,
        ..SegmentOptions::default()
    };
    for dir in ["/a", "/b"] {
        let (log, _) = SegmentLog::open(fs.clone(), dir, opts.clone(), &mut ()).unwrap();
        for _ in 0..if dir == "/a" { 1 } else { 3 } {
            append(&log);
        }
        log.roll().unwrap();
        log.close().unwrap();
    }
    let a = SegmentLog::open_read_only(fs.clone(), "/a", &mut ())
        .unwrap()
        .0;
    let b = SegmentLog::open_read_only(fs.clone(), "/b", &mut ())
        .unwrap()
        .0;
    let served = a.durable_lsn();
    let view_of_b = b.reload_read_only(&mut ()).unwrap();
    assert!(
        a.install_view(view_of_b).is_err(),
        "a view of /b was served as /a"
    );
    assert_eq!(a.durable_lsn(), served);
    assert_eq!(a.records().unwrap().count(), 1, "/a serves /b's records");
    // Its own view still installs.
    let own = a.reload_read_only(&mut ()).unwrap();
    a.install_view(own).unwrap();
}
