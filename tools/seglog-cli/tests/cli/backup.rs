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
