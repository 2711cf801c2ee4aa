//! Review 63 (commit 77b8161): now that SimFs hard-links a backup's sealed segments, a
//! repair of the source log on SimFs cut the backup's linked segment in place:
//! `repair_dir_with_fs` assumed every file has one name, on any file system (the real one
//! too), where `repair_dir` asked the kernel and refused ("other names"). Both now ask
//! `FileSystem::link_count`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::io::sim::SimFs;
use seglog::{Log, Options, RecoveryMode};
use seglog_segment::inspect::analyze_segment;
use std::path::{Path, PathBuf};

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
    let err = seglog::repair_dir(&dir, |_| true).unwrap_err();
    assert!(err.to_string().contains("other names"), "{err}");
    assert_eq!(std::fs::read(&linked).unwrap(), before);
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

/// The repair refuses to cut a segment with other names; a `Salvage` open cut it all the
/// same (it was documented: "salvage a copy made with `cp`, not a linked backup"). It now
/// refuses too, before it removes or cuts anything, on SimFs and on the kernel.
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
    let opened = Log::open_with_fs(fs.clone(), dir, salvage).map(|_| ());
    let err = opened.expect_err("a salvage open cut a segment a backup links");
    assert!(err.to_string().contains("other names"), "{err}");
    assert_eq!(read(&linked), before, "the backup's segment changed");
    for seg in &segs {
        assert!(fs.identity(seg).is_ok(), "{} was removed", seg.display());
    }
}

#[test]
fn a_salvage_open_refuses_to_cut_a_segment_a_backup_links_on_simfs() {
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
fn a_salvage_open_refuses_to_cut_a_segment_a_backup_links_on_the_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    salvage_open_of_a_log_a_backup_linked(
        seglog::io::StdFs,
        &tmp.path().join("log"),
        &tmp.path().join("backup"),
        |p| std::fs::read(p).unwrap(),
        |p, b| std::fs::write(p, b).unwrap(),
    );
}
