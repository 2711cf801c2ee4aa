//! Review 119: the new `SegmentFile::write_all_vectored_at`. `StdFile` issues `pwritev`
//! and drops empty parts (its own unit test: "a vectored write of nothing writes nothing",
//! the file stays 0 bytes long). `SimFile` takes the trait's default, one `write_all_at` per
//! part, and the simulator's `write_all_at` of an empty buffer beyond the end of the file
//! extends the file with zeros (and counts as a mutating `Op::Write`, a point where a
//! fault or a power cut can land), which `pwrite`/`pwritev` of 0 bytes never does.
//! The same call thus leaves different files on the two back ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::io::sim::{Op, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile, StdFs};
use std::path::Path;

/// (file length after a vectored write of only empty parts at 10, then after one of
/// `[b"ab", b"", b"cd"]` at 0 and an empty part at 100)
fn lengths<F: FileSystem>(fs: &F, dir: &Path) -> (u64, u64) {
    fs.create_dir_all(dir).unwrap();
    let file = fs.create_new(&dir.join("f")).unwrap();
    file.write_all_vectored_at(&[&[], &[]], 10).unwrap();
    let after_nothing = file.len().unwrap();
    file.write_all_vectored_at(&[b"ab", b"", b"cd"], 0).unwrap();
    file.write_all_vectored_at(&[b""], 100).unwrap();
    (after_nothing, file.len().unwrap())
}

#[test]
fn a_vectored_write_of_empty_parts_leaves_the_same_file_on_both_back_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let real = lengths(&StdFs, &tmp.path().join("d"));
    let sim = SimFs::new();
    let simulated = lengths(&sim, Path::new("/d"));
    assert_eq!(
        real,
        (0, 4),
        "the kernel: writing 0 bytes never extends a file"
    );
    assert_eq!(
        simulated, real,
        "SimFs extended the file for empty parts (kernel: {real:?}, simulated: {simulated:?})"
    );
}

#[test]
fn an_empty_vectored_write_is_no_simulated_write_operation() {
    let sim = SimFs::new();
    sim.create_dir_all(Path::new("/d")).unwrap();
    let file = sim.create_new(Path::new("/d/f")).unwrap();
    let before = sim.op_count(Op::Write);
    file.write_all_vectored_at(&[&[], &[], &[]], 0).unwrap();
    assert_eq!(
        sim.op_count(Op::Write) - before,
        0,
        "pwritev is never called for empty parts (StdFile filters them), yet the simulator \
         counts each as a write a fault or power cut can hit"
    );
}
