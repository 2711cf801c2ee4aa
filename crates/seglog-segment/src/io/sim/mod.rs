//! An in-memory file system that simulates power loss and injects I/O errors
//! (feature `sim`, for tests only).
//!
//! It keeps, per file, the bytes written (the page cache) and the bytes made durable by
//! `sync_data`, and per directory the entries made durable by `sync_dir`; a new directory's
//! own entry is durable only once its parent is dir-fsynced. [`SimFs::crash`] "pulls the
//! plug": the old handles die, and a new file system holds only what could have survived —
//! durable bytes, plus none, all, or a torn subset of the unsynced writes — and only the
//! directory entries that were dir-fsynced. That is stricter than ext4, which often keeps new
//! entries anyway.
//!
//! A failed `sync_data` behaves like Linux after a failed writeback ("fsyncgate"): the error
//! is reported once, the pages are marked clean, so no later sync writes them again, and their
//! contents stay in the page cache, where a restarted process (a new [`SimFs`] handle on the
//! same state, no power cut) still reads them. And like ext4 (seen on Linux 6.18, where a
//! failed writeback into a preallocated extent leaves the extent unwritten while the cached
//! page says its blocks are mapped), a later write into such a page does not become durable
//! even after a sync that returns Ok — until the page has been dropped from the cache
//! ([`crate::io::SegmentFile::evict`]) or truncated away.
//!
//! Faults: [`SimFs::inject`] fails the N-th operation of a kind (once or from then on) with
//! EIO, ENOSPC or a short write; [`SimFs::power_off_after`] stops the world after the N-th
//! mutating operation, so a test can crash at every point of a workload.

mod file;

pub use file::SimFile;

use super::{FileIdentity, FileSystem};
use parking_lot::Mutex;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sector size used when tearing a write (a torn sector may also keep only a prefix).
const SECTOR: usize = 512;
/// Page size of the simulated page cache.
pub(crate) const PAGE: u64 = 4096;

/// The kinds of operation a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `create_new`.
    Create,
    /// `write_all_at`.
    Write,
    /// `sync_data`.
    SyncData,
    /// `set_len`.
    SetLen,
    /// `allocate`.
    Allocate,
    /// `rename`.
    Rename,
    /// `remove`.
    Remove,
    /// `sync_dir`.
    SyncDir,
    /// `hard_link`.
    Link,
}

/// How an injected fault fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// EIO.
    Eio,
    /// ENOSPC.
    Enospc,
    /// Half the buffer is written, then the write fails (only meaningful for writes).
    ShortWrite,
}

/// One planned failure.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// The kind of operation to fail; `None` counts every mutating operation.
    pub op: Option<Op>,
    /// Fail the `nth` matching operation (1-based).
    pub nth: u64,
    /// How it fails.
    pub kind: FaultKind,
    /// Keep failing every matching operation after the `nth`.
    pub persistent: bool,
}

/// What survives of unsynced writes at a crash.
#[derive(Debug, Clone, Copy)]
pub enum CrashMode {
    /// Only synced bytes survive.
    LoseUnsynced,
    /// Every write survives (as if the page cache was flushed just in time).
    KeepUnsynced,
    /// Each unsynced write is dropped, kept, or kept in part (random 512-byte sectors),
    /// chosen by a seeded random generator; a random prefix of the unsynced directory
    /// operations survives (journaled file systems commit metadata in order).
    Torn {
        /// Seed of the choices, so a failing case can be replayed.
        seed: u64,
    },
    /// As `Torn` for file data, but each unsynced directory operation survives or not on its
    /// own, in any combination: a file system that reorders metadata. Only a directory fsync
    /// orders anything.
    Reordered {
        /// Seed of the choices, so a failing case can be replayed.
        seed: u64,
    },
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Clone, Default)]
struct Inode {
    /// The page cache: what reads return.
    data: Vec<u8>,
    /// The disk.
    durable: Vec<u8>,
    /// Changes not yet on the disk, oldest first (queued through [`Inode::queue`]).
    unsynced: Vec<Pending>,
    /// Changes ever queued: the last of `unsynced` is change `queued - 1`.
    queued: u64,
    /// Pages whose writeback failed and that are still cached: writes into them never reach
    /// the disk until they are evicted or truncated away.
    failed_pages: BTreeSet<u64>,
    /// Failed writebacks so far (Linux's per-file `errseq`): every handle that was open when
    /// one happened reports it at its next sync, once, whichever handle's sync failed.
    writeback_errors: u64,
}

