//! Review 63 (commit 77b8161): now that SimFs hard-links a backup's sealed segments, a
//! repair of the source log on SimFs cut the backup's linked segment in place:
//! `repair_dir_with_fs` assumed every file has one name, on any file system (the real one
//! too), where `repair_dir` asked the kernel and refused ("other names"); a `Salvage` open
//! never asked. Checking link counts left a window (review 64: a read-only process's backup
//! linking the segment between the check and the cut), so a salvage now cuts by copy and
//! rename, never in place, and a backup's names keep every byte whenever they were made.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::io::sim::{Fault, FaultKind, Op, SimFs};
use seglog::{Log, Options, RecoveryMode};
use seglog_segment::inspect::analyze_segment;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Small segments, checkpoints written inline.
fn opts() -> Options {
    common::small_inline_opts(RecoveryMode::TolerateTornTail)
}

fn fill<F: seglog::io::FileSystem + Clone>(log: &Log<F>) -> Vec<PathBuf> {
    for i in 0..120u64 {
        let body = format!("event {i} {}", "z".repeat((i * 11 % 90) as usize));
        log.append_blocking(&format!("exec-{}", i % 4), "tenant", body.as_bytes())
            .unwrap();
    }
    log.segments().into_iter().map(|s| s.path).collect()
}

fn flip(bytes: &mut [u8], k: usize) {
    let at = analyze_segment(bytes, 0).record_offsets[k];
    bytes[at as usize + 50] ^= 0x04;
}

fn count<F: seglog::io::FileSystem + Clone>(log: &Log<F>) -> u64 {
    (0..4)
        .map(|e| log.count(&format!("exec-{e}")).unwrap())
        .sum()
}

#[test]
fn kernel_repair_of_a_log_whose_damaged_segment_a_backup_linked_leaves_the_backup_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("log"), tmp.path().join("backup"));
    let log = Log::open_blocking(&dir, opts()).unwrap();
    let segs = fill(&log);
    let report = log.backup_blocking(&dest).unwrap();
    assert!(report.segments_linked >= 2, "{report:?}");
    log.close().unwrap();
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    flip(&mut bytes, 2);
    std::fs::write(&segs[1], &bytes).unwrap(); // in place: the inode both names share
    let linked = dest.join(segs[1].file_name().unwrap());
    let before = std::fs::read(&linked).unwrap();
    let report = seglog::repair_dir(&dir, |_| true).unwrap();
    assert!(report.repaired, "{report:?}");
    assert_eq!(std::fs::read(&linked).unwrap(), before);
    assert!(std::fs::read(&segs[1]).unwrap().len() < before.len());
}

#[test]
fn simfs_repair_of_a_log_whose_damaged_segment_a_backup_linked_leaves_the_backup_alone() {
    let fs = SimFs::new();
    let (dir, dest) = (Path::new("/log"), Path::new("/backup"));
    let log = Log::open_with_fs(fs.clone(), dir, opts()).unwrap();
    let segs = fill(&log);
    let report = log.backup_blocking(dest).unwrap();
    assert!(report.segments_linked >= 2, "{report:?}");
    log.close().unwrap();
    let events_in_backup = {
        let copy = Log::open_with_fs(fs.clone(), dest, opts()).unwrap();
        let n = count(&copy);
        copy.close().unwrap();
        n
    };
    assert_eq!(events_in_backup, 120);
    let mut bytes = fs.read_file(&segs[1]).unwrap();
    flip(&mut bytes, 2);
    fs.replace_file(&segs[1], bytes).unwrap(); // the inode both names share
    let linked = dest.join(segs[1].file_name().unwrap());
    let before = fs.read_file(&linked).unwrap();
    let repaired = seglog::repair_dir_with_fs(fs.clone(), dir, |_| true);
    let after = fs.read_file(&linked).unwrap();
    let opened = Log::open_with_fs(fs.clone(), dest, opts()).map(|copy| count(&copy));
    assert!(
        after == before,
        "repair on SimFs: {:?}; the backup's linked segment {} went from {} to {} bytes; \
         the backup now opens as {:?} (120 events before)",
        repaired.map(|r| r.repaired),
        linked.display(),
        before.len(),
        after.len(),
        opened.map_err(|e| e.to_string()),
    );
}

