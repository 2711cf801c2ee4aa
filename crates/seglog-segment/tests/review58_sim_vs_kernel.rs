//! Review 58: review 57 made SimFs refuse a file created or renamed over a directory, as the
//! kernel does. The other directions disagreed with the kernel: a directory made over a
//! file (`mkdir` → EEXIST; SimFs then held a file and a directory of one name), a directory
//! removed as a file (`unlink` → EISDIR; SimFs said NotFound, which callers treat as
//! "already gone"), a directory opened for writing (EISDIR; SimFs NotFound), a rename into
//! a directory that does not exist (ENOENT; SimFs succeeded). Each case runs on both.
//!
//! Stop 35 added the rest of the surface: a file where a directory must be, above the name,
//! is ENOTDIR (SimFs said NotFound or EEXIST); `sync_dir` of a file is ENOTDIR on both (StdFs
//! opened it and synced the file); SimFs has hard links (it refused them, so the backup's
//! linking path never ran under a simulated power cut). One difference stays: a directory
//! opened read-only, which the kernel opens (its reads then fail) and SimFs refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::io::sim::SimFs;
use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use std::io;
use std::path::Path;

fn kind<T>(r: io::Result<T>) -> Result<(), io::ErrorKind> {
    r.map(|_| ()).map_err(|e| e.kind())
}

fn cases<F: FileSystem>(fs: &F, dir: &Path) -> Vec<(&'static str, Result<(), io::ErrorKind>)> {
    fs.create_dir_all(dir).unwrap();
    let file = dir.join("f");
    drop(fs.create_new(&file).unwrap());
    let sub = dir.join("sub");
    fs.create_dir_all(&sub).unwrap();
    let moved = dir.join("g");
    drop(fs.create_new(&moved).unwrap());
    vec![
        ("create_dir_all over a file", kind(fs.create_dir_all(&file))),
        ("remove a directory", kind(fs.remove(&sub))),
        ("open a directory", kind(fs.open(&sub))),
        (
            "rename into a missing directory",
            kind(fs.rename(&moved, &dir.join("missing").join("g"))),
        ),
        // Stop 35: the rest of the surface the log uses, around files, directories and
        // names that are missing.
        (
            "create_dir_all through a file",
            kind(fs.create_dir_all(&file.join("x"))),
        ),
        (
            "create_new under a file",
            kind(fs.create_new(&file.join("x"))),
        ),
        (
            "create_new in a missing directory",
            kind(fs.create_new(&dir.join("missing").join("x"))),
        ),
        ("create_new over a file", kind(fs.create_new(&file))),
        ("create_new over a directory", kind(fs.create_new(&sub))),
        ("open a missing file", kind(fs.open(&dir.join("missing")))),
        ("open a file's child", kind(fs.open(&file.join("x")))),
        (
            "open_read_only a missing file",
            kind(fs.open_read_only(&dir.join("missing"))),
        ),
        (
            "rename into a file's child",
            kind(fs.rename(&moved, &file.join("g"))),
        ),
        (
            "rename a missing file",
            kind(fs.rename(&dir.join("missing"), &dir.join("h"))),
        ),
        (
            "rename_no_replace over a file",
            kind(fs.rename_no_replace(&moved, &file)),
        ),
        (
            "remove a missing file",
            kind(fs.remove(&dir.join("missing"))),
        ),
        ("list a file", kind(fs.list(&file))),
        (
            "list a missing directory",
            kind(fs.list(&dir.join("missing"))),
        ),
        (
            "sync_dir a missing directory",
            kind(fs.sync_dir(&dir.join("missing"))),
        ),
        ("sync_dir a file", kind(fs.sync_dir(&file))),
        ("remove a file's child", kind(fs.remove(&file.join("x")))),
        (
            "identity of a file's child",
            kind(fs.identity(&file.join("x"))),
        ),
        (
            "hard_link a directory",
            kind(fs.hard_link(&sub, &dir.join("h"))),
        ),
        (
            "hard_link into a missing directory",
            kind(fs.hard_link(&file, &dir.join("missing").join("h"))),
        ),
        ("hard_link over a file", kind(fs.hard_link(&moved, &file))),
        (
            "hard_link a missing file",
            kind(fs.hard_link(&dir.join("missing"), &dir.join("h"))),
        ),
        (
            "identity of a missing file",
            kind(fs.identity(&dir.join("missing"))),
        ),
        // Review 63: the kernel resolves both parents and makes the new name (ENOENT,
        // ENOTDIR, EEXIST) before it asks what the old one is.
        (
            "hard_link a directory over a file",
            kind(fs.hard_link(&sub, &file)),
        ),
        (
            "hard_link a directory into a missing directory",
            kind(fs.hard_link(&sub, &dir.join("missing").join("x"))),
        ),
        (
            "rename a missing file into a file's child",
            kind(fs.rename(&dir.join("missing"), &file.join("x"))),
        ),
        // Review 64: the old name's parent is resolved before the new name's.
        (
            "rename from a missing directory into a file's child",
            kind(fs.rename(&dir.join("missing").join("x"), &file.join("y"))),
        ),
    ]
}

#[test]
fn simfs_answers_as_the_kernel_around_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let real = cases(&StdFs, &tmp.path().join("d"));
    let sim = cases(&SimFs::new(), Path::new("/d"));
    let differ: Vec<String> = real
        .iter()
        .zip(&sim)
        .filter(|(r, s)| r.1 != s.1)
        .map(|(r, s)| format!("{}: kernel {:?}, SimFs {:?}", r.0, r.1, s.1))
        .collect();
    assert!(
        differ.is_empty(),
        "SimFs disagrees with the kernel: {differ:#?}"
    );
}

/// `link_or_copy` said "the source does not exist" (`Ok(None)`) whenever `link(2)` said
/// ENOENT, which it also says when the *destination's* directory is missing: a backup then
/// skipped the file as if there were none.
fn link_into_a_missing_directory<F: FileSystem>(fs: &F, dir: &Path) -> String {
    fs.create_dir_all(dir).unwrap();
    let from = dir.join("f");
    let file = fs.create_new(&from).unwrap();
    file.write_all_at(b"bytes", 0).unwrap();
    file.sync_data().unwrap();
    let to = dir.join("missing").join("f");
    format!(
        "{:?}",
        seglog_segment::link_or_copy(fs, &from, &to).map_err(|_| "error")
    )
}

#[test]
fn a_link_into_a_missing_directory_is_an_error_not_a_missing_source() {
    let tmp = tempfile::tempdir().unwrap();
    for (fs, outcome) in [
        (
            "kernel",
            link_into_a_missing_directory(&StdFs, &tmp.path().join("d")),
        ),
        (
            "SimFs",
            link_into_a_missing_directory(&SimFs::new(), Path::new("/d")),
        ),
    ] {
        assert_eq!(outcome, "Err(\"error\")", "{fs}");
    }
}
