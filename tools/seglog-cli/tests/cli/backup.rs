//! `seglog backup`: copies a log without changing a byte of it, into a copy that opens and
//! verifies clean; refuses a destination that is not empty.

use super::{assert_clean_failure, assert_same_files, make_log, seglog, snapshot, text};

#[test]
fn backup_copies_a_log_that_verifies_clean_and_leaves_the_log_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    make_log(&log);
    let before = snapshot(&log);
    let dest = tmp.path().join("copy");
    let out = seglog(&["backup", log.to_str().unwrap(), dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", super::err(&out));
    assert!(text(&out).contains("backed up"), "{}", text(&out));
    assert_same_files(&before, &snapshot(&log));
    let verified = seglog(&["verify", dest.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    let events = seglog(&["events", dest.to_str().unwrap(), "exec-1"]);
    assert_eq!(text(&events).lines().count(), 41, "{}", text(&events));
    // Not into a directory that holds something.
    let again = seglog(&["backup", log.to_str().unwrap(), dest.to_str().unwrap()]);
    assert_clean_failure(&again, 3);
}

#[test]
fn backup_has_help_with_an_example() {
    let o = seglog(&["backup", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("Example"));
    assert!(text(&o).lines().all(|l| l.chars().count() <= 100));
}

/// Another process (the CLI, through the library's read-only open) backs up a log that this
/// process is appending to: the copy holds every event acknowledged before it started, opens
/// and verifies clean; the writer goes on.
#[test]
fn backup_from_another_process_while_this_one_appends() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    let opts = seglog::Options::default().segment_size_bytes(4096);
    let log = seglog::Log::open_blocking(&dir, opts.clone()).unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, acked, stop) = (log.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seq = 0;
            while !stop.load(Ordering::SeqCst) || seq < 100 {
                seq += 1;
                log.append_blocking("e", "t", format!("event {seq}").as_bytes())
                    .unwrap();
                acked.store(seq, Ordering::SeqCst);
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 50 {
        std::thread::yield_now();
    }
    let before = acked.load(Ordering::SeqCst);
    let dest = tmp.path().join("copy");
    let out = seglog(&["backup", dir.to_str().unwrap(), dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", super::err(&out));
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    log.append_blocking("e", "t", b"after").unwrap();
    let verified = seglog(&["verify", dest.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    let copy = seglog::Log::open_blocking(&dest, opts).unwrap();
    let events = copy.read("e").unwrap();
    assert!(events.len() as u64 >= before, "{} < {before}", events.len());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(&e.payload[..], format!("event {}", i + 1).as_bytes());
    }
}
