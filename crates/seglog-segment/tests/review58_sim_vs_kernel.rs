//! Review 58: review 57 made SimFs refuse a file created or renamed over a directory, as the
//! kernel does. The other directions disagreed with the kernel: a directory made over a
//! file (`mkdir` → EEXIST; SimFs then held a file and a directory of one name), a directory
//! removed as a file (`unlink` → EISDIR; SimFs said NotFound, which callers treat as
//! "already gone"), a directory opened for writing (EISDIR; SimFs NotFound), a rename into
//! a directory that does not exist (ENOENT; SimFs succeeded). Each case runs on both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::io::sim::SimFs;
use seglog_segment::io::{FileSystem, StdFs};
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
