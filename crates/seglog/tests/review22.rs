//! Review 22 (issue 17: rehydration of offloaded segments). Each test states what it shows
//! and fails on the code under review.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::*;

use seglog::io::sim::{SimDirLock, SimFile, SimFs};
use seglog::io::FileSystem;
use seglog::Log;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One thread held inside `open_read_only` of one path, until released.
#[derive(Debug, Default)]
struct Gate {
    target: Mutex<Option<PathBuf>>,
    /// (a thread is inside, it may go on)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn arm(&self, path: PathBuf) {
        *self.target.lock().unwrap() = Some(path);
    }

    fn pass(&self, path: &Path) {
        let hit = {
            let mut target = self.target.lock().unwrap();
            if target.as_deref() == Some(path) {
                *target = None;
                true
            } else {
                false
            }
        };
        if !hit {
            return;
        }
        let mut state = self.state.lock().unwrap();
        state.0 = true;
        self.changed.notify_all();
        while !state.1 {
            state = self.changed.wait(state).unwrap();
        }
    }

    /// Waits until a thread is inside (a guard against a test that never gets there, not a
    /// timing assumption: the thread's arrival is what is awaited).
    fn wait_inside(&self) {
        let mut state = self.state.lock().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !state.0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "the reader never reached the gate");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// `SimFs` with a [`Gate`] on `open_read_only`.
#[derive(Debug, Clone)]
struct GateFs {
    inner: SimFs,
    gate: Arc<Gate>,
}

impl FileSystem for GateFs {
    type File = SimFile;
    type DirLock = SimDirLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<SimFile> {
        self.inner.create_new(path)
    }
    fn open(&self, path: &Path) -> io::Result<SimFile> {
        self.inner.open(path)
    }
    fn open_read_only(&self, path: &Path) -> io::Result<SimFile> {
        self.gate.pass(path);
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

fn checkpoint_path(first_lsn: u64) -> PathBuf {
    Path::new("/log").join(format!("{first_lsn:020}.idx"))
}

/// Finding 1. `rehydrate_segment`'s step 4 puts the segment into the segment table and
/// then takes it out of the offloaded table. A reader that lists the local segments first
/// and checks the offloaded ones afterwards (a global-order read: `try_read_global` walks
/// `segments()`, then `check_global_range` looks at the offloaded table) can see the
/// segment in neither: it listed the local segments before the adoption and checks the
/// offloaded table after the removal. The read then returns `Ok` **without the
/// segment's records** instead of `Error::Offloaded`; a `subscribe_global` cursor moves
/// past them and never yields them (the layout epoch does not move, so nothing retries).
/// The ship round's `shipped_listing` (local, then offloaded) has the same window: a
/// manifest committed from it stops naming the segment (the divergence check accepts a
/// segment with no local holder as "erased whole").
///
/// Deterministic: the reader is held inside its first checkpoint read (the LSN samples of
/// the first local segment, built after it listed the segments) while the rehydration runs
/// whole, then let go.
#[test]
fn a_global_read_racing_a_rehydration_returns_ok_without_the_segments_records() {
    let (sim, source, _expected) = shipped_log();
    let gate = Arc::new(Gate::default());
    let fs = GateFs {
        inner: sim.clone(),
        gate: gate.clone(),
    };
    let log = Log::open_with_fs(fs, "/log", opts()).unwrap();
    log.set_segment_source(source.clone());
    let segments = log.segments();
    assert!(segments.len() >= 3 && segments[0].sealed && segments[1].sealed);
    let victim = segments[0].clone();
    log.offload_segment(victim.number, &target(&source, victim.number))
        .unwrap();
    assert_eq!(log.offloaded_segments().len(), 1);

    // The reader: a global read from the start. It lists the local segments, then stops in
    // the checkpoint read of the first of them.
    gate.arm(checkpoint_path(segments[1].first_lsn));
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || log.read_global(0, usize::MAX))
    };
    gate.wait_inside();
    // Meanwhile the offloaded segment comes back, whole.
    log.rehydrate_segment(victim.number).unwrap();
    gate.release();
    let raced = reader.join().unwrap();

    let all: Vec<u64> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.lsn)
        .collect();
    assert!(all.first().copied() <= Some(victim.last_lsn));
    match raced {
        Err(seglog::Error::Offloaded { .. }) => {}
        Err(e) => panic!("unexpected error: {e}"),
        Ok(records) => {
            let got: Vec<u64> = records.iter().map(|r| r.lsn).collect();
            let missing: Vec<u64> = all.iter().filter(|l| !got.contains(l)).copied().collect();
            assert!(
                missing.is_empty(),
                "a global read racing the rehydration of segment {} returned Ok without \
                 {} of its records (LSNs {:?}..): it should fail with Error::Offloaded or \
                 return every record",
                victim.number,
                missing.len(),
                missing.first()
            );
        }
    }
    log.close().unwrap();
}

/// Finding 2. An explicit erasure over offloaded segments rehydrates them first, but only
/// when it is not a dry run: a dry run of the very plan the real run carries out failed
/// with `Error::Offloaded` (step 1 still refused records in offloaded segments), so the
/// preview of an erasure (`CompactOptions::dry_run`) could not be had once segments were
/// offloaded. Fixed: with a source set, the dry run counts what the real run drops (its
/// byte figures cover the local segments).
#[test]
fn a_dry_run_of_an_erasure_over_offloaded_segments_counts_what_the_real_run_drops() {
    let (fs, source, _expected) = shipped_log();
    let log = open(&fs, &source).unwrap();
    let active = log.segments().last().unwrap().number;
    for s in log
        .segments()
        .into_iter()
        .filter(|s| s.sealed && s.number < active)
    {
        log.offload_segment(s.number, &target(&source, s.number))
            .unwrap();
    }
    assert!(log.offloaded_segments().len() >= 3);
    let plan = seglog::compaction::policy::drop_tenant(&log.compaction_view(false).unwrap(), "t1");
    let dry = log.compact_blocking(
        &plan,
        seglog::CompactOptions::default().dry_run(true),
        &mut |_, _| {},
    );
    let real = log
        .compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(real.executions_dropped >= 2, "{real:?}");
    let dry = dry.unwrap_or_else(|e| {
        panic!(
            "the dry run of an erasure the real run carries out ({} executions) failed: {e}",
            real.executions_dropped
        )
    });
    assert_eq!(dry.executions_dropped, real.executions_dropped);
    log.close().unwrap();
}
