//! Review 42: an oracle for the tail bound's rule (format.md §3.6) with the zeroing thread on.
//! No defect found in 8732704 (the zeroing thread moves the bound first); the oracle fails on
//! the zeroing before it (49b38b3: 28 of 1,415 writes past a durable bound).
//!
//! A file system wrapped around the simulated one watches every write: a write into a segment
//! file (past its header) must end at or below the bound of the newest slot of `TAIL_BOUND`
//! that a sync made durable *before* the write, and that slot must name that very segment
//! (number and salt). Writes of recovery (during `open`) and of the prepared file before it
//! has a header are not judged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use parking_lot::Mutex;
use seglog_segment::format::{EventBatch, SegmentHeader, TailBound, TAIL_BOUND_FILE_NAME};
use seglog_segment::io::sim::SimFs;
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Oracle {
    /// The bound file as cached (what its writes made it).
    cached: Vec<u8>,
    /// The newest valid slot of what a successful sync of the bound file made durable.
    durable: Option<TailBound>,
    violations: Vec<String>,
    judged: u64,
}

#[derive(Clone)]
struct WatchedFs {
    inner: SimFs,
    oracle: Arc<Mutex<Oracle>>,
    judging: Arc<AtomicBool>,
}

struct WatchedFile {
    inner: <SimFs as FileSystem>::File,
    path: PathBuf,
    is_bound: bool,
    oracle: Arc<Mutex<Oracle>>,
    judging: Arc<AtomicBool>,
}

impl WatchedFs {
    fn wrap(&self, inner: <SimFs as FileSystem>::File, path: &Path) -> WatchedFile {
        let is_bound = path.file_name().and_then(|n| n.to_str()) == Some(TAIL_BOUND_FILE_NAME);
        if is_bound {
            let mut o = self.oracle.lock();
            if o.cached.is_empty() {
                let mut buf = vec![0u8; 8192];
                let n = inner.read_at(&mut buf, 0).unwrap_or(0);
                buf.truncate(n);
                o.cached = buf;
            }
        }
        WatchedFile {
            inner,
            path: path.to_path_buf(),
            is_bound,
            oracle: self.oracle.clone(),
            judging: self.judging.clone(),
        }
    }
}