impl Inode {
    /// Queues a change for the disk (it is in the page cache already).
    fn queue(&mut self, change: Pending) {
        self.unsynced.push(change);
        self.queued += 1;
    }

    /// Takes the unsynced changes queued before change number `end` (what an fsync that
    /// began when `queued` was `end` writes back), leaving later ones unsynced.
    fn take_queued_before(&mut self, end: u64) -> Vec<Pending> {
        let first = self.queued - self.unsynced.len() as u64;
        let n = end.saturating_sub(first).min(self.unsynced.len() as u64) as usize;
        self.unsynced.drain(..n).collect()
    }

    /// The pages a write touches.
    fn pages(offset: u64, len: usize) -> std::ops::Range<u64> {
        offset / PAGE..(offset + len as u64).div_ceil(PAGE)
    }

    /// Applies a synced change to the disk, except within failed pages.
    fn persist(&mut self, change: &Pending) {
        match change {
            Pending::Write { offset, bytes } if !self.failed_pages.is_empty() => {
                for page in Self::pages(*offset, bytes.len()) {
                    if self.failed_pages.contains(&page) {
                        continue;
                    }
                    let start = (page * PAGE).max(*offset);
                    let end = ((page + 1) * PAGE).min(offset + bytes.len() as u64);
                    let slice = &bytes[(start - offset) as usize..(end - offset) as usize];
                    write_into(&mut self.durable, start, slice);
                }
            }
            other => apply(&mut self.durable, other),
        }
    }
}

/// A namespace change not yet made durable by a directory fsync.
#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, u64),
    /// From, to, and the inode moved.
    Rename(PathBuf, PathBuf, u64),
    Unlink(PathBuf),
    /// A new directory's entry in its parent.
    MakeDir(PathBuf),
}

