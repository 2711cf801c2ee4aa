//! Review 116 (of 7b7a85d): `check_view` tells "a view of another directory" by comparing
//! *paths*, where the rest of the writer tells directories apart by identity (`DirGuard`:
//! device and inode). A reader opened on `<tmp>/a` whose directory was then moved away and
//! replaced by another log (another tenant's) refuses to reload itself — its own
//! `reload_read_only` returns `DirectoryMoved` — but `install_view` takes a view of the new
//! log at the same path, loaded by another reader, and from then on serves that log's records
//! as its own.
//!
//! Fixed: a view carries the `DirGuard` of the log that loaded it, and `check_view` compares
//! directory identities.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tenant_logs::{tenants, write_log};

use seglog_segment::io::StdFs;
use seglog_segment::{Error, SegmentLog};

#[test]
fn a_reader_of_a_replaced_directory_refuses_a_view_of_the_log_now_at_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    write_log(&a, b"tenant-a", 1);
    let reader_of_a = SegmentLog::open_read_only(StdFs, &a, &mut ()).unwrap().0;
    assert_eq!(tenants(&reader_of_a), ["tenant-a"]);

    // The directory moves away; another tenant's log is created at the same path.
    std::fs::rename(&a, tmp.path().join("a-moved")).unwrap();
    write_log(&a, b"tenant-b", 3);

    // The reader itself knows its directory is gone.
    assert!(
        matches!(
            reader_of_a.reload_read_only(&mut ()),
            Err(Error::DirectoryMoved { .. })
        ),
        "the reader's own reload took the new log"
    );

    // A view of the new log, loaded by a reader of it, at the same path.
    let reader_of_b = SegmentLog::open_read_only(StdFs, &a, &mut ()).unwrap().0;
    let view_of_b = reader_of_b.reload_read_only(&mut ()).unwrap();
    let taken = reader_of_a.install_view(view_of_b);
    let served = tenants(&reader_of_a);
    assert!(
        taken.is_err(),
        "install_view took a view of another log (path equal, directory not): the reader of \
         tenant-a's log now serves {served:?}"
    );
    assert_eq!(served, ["tenant-a"]);
}
