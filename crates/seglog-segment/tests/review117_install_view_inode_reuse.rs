//! Review 117 (of 451a933): `check_view` now tells "a view of another directory" by the
//! directory's identity (device, inode) alone. Identities are reused: on ext4 a directory
//! created right after another was removed commonly gets its inode number. A reader of
//! tenant A's log whose directory was removed accepts a view of tenant B's log at another
//! path whose directory reused that inode, and from then on serves B's records as A's. The
//! path comparison this replaced refused it (the paths differ), and the reader's own
//! `reload_read_only` refuses too (`DirectoryMoved`: its path names nothing).
//!
//! ext4 hands a removed directory's inode to the next `mkdir` when no file of it is still
//! open; a reader holds its segments open, so the reader here is of a log directory that
//! holds no segment yet (provisioned, its writer not yet run). `run(true)` is the same with a
//! reader of a written log: on ext4 here the inode is not reused while the reader holds its
//! segments open, so it is not a test (it returns early when nothing is reused).
//!
//! Fixed: `check_view` also checks that this log's path still names its directory, and that
//! the two logs' ids (where both are known) agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tenant_logs::{tenants, write_log};

use seglog_segment::io::StdFs;
use seglog_segment::{Error, SegmentLog};
use std::os::unix::fs::MetadataExt;

#[test]
fn a_reader_of_a_removed_empty_directory_refuses_a_view_of_a_directory_that_reused_its_inode() {
    run(false);
}

fn run(written: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("tenant-a");
    let expected: Vec<String> = if written {
        write_log(&a, b"tenant-a", 1);
        vec!["tenant-a".into()]
    } else {
        std::fs::create_dir(&a).unwrap();
        vec![]
    };
    let reader_of_a = SegmentLog::open_read_only(StdFs, &a, &mut ()).unwrap().0;
    assert_eq!(tenants(&reader_of_a), expected);
    let ino_a = std::fs::metadata(&a).unwrap().ino();

    // Tenant A's log is deleted; tenant B's is created at another path.
    std::fs::remove_dir_all(&a).unwrap();
    let mut b = None;
    for i in 0..64 {
        let candidate = tmp.path().join(format!("tenant-b{i}"));
        std::fs::create_dir(&candidate).unwrap();
        if std::fs::metadata(&candidate).unwrap().ino() == ino_a {
            b = Some(candidate);
            break;
        }
    }
    let Some(b) = b else {
        eprintln!("the file system did not reuse the directory's inode: nothing to show here");
        return;
    };
    write_log(&b, b"tenant-b", 3);

    // The reader itself knows its directory is gone.
    assert!(
        matches!(
            reader_of_a.reload_read_only(&mut ()),
            Err(Error::DirectoryMoved { .. })
        ),
        "the reader's own reload was not refused"
    );

    let reader_of_b = SegmentLog::open_read_only(StdFs, &b, &mut ()).unwrap().0;
    let view_of_b = reader_of_b.reload_read_only(&mut ()).unwrap();
    let taken = reader_of_a.install_view(view_of_b);
    let served = tenants(&reader_of_a);
    assert!(
        taken.is_err(),
        "install_view took a view of another tenant's directory (another path, a reused \
         inode): the reader of {} now serves {served:?}",
        a.display()
    );
    assert_eq!(served, expected);
}