/// The same hole on the real kernel through the public `_with_fs` entry point: it never asks
/// for link counts, so `repair_dir_with_fs(StdFs, ..)` cuts a backup's linked segment too.
#[test]
fn kernel_repair_dir_with_fs_leaves_a_linked_backup_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("log"), tmp.path().join("backup"));
    let log = Log::open_blocking(&dir, opts()).unwrap();
    let segs = fill(&log);
    log.backup_blocking(&dest).unwrap();
    log.close().unwrap();
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    flip(&mut bytes, 2);
    std::fs::write(&segs[1], &bytes).unwrap();
    let linked = dest.join(segs[1].file_name().unwrap());
    let before = std::fs::read(&linked).unwrap().len();
    let repaired = seglog::repair_dir_with_fs(seglog::io::StdFs, &dir, |_| true);
    let after = std::fs::read(&linked).unwrap().len();
    assert_eq!(
        after,
        before,
        "repair_dir_with_fs(StdFs): {:?}",
        repaired.map(|r| r.repaired)
    );
}

/// Checked by the review (passes): a power cut after every operation of a linking backup on
/// SimFs leaves the source whole, and a backup that returned whole.
#[test]
fn a_power_cut_at_every_step_of_a_linking_backup_loses_nothing() {
    use seglog::io::sim::CrashMode;
    let mut k = 1;
    loop {
        let fs = SimFs::new();
        let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
        for seq in 1..=80u64 {
            log.append_blocking("a", "t", format!("a/{seq}").as_bytes())
                .unwrap();
        }
        fs.power_off_after(fs.mutating_ops() + k);
        let result = log.backup_blocking("/b/copy");
        let finished = !fs.is_powered_off();
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::Torn { seed: k },
            CrashMode::Reordered { seed: k },
        ] {
            let crashed = fs.fork().crash(mode);
            let src = Log::open_with_fs(crashed.clone(), "/log", opts()).unwrap();
            assert_eq!(src.count("a").unwrap(), 80, "k={k} {mode:?}");
            if result.is_ok() {
                let copy = Log::open_with_fs(crashed, "/b/copy", opts())
                    .unwrap_or_else(|e| panic!("k={k} {mode:?}: {e}"));
                assert_eq!(copy.count("a").unwrap(), 80, "k={k} {mode:?}");
            }
        }
        drop(log);
        if finished {
            assert!(result.is_ok(), "{result:?}");
            break;
        }
        k += 1;
    }
    assert!(k > 5, "{k}");
}

/// A `Salvage` open cut a backup's linked segment in place (it was documented: "salvage a
/// copy made with `cp`, not a linked backup"). It cuts by copy and rename now: the log is
/// salvaged and the backup keeps every byte and event.
fn salvage_open_of_a_log_a_backup_linked<F: seglog::io::FileSystem + Clone>(
    fs: F,
    dir: &Path,
    dest: &Path,
    read: impl Fn(&Path) -> Vec<u8>,
    write: impl Fn(&Path, Vec<u8>),
) {
    let log = Log::open_with_fs(fs.clone(), dir, opts()).unwrap();
    let segs = fill(&log);
    let report = log.backup_blocking(dest).unwrap();
    assert!(report.segments_linked >= 2, "{report:?}");
    log.close().unwrap();
    let mut bytes = read(&segs[1]);
    flip(&mut bytes, 2);
    write(&segs[1], bytes); // the inode both names share
    let linked = dest.join(segs[1].file_name().unwrap());
    let before = read(&linked);
    let salvage = common::small_inline_opts(RecoveryMode::Salvage);
    let salvaged = Log::open_with_fs(fs.clone(), dir, salvage).unwrap();
    assert!(count(&salvaged) < 120, "the salvage cut nothing");
    salvaged.close().unwrap();
    assert!(
        read(&segs[1]).len() < before.len(),
        "the log's segment was not cut"
    );
    assert_eq!(read(&linked), before, "the backup's segment changed");
    let copy = Log::open_with_fs(fs, dest, opts()).unwrap();
    assert_eq!(count(&copy), 120);
}

