//! A directory a restore is still writing (`RESTORE_IN_PROGRESS`, docs/format.md §1) is
//! refused as such by every read-only path, even when it also holds offload stubs: the
//! marker says what the directory is, a stub there is just part of the unfinished restore.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Error, Log};

/// A directory as an interrupted restore leaves it: the marker, and half of a stub.
fn half_restored() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path()
            .join(seglog_segment::format::RESTORE_MARKER_FILE_NAME),
        b"",
    )
    .unwrap();
    std::fs::write(dir.path().join("00000000000000000001.off"), b"SEGL").unwrap();
    dir
}

fn is_restore_in_progress(err: &Error) -> bool {
    matches!(
        err,
        Error::Segment(seglog_segment::Error::RestoreInProgress { .. })
    )
}

#[test]
fn a_marked_directory_with_stubs_is_refused_as_a_restore_in_progress() {
    let dir = half_restored();
    let err = Log::open_read_only_blocking(dir.path()).expect_err("opened a half-restored log");
    assert!(
        is_restore_in_progress(&err),
        "refused for another reason: {err}"
    );
}

#[test]
fn a_writable_open_of_a_marked_directory_with_stubs_says_restore_in_progress() {
    let dir = half_restored();
    let err = Log::open_blocking(dir.path(), seglog::Options::default())
        .expect_err("opened a half-restored log");
    assert!(
        is_restore_in_progress(&err),
        "refused for another reason: {err}"
    );
}
