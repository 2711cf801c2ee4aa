//! A file system whose handles cannot tell which file they are open on
//! (`SegmentFile::identity` fails: `Unsupported`) still opens logs and rolls them, into
//! prepared segments too. The identity only serves the checks against a directory moved
//! under an open log (a second handle that may be another file is dropped; a prepared file
//! is renamed unchecked, as before those checks).
//! - Review 126: a failed identity of either handle of the active segment was a hard
//!   error, so such a file system could no longer open a log.
//! - Review 127: the prepared file's failed identity poisoned the log at its first roll
//!   into it (review 126's wrapper did not forward `zeroes_ahead`, so its log never
//!   prepared a segment).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::tenant_batch;
use seglog_segment::io::sim::{SimFile, SimFs};
use seglog_segment::io::{FileIdentity, FileSystem, SegmentFile};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone)]
struct NoFstat(SimFs);

struct File(SimFile);

impl FileSystem for NoFstat {
    type File = File;
    type DirLock = <SimFs as FileSystem>::DirLock;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<File> {
        self.0.create_new(path).map(File)
    }
    fn open(&self, path: &Path) -> io::Result<File> {
        self.0.open(path).map(File)
    }
    fn open_read_only(&self, path: &Path) -> io::Result<File> {
        self.0.open_read_only(path).map(File)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename_no_replace(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock> {
        self.0.lock_dir(dir)
    }
    fn identity(&self, path: &Path) -> io::Result<FileIdentity> {
        self.0.identity(path)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.0.link_count(path)
    }
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        self.0.absolute(path)
    }
    /// Forwarded: a log on SimFs prepares segments only when the simulator zeroes ahead.
    fn zeroes_ahead(&self) -> bool {
        self.0.zeroes_ahead()
    }
}

impl SegmentFile for File {
    /// The one difference: a handle cannot tell which file it is open on.
    fn identity(&self) -> io::Result<FileIdentity> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn write_all_vectored_at(&self, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        self.0.write_all_vectored_at(parts, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.0.allocate(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn map(&self) -> io::Result<Bytes> {
        self.0.map()
    }
    fn map_live(&self, len: u64) -> io::Result<Option<Bytes>> {
        self.0.map_live(len)
    }
    fn written_data_end(&self, from: u64) -> io::Result<u64> {
        self.0.written_data_end(from)
    }
    fn evict(&self, offset: u64, len: u64) -> io::Result<()> {
        self.0.evict(offset, len)
    }
}

#[test]
fn a_file_system_whose_handles_cannot_fstat_still_opens_and_rolls_a_log() {
    let fs = NoFstat(SimFs::new());
    let opts = SegmentOptions {
        segment_size_bytes: 256 << 10,
        max_record_size_bytes: 64 << 10,
        ..SegmentOptions::default()
    };
    // A first open creates the first segment (a roll), a second finds it (open).
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts.clone(), &mut ())
        .expect("a fresh log no longer opens");
    let p = vec![vec![7u8; 16 << 10]];
    for _ in 0..40 {
        log.append(&tenant_batch(b"t", &p))
            .expect("an append through a roll failed");
    }
    log.close().unwrap();
    drop(log);
    let (log, _) =
        SegmentLog::open(fs, "/log", opts, &mut ()).expect("an existing log no longer opens");
    assert_eq!(common::contents(&log).len(), 40);
}

#[test]
fn a_file_system_whose_handles_cannot_fstat_still_rolls_into_its_prepared_segment() {
    let sim = SimFs::new();
    sim.set_zeroes_ahead(true);
    let fs = NoFstat(sim);
    let opts = SegmentOptions {
        segment_size_bytes: 256 << 10,
        max_record_size_bytes: 64 << 10,
        ..SegmentOptions::default()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts.clone(), &mut ()).unwrap();
    let p = vec![vec![7u8; 16 << 10]];
    let mut acked = 0;
    for i in 0..200 {
        // Time for the zeroing thread to prepare the next segment.
        std::thread::sleep(std::time::Duration::from_millis(2));
        if let Err(e) = log.append(&tenant_batch(b"t", &p)) {
            panic!(
                "append {i} failed ({acked} acknowledged), nothing moved: {e}; {:?}",
                log.stats()
            );
        }
        acked += 1;
    }
    assert!(
        log.stats().prepared_rolls > 0,
        "no roll took a prepared file: {:?}",
        log.stats()
    );
    log.close().unwrap();
    drop(log);
    let (log, _) = SegmentLog::open(fs, "/log", opts, &mut ()).unwrap();
    assert_eq!(common::contents(&log).len(), acked);
}
