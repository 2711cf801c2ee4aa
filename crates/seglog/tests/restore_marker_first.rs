//! A directory a restore is still writing (`RESTORE_IN_PROGRESS`, docs/format.md §1) is
//! refused as such by every read-only path, even when it also holds offload stubs: the
//! marker says what the directory is, a stub there is just part of the unfinished restore.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Error, Log};

#[test]
fn a_marked_directory_with_stubs_is_refused_as_a_restore_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path()
            .join(seglog_segment::format::RESTORE_MARKER_FILE_NAME),
        b"",
    )
    .unwrap();
    // Half of a stub, as an interrupted restore may leave it.
    std::fs::write(dir.path().join("00000000000000000001.off"), b"SEGL").unwrap();
    let err = Log::open_read_only_blocking(dir.path()).expect_err("opened a half-restored log");
    assert!(
        matches!(
            &err,
            Error::Segment(seglog_segment::Error::RestoreInProgress { .. })
        ),
        "refused for another reason: {err}"
    );
}

#[test]
fn a_writable_open_of_a_marked_directory_with_stubs_says_restore_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path()
            .join(seglog_segment::format::RESTORE_MARKER_FILE_NAME),
        b"",
    )
    .unwrap();
    std::fs::write(dir.path().join("00000000000000000001.off"), b"SEGL").unwrap();
    let err = Log::open_blocking(dir.path(), seglog::Options::default())
        .expect_err("opened a half-restored log");
    assert!(
        matches!(
            &err,
            Error::Segment(seglog_segment::Error::RestoreInProgress { .. })
        ),
        "refused for another reason: {err}"
    );
}