#[test]
fn a_salvage_open_leaves_a_linked_backup_whole_on_simfs() {
    let fs = SimFs::new();
    let (r, w) = (fs.clone(), fs.clone());
    salvage_open_of_a_log_a_backup_linked(
        fs,
        Path::new("/log"),
        Path::new("/backup"),
        move |p| r.read_file(p).unwrap(),
        move |p, b| w.replace_file(p, b).unwrap(),
    );
}

#[test]
fn a_salvage_open_leaves_a_linked_backup_whole_on_the_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    salvage_open_of_a_log_a_backup_linked(
        seglog::io::StdFs,
        &tmp.path().join("log"),
        &tmp.path().join("backup"),
        |p| std::fs::read(p).unwrap(),
        |p, b| std::fs::write(p, b).unwrap(),
    );
}

/// Run once, from inside a file-system call.
type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// SimFs, running `hook` once, when a salvage makes its first change (after it has read and
/// judged the segments, before it removes or cuts any).
#[derive(Clone)]
struct DuringTheCut {
    inner: SimFs,
    hook: Hook,
}

impl seglog::io::FileSystem for DuringTheCut {
    type File = <SimFs as seglog::io::FileSystem>::File;
    type DirLock = <SimFs as seglog::io::FileSystem>::DirLock;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        self.inner.create_new(path)
    }
    fn open(&self, path: &Path) -> io::Result<Self::File> {
        self.inner.open(path)
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File> {
        self.inner.open_read_only(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename_no_replace(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        // The salvage's first change: the segments after the cut go first.
        if path.extension().is_some_and(|e| e == "seg") {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock> {
        self.inner.lock_dir(dir)
    }
    fn identity(&self, path: &Path) -> io::Result<seglog::io::FileIdentity> {
        self.inner.identity(path)
    }
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.absolute(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.inner.link_count(path)
    }
}

/// Review 64: a read-only process (it takes no lock) backs the log up while a salvage runs;
/// its backup links the damaged segment after the salvage looked at it and before the cut
/// (here: right before the salvage removes the segments after the damage).
/// With a check of link counts and a cut in place, the backup that had returned whole was
/// cut ("jumps from sequence 9 to 18" at its open). The cut is a copy now.
#[test]
fn a_read_only_backup_taken_during_a_salvage_keeps_its_linked_segment_whole() {
    let fs = SimFs::new();
    let (dir, dest) = (Path::new("/log"), Path::new("/backup"));
    let log = Log::open_with_fs(fs.clone(), dir, opts()).unwrap();
    let segs = fill(&log);
    log.close().unwrap();
    let mut bytes = fs.read_file(&segs[1]).unwrap();
    flip(&mut bytes, 2);
    fs.replace_file(&segs[1], bytes).unwrap();
    let linked = dest.join(segs[1].file_name().unwrap());
    let taken = Arc::new(Mutex::new(None));
    let hook = {
        let (fs, taken, linked) = (fs.clone(), taken.clone(), linked.clone());
        Box::new(move || {
            let reader = Log::open_read_only_with_fs(fs.clone(), dir).unwrap();
            let report = reader.backup_blocking(dest).unwrap();
            *taken.lock().unwrap() = Some((report.segments_linked, fs.read_file(&linked)));
        }) as Box<dyn FnOnce() + Send>
    };
    let during = DuringTheCut {
        inner: fs.clone(),
        hook: Arc::new(Mutex::new(Some(hook))),
    };
    let salvage = common::small_inline_opts(RecoveryMode::Salvage);
    Log::open_with_fs(during, dir, salvage)
        .unwrap()
        .close()
        .unwrap();
    let (segments_linked, before) = taken.lock().unwrap().take().expect("the backup ran");
    assert!(segments_linked >= 2, "{segments_linked}");
    let before = before.expect("the backup linked the damaged segment");
    assert_eq!(
        fs.read_file(&linked).unwrap(),
        before,
        "the backup's segment was cut"
    );
    let copy = Log::open_with_fs(fs, dest, opts()).unwrap();
    assert_eq!(count(&copy), 120);
}

/// Review 66: the salvage first renames a whole copy of the damaged sealed segment over it,
/// then removes the later segments, then cuts by copy. A read-only process's backup taken
/// between the first rename and the cut links the *copy* (it still has two later segments).
/// If the cut then fails (EIO here; a power cut after the removals' directory fsync does the
/// same), the copy is the log's last segment, and the next default open cut its damaged tail
/// in place, the backup's file with it. A last segment with other names is cut by copy now.
#[test]
fn a_backup_linking_the_whole_copy_then_a_failed_cut_then_a_default_open_leaves_the_backup_whole() {
    let fs = SimFs::new();
    let (dir, dest) = (Path::new("/log"), Path::new("/backup"));
    let opts = opts();
    let log = Log::open_with_fs(fs.clone(), dir, opts.clone()).unwrap();
    let segs = fill(&log);
    log.close().unwrap();
    // Damage in the last record of the second segment: a torn tail once it is last.
    let mut bytes = fs.read_file(&segs[1]).unwrap();
    let a = analyze_segment(&bytes, 0);
    let last = *a.record_offsets.last().unwrap() as usize;
    bytes[last + (a.data_end as usize - last) / 2] ^= 0x04;
    fs.replace_file(&segs[1], bytes).unwrap();
    let linked = dest.join(segs[1].file_name().unwrap());

    let taken = Arc::new(Mutex::new(None));
    let hook = {
        let (fs, taken, linked) = (fs.clone(), taken.clone(), linked.clone());
        Box::new(move || {
            let reader = Log::open_read_only_with_fs(fs.clone(), dir).unwrap();
            let report = reader.backup_blocking(dest).unwrap();
            *taken.lock().unwrap() = Some((report.segments_linked, fs.read_file(&linked)));
            drop(reader);
            // The salvage's cut fails: its create of SALVAGE.tmp.
            fs.inject(Fault {
                op: Some(Op::Create),
                nth: fs.op_count(Op::Create) + 1,
                kind: FaultKind::Eio,
                persistent: false,
            });
        }) as Box<dyn FnOnce() + Send>
    };
    let during = DuringTheCut {
        inner: fs.clone(),
        hook: Arc::new(Mutex::new(Some(hook))),
    };
    let salvage = Log::open_with_fs(
        during,
        dir,
        common::small_inline_opts(RecoveryMode::Salvage),
    );
    eprintln!(
        "salvage: {:?}",
        salvage.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    drop(salvage);
    fs.clear_faults();
    let (segments_linked, before) = taken.lock().unwrap().take().expect("the backup ran");
    let before = before.expect("the backup linked the damaged segment");
    eprintln!(
        "backup linked {segments_linked}; /log: {:?}",
        fs.file_names(dir)
    );

    let opened = Log::open_with_fs(fs.clone(), dir, opts.clone());
    eprintln!(
        "default open: {:?}",
        opened.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    if let Ok(log) = opened {
        log.close().unwrap();
    }
    let after = fs.read_file(&linked).unwrap();
    assert_eq!(
        (after.len(), after == before),
        (before.len(), true),
        "the backup's linked segment {} changed in place",
        linked.display()
    );
}