impl FileSystem for WatchedFs {
    type File = WatchedFile;
    type DirLock = <SimFs as FileSystem>::DirLock;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        if path.file_name().and_then(|n| n.to_str()) == Some(TAIL_BOUND_FILE_NAME) {
            let mut o = self.oracle.lock();
            o.cached.clear();
            o.durable = None;
        }
        Ok(self.wrap(self.inner.create_new(path)?, path))
    }
    fn open(&self, path: &Path) -> io::Result<Self::File> {
        Ok(self.wrap(self.inner.open(path)?, path))
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File> {
        Ok(self.wrap(self.inner.open_read_only(path)?, path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        if path.file_name().and_then(|n| n.to_str()) == Some(TAIL_BOUND_FILE_NAME) {
            let mut o = self.oracle.lock();
            o.cached.clear();
            o.durable = None;
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
    fn identity(&self, path: &Path) -> io::Result<seglog_segment::io::FileIdentity> {
        self.inner.identity(path)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.inner.link_count(path)
    }
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.absolute(path)
    }
    fn zeroes_ahead(&self) -> bool {
        self.inner.zeroes_ahead()
    }
}

impl SegmentFile for WatchedFile {
    fn identity(&self) -> io::Result<seglog_segment::io::FileIdentity> {
        self.inner.identity()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.is_bound {
            let r = self.inner.write_all_at(buf, offset);
            if r.is_ok() {
                let mut o = self.oracle.lock();
                let end = offset as usize + buf.len();
                if o.cached.len() < end {
                    o.cached.resize(end, 0);
                }
                o.cached[offset as usize..end].copy_from_slice(buf);
            }
            return r;
        }
        if offset > 0 && self.judging.load(Ordering::SeqCst) {
            let mut head = [0u8; 64];
            if self.inner.read_at(&mut head, 0).unwrap_or(0) == 64 {
                if let Ok(h) = SegmentHeader::decode(&head) {
                    let mut o = self.oracle.lock();
                    o.judged += 1;
                    let end = offset + buf.len() as u64;
                    let ok = o.durable.is_some_and(|s| {
                        s.segment == h.segment_number
                            && s.record_salt == h.record_salt()
                            && end <= s.bound
                    });
                    if !ok {
                        let all_zero = buf.iter().all(|&b| b == 0);
                        let v = format!(
                            "{}: write {}..{end} ({} bytes, zeros: {all_zero}) into segment {} (salt {:x}) under durable slot {:?}",
                            self.path.display(),
                            offset,
                            buf.len(),
                            h.segment_number,
                            h.record_salt(),
                            o.durable
                        );
                        o.violations.push(v);
                    }
                }
            }
        }
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if !self.is_bound {
            return self.inner.sync_data();
        }
        let snapshot = self.oracle.lock().cached.clone();
        let r = self.inner.sync_data();
        if r.is_ok() {
            self.oracle.lock().durable = TailBound::newest(&snapshot);
        }
        r
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn map(&self) -> io::Result<Bytes> {
        self.inner.map()
    }
    fn map_live(&self, len: u64) -> io::Result<Option<Bytes>> {
        self.inner.map_live(len)
    }
    fn written_data_end(&self, from: u64) -> io::Result<u64> {
        self.inner.written_data_end(from)
    }
    fn evict(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.evict(offset, len)
    }
    fn will_need(&self, ranges: &[(u64, u64)]) -> io::Result<bool> {
        self.inner.will_need(ranges)
    }
}

const MIB: u64 = 1 << 20;

fn append(log: &SegmentLog<WatchedFs>, i: u64, len: usize) -> seglog_segment::Result<u64> {
    let p = vec![1 + (i % 250) as u8; len];
    Ok(log
        .append(&EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: i,
            timestamp_unix_nanos: 0,
            payloads: &[p.as_slice()],
        })?
        .lsn)
}

fn watched() -> WatchedFs {
    let sim = SimFs::new();
    sim.set_zeroes_ahead(true);
    WatchedFs {
        inner: sim,
        oracle: Arc::default(),
        judging: Arc::new(AtomicBool::new(false)),
    }
}

fn open(fs: &WatchedFs, opts: SegmentOptions) -> SegmentLog<WatchedFs> {
    fs.judging.store(false, Ordering::SeqCst);
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts, &mut ()).unwrap();
    fs.judging.store(true, Ordering::SeqCst);
    log
}

fn report(fs: &WatchedFs) {
    let o = fs.oracle.lock();
    assert!(o.judged > 0, "nothing judged");
    assert!(
        o.violations.is_empty(),
        "{} of {} writes past a durable bound, first ones:\n{}",
        o.violations.len(),
        o.judged,
        o.violations
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `writers` threads of session `session` append `appends` records each (record `i` of
/// `size(i)` bytes) while another thread rolls `rolls` times, `pause_ms` apart.
fn appenders_and_rolls(
    log: &SegmentLog<WatchedFs>,
    session: u64,
    writers: u64,
    appends: u64,
    size: impl Fn(u64) -> usize + Sync,
    rolls: usize,
    pause_ms: u64,
) {
    let size = &size;
    std::thread::scope(|s| {
        for t in 0..writers {
            let log = log.clone();
            s.spawn(move || {
                for i in 0..appends {
                    append(&log, session * 100_000 + t * 1000 + i, size(i)).unwrap();
                }
            });
        }
        let log = log.clone();
        s.spawn(move || {
            for _ in 0..rolls {
                std::thread::sleep(std::time::Duration::from_millis(pause_ms));
                log.roll().unwrap();
            }
        });
    });
}

/// Appenders, rolls, close, reopen: every write into a segment lies under a durable slot
/// naming it.
#[test]
fn every_write_with_zeroing_and_rolls_lies_under_a_durable_slot() {
    let fs = watched();
    let opts = SegmentOptions {
        segment_size_bytes: 2 * MIB,
        max_record_size_bytes: 64 << 10,
        ..SegmentOptions::default()
    };
    for session in 0..3u64 {
        let log = open(&fs, opts.clone());
        appenders_and_rolls(
            &log,
            session,
            3,
            150,
            |i| 2000 + (i as usize * 97) % 9000,
            6,
            15,
        );
        log.close().unwrap();
    }
    report(&fs);
}

/// The log is opened on a directory holding nothing: the first segment.
#[test]
fn the_first_segments_zeros_lie_under_a_durable_slot() {
    let fs = watched();
    let log = open(&fs, SegmentOptions::default());
    // Let the zeroing thread run before any append.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for i in 0..20 {
        append(&log, i, 1000).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    log.close().unwrap();
    report(&fs);
}

/// As above, with slow syncs (rounds overlap, the zeroing thread's claims last) and a drop
/// without close between sessions.
#[test]
fn every_write_with_slow_syncs_and_drops_lies_under_a_durable_slot() {
    let fs = watched();
    fs.inner.set_sync_latency_cycle(&[
        std::time::Duration::from_micros(300),
        std::time::Duration::from_millis(2),
    ]);
    let opts = SegmentOptions {
        segment_size_bytes: MIB,
        max_record_size_bytes: 64 << 10,
        overlap_min_records: 2,
        ..SegmentOptions::default()
    };
    for session in 0..3u64 {
        let log = open(&fs, opts.clone());
        appenders_and_rolls(
            &log,
            session,
            4,
            80,
            |i| 1000 + (i as usize * 311) % 20000,
            5,
            10,
        );
        if session % 2 == 0 {
            drop(log);
        } else {
            log.close().unwrap();
        }
    }
    report(&fs);
}

/// A log that keeps no bound (no prepared segments): its zeroing thread writes no slot and
/// never poisons it; a closed log is not poisoned by a claim that ran during the close.
#[test]
fn no_bound_kept_no_slot_written_and_no_spurious_poison() {
    let fs = watched();
    let opts = SegmentOptions {
        prepare_next_segment: false,
        ..SegmentOptions::default()
    };
    let log = open(&fs, opts);
    for i in 0..200 {
        append(&log, i, 3000).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while log.stats().zeroed_bytes == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the zeroing thread never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(fs
        .inner
        .read_file(&Path::new("/log").join(TAIL_BOUND_FILE_NAME))
        .is_none());
    log.close().unwrap();
    assert!(log.poisoned().is_none());

    let fs = watched();
    for _ in 0..10 {
        let log = open(&fs, SegmentOptions::default());
        for i in 0..30 {
            append(&log, i, 30_000).unwrap();
        }
        log.close().unwrap();
        assert!(log.poisoned().is_none(), "{:?}", log.poisoned());
    }
    report(&fs);
}
