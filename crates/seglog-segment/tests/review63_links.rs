//! Review 63 (commit 77b8161): SimFs hard links against the kernel, and their crash semantics.
//! Found and fixed: a rename onto another name of the same file removed the old name (the
//! kernel does nothing); link and rename answered in another order than the kernel (those
//! cases are in `review58_sim_vs_kernel.rs`); a rename
//! across directories made durable by the destination's fsync kept both names at a power
//! cut (ext4 and XFS commit a rename as one transaction); and (review 64) that rule lost a
//! file moved away and back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use std::path::Path;

fn sorted<F: FileSystem>(fs: &F, dir: &Path) -> Vec<String> {
    let mut v = fs.list(dir).unwrap();
    v.sort();
    v
}

/// rename(2) of one name onto another name of the same inode: "If oldpath and newpath are
/// existing hard links referring to the same file, then rename() does nothing, and returns
/// a success status." Both names stay.
fn rename_onto_own_link<F: FileSystem>(fs: &F, dir: &Path) -> (String, Vec<String>) {
    fs.create_dir_all(dir).unwrap();
    let a = dir.join("a");
    let f = fs.create_new(&a).unwrap();
    f.write_all_at(b"bytes", 0).unwrap();
    f.sync_data().unwrap();
    drop(f);
    fs.hard_link(&a, &dir.join("b")).unwrap();
    let r = fs.rename(&a, &dir.join("b"));
    (format!("{:?}", r.map_err(|e| e.kind())), sorted(fs, dir))
}

#[test]
fn rename_onto_another_name_of_the_same_inode_keeps_both_names_as_the_kernel_does() {
    let tmp = tempfile::tempdir().unwrap();
    let kernel = rename_onto_own_link(&StdFs, &tmp.path().join("d"));
    let sim = rename_onto_own_link(&SimFs::new(), Path::new("/d"));
    assert_eq!(
        sim, kernel,
        "SimFs (left) disagrees with the kernel (right)"
    );
}

// What the review checked and found as the kernel does it (kept as tests).

fn durable_file(fs: &SimFs, path: &Path, bytes: &[u8]) {
    fs.create_dir_all(path.parent().unwrap()).unwrap();
    let f = fs.create_new(path).unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(path.parent().unwrap()).unwrap();
}

/// `/a/x` durable with "hello", and an empty directory `/b`, both durable.
fn durable_a_x_and_empty_b() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/b")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    durable_file(&fs, Path::new("/a/x"), b"hello");
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

#[test]
fn a_link_is_lost_without_its_directory_fsync_and_outlives_the_removed_original_with_it() {
    let fs = durable_a_x_and_empty_b();
    fs.hard_link(Path::new("/a/x"), Path::new("/b/y")).unwrap();
    let lost = fs.crash(CrashMode::LoseUnsynced);
    assert_eq!(lost.read_file(Path::new("/b/y")), None);
    assert_eq!(lost.read_file(Path::new("/a/x")).unwrap(), b"hello");

    let fs = durable_a_x_and_empty_b();
    fs.hard_link(Path::new("/a/x"), Path::new("/b/y")).unwrap();
    fs.sync_dir(Path::new("/b")).unwrap();
    // The original name goes, durably: the inode lives on through the second name.
    fs.remove(Path::new("/a/x")).unwrap();
    fs.sync_dir(Path::new("/a")).unwrap();
    for mode in [
        CrashMode::LoseUnsynced,
        CrashMode::Torn { seed: 1 },
        CrashMode::Reordered { seed: 2 },
    ] {
        let after = fs.fork().crash(mode);
        assert_eq!(after.read_file(Path::new("/b/y")).unwrap(), b"hello");
        assert_eq!(after.read_file(Path::new("/a/x")), None);
    }
}

#[test]
fn writes_through_one_name_are_seen_through_the_other_and_share_durability() {
    let fs = durable_a_x_and_empty_b();
    fs.hard_link(Path::new("/a/x"), Path::new("/b/y")).unwrap();
    fs.sync_dir(Path::new("/b")).unwrap();
    let via_b = fs.open(Path::new("/b/y")).unwrap();
    via_b.write_all_at(b"HE", 0).unwrap();
    assert_eq!(fs.read_file(Path::new("/a/x")).unwrap(), b"HEllo");
    // Unsynced: lost under both names.
    let c = fs.fork().crash(CrashMode::LoseUnsynced);
    assert_eq!(c.read_file(Path::new("/a/x")).unwrap(), b"hello");
    assert_eq!(c.read_file(Path::new("/b/y")).unwrap(), b"hello");
    // Synced through the other name's handle: durable under both.
    fs.open(Path::new("/a/x")).unwrap();
    via_b.sync_data().unwrap();
    let c = fs.crash(CrashMode::LoseUnsynced);
    assert_eq!(c.read_file(Path::new("/a/x")).unwrap(), b"HEllo");
    assert_eq!(c.read_file(Path::new("/b/y")).unwrap(), b"HEllo");
    assert_eq!(
        c.identity(Path::new("/a/x")).unwrap(),
        c.identity(Path::new("/b/y")).unwrap()
    );
}

