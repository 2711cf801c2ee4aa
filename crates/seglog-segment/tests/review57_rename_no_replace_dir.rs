//! Review 57: `SimFs::rename_no_replace` refused an existing `to` only when `to` was a *file*
//! name; a directory at `to` was not looked at, so the simulation renamed the file onto it and
//! ended up with a file and a directory of one name. The kernel's
//! `renameat2(RENAME_NOREPLACE)` refuses any existing `to` with `EEXIST` (and a plain rename
//! of a file onto a directory with `EISDIR`; `O_CREAT | O_EXCL` over a directory is `EEXIST`
//! too). So a roll onto a prepared file that the real kernel refuses succeeded in the
//! simulation. Each check runs on the real kernel and on the simulation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::prepared::{append, opts};
use seglog_segment::format::segment_file_name;
use seglog_segment::io::sim::SimFs;
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::io;
use std::path::Path;

fn no_replace_onto_a_directory<F: FileSystem>(fs: &F, dir: &Path) -> io::Result<()> {
    fs.create_dir_all(dir).unwrap();
    let from = dir.join("a");
    drop(fs.create_new(&from).unwrap());
    let to = dir.join("b");
    fs.create_dir_all(&to).unwrap();
    fs.rename_no_replace(&from, &to)
}

#[test]
fn rename_no_replace_onto_a_directory_is_refused_as_by_the_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    let real = no_replace_onto_a_directory(&StdFs, &tmp.path().join("d"));
    assert_eq!(
        real.as_ref().map_err(io::Error::kind),
        Err(io::ErrorKind::AlreadyExists),
        "the kernel: {real:?}"
    );
    let sim = no_replace_onto_a_directory(&SimFs::new(), Path::new("/d"));
    assert_eq!(
        sim.as_ref().map_err(io::Error::kind),
        Err(io::ErrorKind::AlreadyExists),
        "SimFs accepted a RENAME_NOREPLACE onto an existing directory, which the kernel refuses: {sim:?}"
    );
}

/// The same through a roll onto a prepared file: a directory holds the next segment's name.
#[test]
fn a_prepared_roll_onto_a_directory_fails_in_the_simulation_as_on_the_kernel() {
    fn roll<F: FileSystem + Clone>(fs: F, dir: &Path) -> bool {
        let options = SegmentOptions {
            prepare_next_segment: true,
            ..opts()
        };
        let (log, _) = SegmentLog::open(fs.clone(), dir, options, &mut ()).unwrap();
        let lsn = append(&log, 1).unwrap();
        assert!(log.prepare_next_segment_now());
        for first in lsn + 1..=lsn + 4 {
            fs.create_dir_all(&dir.join(segment_file_name(first)))
                .unwrap();
        }
        log.roll().is_ok()
    }
    let tmp = tempfile::tempdir().unwrap();
    let real = roll(StdFs, &tmp.path().join("log"));
    let sim = roll(SimFs::new(), Path::new("/log"));
    assert!(!real, "the kernel refuses the roll");
    assert_eq!(
        sim, real,
        "the simulated roll renamed the prepared file onto a directory the kernel keeps"
    );
}

/// The plain rename of a file onto a directory, and an exclusive create over one: refused the
/// same way by the kernel and the simulation.
#[test]
fn rename_and_create_onto_a_directory_are_refused_as_by_the_kernel() {
    fn outcomes<F: FileSystem>(fs: &F, dir: &Path) -> (io::ErrorKind, io::ErrorKind) {
        fs.create_dir_all(&dir.join("sub")).unwrap();
        let from = dir.join("a");
        drop(fs.create_new(&from).unwrap());
        let renamed = fs.rename(&from, &dir.join("sub")).unwrap_err().kind();
        let created = fs
            .create_new(&dir.join("sub"))
            .map(drop)
            .unwrap_err()
            .kind();
        (renamed, created)
    }
    let tmp = tempfile::tempdir().unwrap();
    let real = outcomes(&StdFs, &tmp.path().join("d"));
    assert_eq!(
        real,
        (io::ErrorKind::IsADirectory, io::ErrorKind::AlreadyExists)
    );
    assert_eq!(outcomes(&SimFs::new(), Path::new("/d")), real);
}