impl DirOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirOp::Link(p, _) | DirOp::Unlink(p) | DirOp::MakeDir(p) => p.parent(),
            DirOp::Rename(_, to, _) => to.parent(),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>, dirs: &mut BTreeSet<PathBuf>) {
        match self {
            DirOp::Link(p, id) => {
                names.insert(p.clone(), *id);
            }
            DirOp::Rename(from, to, _) => {
                if let Some(id) = names.remove(from) {
                    names.insert(to.clone(), id);
                }
            }
            DirOp::Unlink(p) => {
                names.remove(p);
            }
            DirOp::MakeDir(p) => {
                dirs.insert(p.clone());
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct State {
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    /// Namespace changes since the last fsync of their directory, in order.
    unsynced_dir_ops: Vec<DirOp>,
    dirs: BTreeSet<PathBuf>,
    /// Directories whose own entry is durable (the root always is).
    durable_dirs: BTreeSet<PathBuf>,
    locked: BTreeSet<PathBuf>,
    faults: Vec<Fault>,
    counts: HashMap<Op, u64>,
    mutating_ops: u64,
    power_off_after: Option<u64>,
    powered_off: bool,
    sync_latency: std::time::Duration,
    /// When not empty, the latencies `sync_data` calls take in turn (cycling), instead of
    /// `sync_latency`: overlapping fsyncs then finish out of order, as on a real device.
    sync_latency_cycle: Vec<std::time::Duration>,
    sync_calls: usize,
    /// `sync_data` calls begun so far (before their latency).
    syncs_started: u64,
    /// Whether logs keep written zeros ahead of their tail here (off unless a test asks).
    zeroes_ahead: bool,
    /// Bytes of cached pages dropped by `evict` so far.
    evicted_bytes: u64,
}

impl State {
    /// The latency of the next `sync_data` call.
    pub(super) fn next_sync_latency(&mut self) -> std::time::Duration {
        if self.sync_latency_cycle.is_empty() {
            return self.sync_latency;
        }
        let at = self.sync_calls % self.sync_latency_cycle.len();
        self.sync_calls = self.sync_calls.wrapping_add(1);
        self.sync_latency_cycle
            .get(at)
            .copied()
            .unwrap_or(self.sync_latency)
    }
}

/// The simulated file system. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

/// The simulated directory lock.
#[derive(Debug)]
pub struct SimDirLock {
    state: Arc<Mutex<State>>,
    dir: PathBuf,
}

impl Drop for SimDirLock {
    fn drop(&mut self) {
        self.state.lock().locked.remove(&self.dir);
    }
}

fn powered_off() -> io::Error {
    io::Error::other("simulated power loss: the machine is off")
}

fn not_a_directory() -> io::Error {
    io::Error::from(rustix::io::Errno::NOTDIR)
}

fn errno(kind: FaultKind) -> io::Error {
    match kind {
        FaultKind::Eio | FaultKind::ShortWrite => io::Error::from(rustix::io::Errno::IO),
        FaultKind::Enospc => io::Error::from(rustix::io::Errno::NOSPC),
    }
}

impl State {
    /// Counts a mutating operation; returns the fault to apply, if any.
    fn begin(&mut self, op: Op) -> io::Result<Option<FaultKind>> {
        if self.powered_off {
            return Err(powered_off());
        }
        self.mutating_ops += 1;
        let n = {
            let c = self.counts.entry(op).or_insert(0);
            *c += 1;
            *c
        };
        let total = self.mutating_ops;
        let fault = self.faults.iter().find_map(|f| {
            let count = if f.op.is_some() { n } else { total };
            let hit =
                f.op.is_none_or(|o| o == op) && (count == f.nth || (f.persistent && count > f.nth));
            hit.then_some(f.kind)
        });
        if self.power_off_after.is_some_and(|n| total >= n) {
            // This operation completes; everything after it finds the machine off.
            self.powered_off = true;
        }
        Ok(fault)
    }

    fn check_on(&self) -> io::Result<()> {
        if self.powered_off {
            Err(powered_off())
        } else {
            Ok(())
        }
    }

    /// As the kernel's path walk: a file where a directory must be, above `path`, is
    /// ENOTDIR (before any question about `path` itself).
    fn walk(&self, path: &Path) -> io::Result<()> {
        if path.ancestors().skip(1).any(|a| self.names.contains_key(a)) {
            return Err(not_a_directory());
        }
        Ok(())
    }

    fn inode(&mut self, id: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&id)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

fn write_into(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    if bytes.is_empty() {
        // A write that wrote nothing (one refused by a fault) never extends a file.
        return;
    }
    let start = offset as usize;
    let end = start + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(bytes);
}

/// Applies one unsynced change to a file's bytes.
fn apply(data: &mut Vec<u8>, change: &Pending) {
    match change {
        Pending::Write { offset, bytes } => write_into(data, *offset, bytes),
        Pending::SetLen(len) => data.resize(*len as usize, 0),
    }
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// `rename(2)`; with `replace` false, `RENAME_NOREPLACE`: an existing `to` is refused
    /// before anything changes.
    fn rename_inner(&self, from: &Path, to: &Path, replace: bool) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_on()?;
        // As the kernel: the old name's parent is looked up, then the new name's, then the
        // old name, then the new.
        let parent_is_dir = |p: &Path| p.parent().is_some_and(|d| st.dirs.contains(d));
        st.walk(from)?;
        if !parent_is_dir(from) {
            return Err(io::ErrorKind::NotFound.into());
        }
        st.walk(to)?;
        if !parent_is_dir(to) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let Some(&id) = st.names.get(from) else {
            return Err(io::ErrorKind::NotFound.into());
        };
        // NOREPLACE refuses any entry at `to` (EEXIST); a plain rename of a file onto a
        // directory is EISDIR.
        if !replace && (st.names.contains_key(to) || st.dirs.contains(to)) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        if st.dirs.contains(to) {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        // rename(2): "If oldpath and newpath are existing hard links referring to the same
        // file, then rename() does nothing".
        if st.names.get(to) == Some(&id) {
            return Ok(());
        }
        if let Some(kind) = st.begin(Op::Rename)? {
            return Err(errno(kind));
        }
        st.names.remove(from);
        st.names.insert(to.to_path_buf(), id);
        st.unsynced_dir_ops
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf(), id));
        Ok(())
    }

    /// Plans a fault.
    pub fn inject(&self, fault: Fault) {
        self.state.lock().faults.push(fault);
    }

    /// Removes every planned fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Powers the machine off right after the `n`-th mutating operation from now on counts
    /// (operations are counted from the creation of this file system).
    pub fn power_off_after(&self, n: u64) {
        self.state.lock().power_off_after = Some(n);
    }

    /// Lets logs on this file system keep written zeros ahead of their tail (a background
    /// thread, see `SegmentOptions::zero_ahead_bytes`). Off by default: its writes and syncs
    /// come at times of their own, which tests that count operations must not see.
    pub fn set_zeroes_ahead(&self, on: bool) {
        self.state.lock().zeroes_ahead = on;
    }

    /// Makes every `sync_data` take at least `latency` (slept outside any lock), so tests
    /// can see commit groups form the way they do on a real disk.
    pub fn set_sync_latency(&self, latency: std::time::Duration) {
        let mut st = self.state.lock();
        st.sync_latency = latency;
        st.sync_latency_cycle.clear();
    }

    /// Makes successive `sync_data` calls take these latencies in turn (cycling): with a
    /// long one followed by a short one, a later fsync overtakes an earlier one still in
    /// flight, as happens on real devices.
    pub fn set_sync_latency_cycle(&self, latencies: &[std::time::Duration]) {
        self.state.lock().sync_latency_cycle = latencies.to_vec();
    }

    /// `sync_data` calls begun so far, counted as each begins (before its latency): a test
    /// waits on it to act while an fsync is in flight.
    pub fn syncs_started(&self) -> u64 {
        self.state.lock().syncs_started
    }

    /// Mutating operations performed so far.
    pub fn mutating_ops(&self) -> u64 {
        self.state.lock().mutating_ops
    }

    /// Bytes of pages `evict` has dropped from the cache so far.
    pub fn evicted_bytes(&self) -> u64 {
        self.state.lock().evicted_bytes
    }

    /// Operations of kind `op` performed so far (what a [`Fault`]'s `nth` counts).
    pub fn op_count(&self, op: Op) -> u64 {
        self.state.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// True once the simulated power is off.
    pub fn is_powered_off(&self) -> bool {
        self.state.lock().powered_off
    }

    /// Pulls the plug: this file system and its handles stop working, and the returned one
    /// holds what survived (see [`CrashMode`]). Of the namespace changes (create, rename,
    /// remove) not yet made durable by a directory fsync, none survive with
    /// `LoseUnsynced`, all with `KeepUnsynced`, and a random prefix with `Torn` — journaled
    /// file systems commit metadata in order.
    pub fn crash(&self, mode: CrashMode) -> SimFs {
        let mut st = self.state.lock();
        st.powered_off = true;
        let mut rng = match mode {
            CrashMode::Torn { seed } | CrashMode::Reordered { seed } => {
                Some(StdRng::seed_from_u64(seed))
            }
            _ => None,
        };
        let ops = st.unsynced_dir_ops.len();
        let kept: Vec<bool> = match (mode, rng.as_mut()) {
            (CrashMode::KeepUnsynced, _) => vec![true; ops],
            (CrashMode::Torn { .. }, Some(r)) => {
                let prefix = r.random_range(0..=ops);
                (0..ops).map(|i| i < prefix).collect()
            }
            (CrashMode::Reordered { .. }, Some(r)) => {
                (0..ops).map(|_| r.random_bool(0.5)).collect()
            }
            _ => vec![false; ops],
        };
        let mut names = st.durable_names.clone();
        let mut dirs = st.durable_dirs.clone();
        for (op, _) in st.unsynced_dir_ops.iter().zip(&kept).filter(|(_, k)| **k) {
            op.apply(&mut names, &mut dirs);
        }
        // A directory (and everything in it) survives only if its whole path did.
        let dirs: BTreeSet<PathBuf> = dirs
            .iter()
            .filter(|d| d.ancestors().skip(1).all(|a| dirs.contains(a)))
            .cloned()
            .collect();
        names.retain(|p, _| p.parent().is_some_and(|d| dirs.contains(d)));
        let mut next = State {
            dirs: dirs.clone(),
            durable_dirs: dirs,
            next_inode: st.next_inode,
            durable_names: names.clone(),
            names,
            ..State::default()
        };
        let live: BTreeSet<u64> = next.names.values().copied().collect();
        for id in live {
            let Some(inode) = st.inodes.get(&id) else {
                continue;
            };
            let mut data = inode.durable.clone();
            // Unsynced writes into pages whose writeback failed never reach the disk either.
            let reachable = |offset: u64| !inode.failed_pages.contains(&(offset / PAGE));
            for p in &inode.unsynced {
                let keep = match (mode, rng.as_mut()) {
                    (CrashMode::LoseUnsynced, _) => 0,
                    (CrashMode::KeepUnsynced, _) => 1,
                    (_, Some(r)) => r.random_range(0..3u8),
                    (_, None) => 0,
                };
                match (p, keep) {
                    (_, 0) => {}
                    (Pending::SetLen(len), _) => data.resize(*len as usize, 0),
                    (Pending::Write { offset, bytes }, keep) => {
                        for (i, sector) in bytes.chunks(SECTOR).enumerate() {
                            let at = offset + (i * SECTOR) as u64;
                            let kept =
                                keep == 1 || rng.as_mut().is_some_and(|r| r.random_bool(0.5));
                            if kept && reachable(at) {
                                // A sector usually lands whole, but format.md §4 assumes any
                                // granularity: now and then only a prefix of it lands (a
                                // 52-byte tail bound slot can tear, too).
                                let landed = match rng.as_mut() {
                                    Some(r) if keep == 2 => {
                                        if r.random_bool(0.125) {
                                            r.random_range(0..sector.len())
                                        } else {
                                            sector.len()
                                        }
                                    }
                                    _ => sector.len(),
                                };
                                write_into(&mut data, at, &sector[..landed]);
                            }
                        }
                    }
                }
            }
            next.inodes.insert(
                id,
                Inode {
                    durable: data.clone(),
                    data,
                    unsynced: Vec::new(),
                    queued: 0,
                    failed_pages: BTreeSet::new(),
                    writeback_errors: 0,
                },
            );
        }
        SimFs {
            state: Arc::new(Mutex::new(next)),
        }
    }

    /// A copy of this machine, page cache, unsynced changes and planned faults included, that
    /// goes its own way from now on: for a test that cuts the power in one copy and lets the
    /// other run on.
    pub fn fork(&self) -> SimFs {
        let mut copy = self.state.lock().clone();
        copy.locked.clear();
        SimFs {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// The current (not necessarily durable) contents of a file, for test assertions.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let id = st.names.get(path)?;
        st.inodes.get(id).map(|i| i.data.clone())
    }

    /// Overwrites a file's contents as durable bytes, bypassing fault injection: for tests
    /// that damage a log (bit flips, truncation, garbage) between runs.
    pub fn replace_file(&self, path: &Path, contents: Vec<u8>) -> io::Result<()> {
        let mut st = self.state.lock();
        let id = *st.names.get(path).ok_or(io::ErrorKind::NotFound)?;
        let inode = st.inode(id)?;
        inode.durable = contents.clone();
        inode.data = contents;
        inode.unsynced.clear();
        Ok(())
    }

    /// The names in `dir`, sorted.
    pub fn file_names(&self, dir: &Path) -> Vec<String> {
        let mut names = self.list(dir).unwrap_or_default();
        names.sort();
        names
    }
}

impl FileSystem for SimFs {
    fn zeroes_ahead(&self) -> bool {
        self.state.lock().zeroes_ahead
    }

    type File = SimFile;
    type DirLock = SimDirLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_on()?;
        // A new directory's entry is durable only after its parent is dir-fsynced, as on a
        // real file system. The root always exists.
        // As the kernel: a file in the way above the last component is ENOTDIR, a file at
        // the last component EEXIST.
        st.walk(dir)?;
        if st.names.contains_key(dir) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let mut created: Vec<PathBuf> = dir
            .ancestors()
            .filter(|a| !st.dirs.contains(*a))
            .map(Path::to_path_buf)
            .collect();
        created.reverse();
        for d in created {
            if d.parent().is_none() || d.as_os_str().is_empty() {
                st.durable_dirs.insert(d.clone());
            } else {
                st.unsynced_dir_ops.push(DirOp::MakeDir(d.clone()));
            }
            st.dirs.insert(d);
        }
        Ok(())
    }

    fn create_new(&self, path: &Path) -> io::Result<SimFile> {
        let mut st = self.state.lock();
        st.check_on()?;
        st.walk(path)?;
        // As `open(O_CREAT | O_EXCL)`: any entry of that name, file or directory, is EEXIST.
        if st.names.contains_key(path) || st.dirs.contains(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        if !path.parent().is_some_and(|p| st.dirs.contains(p)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if let Some(kind) = st.begin(Op::Create)? {
            return Err(errno(kind));
        }
        st.next_inode += 1;
        let id = st.next_inode;
        st.inodes.insert(id, Inode::default());
        st.names.insert(path.to_path_buf(), id);
        st.unsynced_dir_ops
            .push(DirOp::Link(path.to_path_buf(), id));
        Ok(SimFile {
            state: self.state.clone(),
            inode: id,
            writable: true,
            errors_seen: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn open(&self, path: &Path) -> io::Result<SimFile> {
        let mut st = self.state.lock();
        st.check_on()?;
        st.walk(path)?;
        // Opened for writing, a directory is EISDIR. (Read-only, the kernel opens it and
        // fails its reads; the simulator refuses it here already: it has no directory files.)
        if st.dirs.contains(path) {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        let id = *st.names.get(path).ok_or(io::ErrorKind::NotFound)?;
        // A new handle reports only the writeback errors that happen after it was opened.
        let seen = st.inode(id).map_or(0, |i| i.writeback_errors);
        Ok(SimFile {
            state: self.state.clone(),
            inode: id,
            writable: true,
            errors_seen: std::sync::atomic::AtomicU64::new(seen),
        })
    }

    fn open_read_only(&self, path: &Path) -> io::Result<SimFile> {
        let mut f = self.open(path)?;
        f.writable = false;
        Ok(f)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_inner(from, to, true)
    }

    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_inner(from, to, false)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_on()?;
        st.walk(path)?;
        // `unlink` of a directory: EISDIR on Linux.
        if st.dirs.contains(path) {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        if !st.names.contains_key(path) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if let Some(kind) = st.begin(Op::Remove)? {
            return Err(errno(kind));
        }
        st.names.remove(path);
        st.unsynced_dir_ops.push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_on()?;
        st.walk(dir)?;
        if st.names.contains_key(dir) {
            return Err(not_a_directory());
        }
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if let Some(kind) = st.begin(Op::SyncDir)? {
            return Err(errno(kind));
        }
        let in_dir = |p: &Path| p.parent() == Some(dir);
        let current: Vec<(PathBuf, u64)> = st
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        st.durable_names.retain(|p, _| !in_dir(p));
        st.durable_names.extend(current);
        let subdirs: Vec<PathBuf> = st.dirs.iter().filter(|d| in_dir(d)).cloned().collect();
        st.durable_dirs.retain(|d| !in_dir(d));
        st.durable_dirs.extend(subdirs);
        // A rename into this directory from another is one journal transaction on ext4 and
        // XFS: made durable here, its old name goes durably too.
        let moved_out: Vec<(PathBuf, u64)> = st
            .unsynced_dir_ops
            .iter()
            .filter_map(|op| match op {
                DirOp::Rename(from, to, id) if in_dir(to) && !in_dir(from) => {
                    Some((from.clone(), *id))
                }
                _ => None,
            })
            .collect();
        for (from, id) in moved_out {
            // Unless a later rename moved it back (review 64).
            if st.durable_names.get(&from) == Some(&id) && st.names.get(&from) != Some(&id) {
                st.durable_names.remove(&from);
            }
        }
        st.unsynced_dir_ops.retain(|op| op.dir() != Some(dir));
        Ok(())
    }

    /// The simulated file system has no working directory: a path is a name, kept as given.
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        st.check_on()?;
        st.walk(dir)?;
        if st.names.contains_key(dir) {
            return Err(not_a_directory());
        }
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    /// A file is its inode. A directory is its path: the simulator never renames or
    /// removes one, so a path names the same directory for as long as the machine is on.
    fn identity(&self, path: &Path) -> io::Result<FileIdentity> {
        let st = self.state.lock();
        st.check_on()?;
        st.walk(path)?;
        if let Some(&inode) = st.names.get(path) {
            return Ok(FileIdentity { device: 0, inode });
        }
        if !st.dirs.contains(path) {
            return Err(io::ErrorKind::NotFound.into());
        }
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut hasher);
        Ok(FileIdentity {
            device: 1,
            inode: hasher.finish(),
        })
    }

    /// A second name of the same inode, as `link(2)`: durable once `to`'s directory is
    /// synced; the file's bytes are shared, whichever name writes them.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_on()?;
        // As the kernel: the old name is looked up, then the new one is made (ENOENT,
        // ENOTDIR, EEXIST), and only then is a directory refused (EPERM).
        st.walk(from)?;
        let id = st.names.get(from).copied();
        if id.is_none() && !st.dirs.contains(from) {
            return Err(io::ErrorKind::NotFound.into());
        }
        st.walk(to)?;
        if !to.parent().is_some_and(|p| st.dirs.contains(p)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if st.names.contains_key(to) || st.dirs.contains(to) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let Some(id) = id else {
            return Err(io::Error::from(rustix::io::Errno::PERM));
        };
        if let Some(kind) = st.begin(Op::Link)? {
            return Err(errno(kind));
        }
        st.names.insert(to.to_path_buf(), id);
        st.unsynced_dir_ops.push(DirOp::Link(to.to_path_buf(), id));
        Ok(())
    }

    fn link_count(&self, path: &Path) -> io::Result<u64> {
        let st = self.state.lock();
        st.check_on()?;
        st.walk(path)?;
        if let Some(&id) = st.names.get(path) {
            return Ok(st.names.values().filter(|&&i| i == id).count() as u64);
        }
        if !st.dirs.contains(path) {
            return Err(io::ErrorKind::NotFound.into());
        }
        // A directory: its own entry, its `.`, and each subdirectory's `..`.
        Ok(2 + st.dirs.iter().filter(|d| d.parent() == Some(path)).count() as u64)
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<SimDirLock> {
        let mut st = self.state.lock();
        st.check_on()?;
        if !st.locked.insert(dir.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(SimDirLock {
            state: self.state.clone(),
            dir: dir.to_path_buf(),
        })
    }
}