#[test]
fn fork_remove_and_fault_counting_with_two_names() {
    let fs = SimFs::new();
    durable_file(&fs, Path::new("/a/x"), b"hello");
    fs.hard_link(Path::new("/a/x"), Path::new("/a/y")).unwrap();
    let other = fs.fork();
    other.remove(Path::new("/a/x")).unwrap();
    assert_eq!(fs.file_names(Path::new("/a")), ["x", "y"]);
    assert_eq!(other.file_names(Path::new("/a")), ["y"]);
    assert_eq!(other.read_file(Path::new("/a/y")).unwrap(), b"hello");
    // Fault on the 2nd link: nothing made; the count is per kind and in mutating_ops.
    let before = fs.mutating_ops();
    fs.inject(Fault {
        op: Some(Op::Link),
        nth: 2,
        kind: FaultKind::Eio,
        persistent: false,
    });
    let e = fs
        .hard_link(Path::new("/a/x"), Path::new("/a/z"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5));
    assert!(fs.identity(Path::new("/a/z")).is_err());
    assert_eq!(fs.op_count(Op::Link), 2);
    assert_eq!(fs.mutating_ops(), before + 1);
    // Refused before counting (as every other op): EEXIST is not a counted op.
    fs.hard_link(Path::new("/a/x"), Path::new("/a/y"))
        .unwrap_err();
    assert_eq!(fs.op_count(Op::Link), 2);
}

/// Pre-existing (not 77b8161), seen while checking: a rename across directories made durable
/// by fsyncing the destination only survives a power cut under *both* names in SimFs; on
/// ext4 a rename is one journal transaction, committed whole by that fsync.
#[test]
fn cross_directory_rename_after_a_power_cut_has_one_name() {
    let fs = durable_a_x_and_empty_b();
    fs.rename(Path::new("/a/x"), Path::new("/b/x")).unwrap();
    fs.sync_dir(Path::new("/b")).unwrap();
    let c = fs.crash(CrashMode::LoseUnsynced);
    let names = [c.file_names(Path::new("/a")), c.file_names(Path::new("/b"))];
    assert_eq!(names.iter().map(Vec::len).sum::<usize>(), 1, "{names:?}");
}

#[test]
fn stdfs_sync_dir_follows_symlinks_and_refuses_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(tmp.path().join("f"), b"x").unwrap();
    std::os::unix::fs::symlink(&d, tmp.path().join("ld")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("f"), tmp.path().join("lf")).unwrap();
    StdFs.sync_dir(&tmp.path().join("ld")).unwrap();
    StdFs.sync_dir(Path::new(".")).unwrap();
    assert_eq!(
        StdFs
            .sync_dir(&tmp.path().join("lf"))
            .unwrap_err()
            .raw_os_error(),
        Some(20)
    );
    assert_eq!(
        StdFs
            .sync_dir(&tmp.path().join("f"))
            .unwrap_err()
            .raw_os_error(),
        Some(20)
    );
}

/// Review 64: the rule above removed the old name even when a later rename had moved the
/// file back: `/a/x → /b/x → /a/x`, both directories fsynced, and the file was in neither
/// after the power cut.
#[test]
fn a_file_moved_away_and_back_with_both_directories_fsynced_survives_a_power_cut() {
    for (first, second) in [("/a", "/b"), ("/b", "/a")] {
        let fs = durable_a_x_and_empty_b();
        fs.rename(Path::new("/a/x"), Path::new("/b/x")).unwrap();
        fs.rename(Path::new("/b/x"), Path::new("/a/x")).unwrap();
        fs.sync_dir(Path::new(first)).unwrap();
        fs.sync_dir(Path::new(second)).unwrap();
        let c = fs.crash(CrashMode::LoseUnsynced);
        let names = [c.file_names(Path::new("/a")), c.file_names(Path::new("/b"))];
        assert_eq!(
            names,
            [vec!["x".to_owned()], vec![]],
            "fsync {first} then {second}"
        );
    }
}
