//! Review 38 (tail bound, 87cabd7): a `TAIL_BOUND` that cannot be read at open (one
//! transient EIO/EMFILE on its read-only open; `tail_bound::read` logs and answers `None`)
//! makes the writer's lease restart generations at 1 (`TailLease::new(None)`), while the
//! file on disk still holds a valid slot with a *greater* generation naming the same
//! segment. The new writer's first slot (generation 1, slot 1) loses to it, so for a whole
//! 4 MiB step the newest durable slot is the old one, whose bound the writer appends past.
//!
//! (1) After a power cut the newest slot does not cover the acknowledged data (invariant of
//!     `crate::tail_bound` broken).
//! (2) Consequence: damage to the acknowledged record lying across that stale bound, with
//!     proofs only after it, is cut silently (acknowledged records lost) where the same crash
//!     without the bound file refuses to open.
//!
//! Fixed: recovery tells an unreadable file from an absent one, and the writer removes an
//! unreadable one (durably) before it writes, so its generations start afresh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tail_bound::{last_segment, opts};

use common::prepared::{append, lost};
use seglog_segment::format::{TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::sim::{CrashMode, SimDirLock, SimFile, SimFs};
use seglog_segment::io::FileSystem;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// SimFs whose next read-only open of `TAIL_BOUND` fails once, when armed.
#[derive(Clone)]
struct Flaky {
    inner: SimFs,
    fail_next_bound_read: Arc<AtomicBool>,
}

impl Flaky {
    fn fail_bound_read_once(&self, path: &Path) -> io::Result<()> {
        if path.file_name().is_some_and(|n| n == TAIL_BOUND_FILE_NAME)
            && self.fail_next_bound_read.swap(false, Ordering::SeqCst)
        {
            return Err(io::Error::from_raw_os_error(24)); // EMFILE, once
        }
        Ok(())
    }
}

impl FileSystem for Flaky {
    type File = SimFile;
    type DirLock = SimDirLock;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<SimFile> {
        self.inner.create_new(path)
    }
    // Recovery's open of the bound file (to sync, evict and read it) is the first of it.
    fn open(&self, path: &Path) -> io::Result<SimFile> {
        self.fail_bound_read_once(path)?;
        self.inner.open(path)
    }
    fn open_read_only(&self, path: &Path) -> io::Result<SimFile> {
        self.fail_bound_read_once(path)?;
        self.inner.open_read_only(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<SimDirLock> {
        self.inner.lock_dir(dir)
    }
    fn identity(&self, path: &Path) -> io::Result<seglog_segment::io::FileIdentity> {
        self.inner.identity(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.inner.link_count(path)
    }
    fn zeroes_ahead(&self) -> bool {
        self.inner.zeroes_ahead()
    }
}

fn newest(fs: &SimFs) -> TailBound {
    TailBound::newest(
        &fs.read_file(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
            .unwrap(),
    )
    .unwrap()
}

/// Session 1 rolls to a prepared segment 2 and appends ~200 KiB into it (newest slot:
/// generation 2, slot 0, bound ≈ 4 MiB); the process dies. Session 2 opens while the bound
/// file's read fails once, and appends until its data passes that old bound; power cut.
/// Returns the crashed fs, the acked records, the stale bound and the acked data end.
fn scenario() -> (SimFs, BTreeMap<u64, u64>, TailBound, u64) {
    let sim = SimFs::new();
    let fs = Flaky {
        inner: sim.clone(),
        fail_next_bound_read: Arc::new(AtomicBool::new(false)),
    };
    let mut acked = BTreeMap::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=5 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert!(log.prepare_next_segment_now());
    log.roll().unwrap();
    let mut i = 5;
    while log.segments().last().unwrap().data_end < 200 << 10 {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let old = newest(&sim);
    assert_eq!((old.generation, old.segment), (2, 2), "{old:?}");

    // Process restart (page cache kept); the bound file's read-only open fails once.
    let sim = sim.crash(CrashMode::KeepUnsynced);
    let fs = Flaky {
        inner: sim.clone(),
        fail_next_bound_read: Arc::new(AtomicBool::new(true)),
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    assert!(!fs.fail_next_bound_read.load(Ordering::SeqCst));
    while log.segments().last().unwrap().data_end < old.bound + (64 << 10) {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    let data_end = log.segments().last().unwrap().data_end;
    drop(log);
    // Power cut: only synced bytes survive (every acknowledged record was synced).
    (sim.crash(CrashMode::LoseUnsynced), acked, old, data_end)
}

#[test]
fn the_durable_bound_covers_the_acknowledged_data_after_an_unreadable_bound_at_open() {
    let (fs, _, _, data_end) = scenario();
    let slot = newest(&fs);
    assert!(
        slot.segment != 2 || slot.bound >= data_end,
        "newest durable slot {slot:?} names the active segment but ends below its acknowledged data ({data_end})"
    );
}

#[test]
fn damage_across_a_stale_bound_is_refused_as_without_the_bound_file() {
    let (fs, acked, stale, _) = scenario();
    let seg = last_segment(&fs);
    // Damage (one flipped bit) in the acknowledged record lying across the stale bound;
    // records after it vouch that it was acknowledged.
    let mut bytes = fs.read_file(&seg).unwrap();
    bytes[stale.bound as usize - 1] ^= 0x40;
    fs.replace_file(&seg, bytes).unwrap();

    // Before the change (no bound file): the look-ahead finds the proof and refuses.
    let control = fs.fork();
    control
        .remove(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
        .unwrap();
    let Err(err) = SegmentLog::open(control, "/log", opts(), &mut ()) else {
        panic!("control: damaged acknowledged data opened without the bound file");
    };
    assert!(err.is_corruption(), "{err}");

    // With the bound file: must not silently cut acknowledged records either.
    match SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok((log, report)) => {
            let lost = lost(&log, &acked);
            panic!(
                "opened, cutting {} acknowledged records (tail_bound_used={}, torn_tail={:?})",
                lost.len(),
                report.tail_bound_used,
                report.torn_tail
            );
        }
    }
}

/// Same root cause, other door: a writer that prepares no segments removes the bound file at
/// open only when it could read a slot from it. With the read failing once, the file stays,
/// the writer appends past its bound, and the next recovery trusts it again.
#[test]
fn a_writer_without_bound_leaves_an_unreadable_bound_file_that_is_trusted_later() {
    let sim = SimFs::new();
    let fs = Flaky {
        inner: sim.clone(),
        fail_next_bound_read: Arc::new(AtomicBool::new(false)),
    };
    let mut acked = BTreeMap::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=5 {
        acked.insert(append(&log, i).unwrap(), i);
    }
    assert!(log.prepare_next_segment_now());
    log.roll().unwrap();
    let mut i = 5;
    for _ in 0..20 {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let old = newest(&sim);
    let sim = sim.crash(CrashMode::KeepUnsynced);
    let fs = Flaky {
        inner: sim.clone(),
        fail_next_bound_read: Arc::new(AtomicBool::new(true)),
    };
    let no_prepare = SegmentOptions {
        prepare_next_segment: false,
        ..opts()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", no_prepare, &mut ()).unwrap();
    while log.segments().last().unwrap().data_end < old.bound + (64 << 10) {
        i += 1;
        acked.insert(append(&log, i).unwrap(), i);
    }
    drop(log);
    let fs = sim.crash(CrashMode::LoseUnsynced);
    assert!(
        fs.read_file(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
            .is_none(),
        "a writer keeping no bound appended past a bound file it left in place ({old:?})"
    );
}
