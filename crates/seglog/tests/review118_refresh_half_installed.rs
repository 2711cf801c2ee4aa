//! Review 118: `Log::refresh` checked the new view (`check_view`, which stats the log's path)
//! before it swapped its index, and `install_view` checked it again — a second stat, after
//! the new index was live. A directory moved between the two stats made the second fail:
//! `refresh` returned the error with the new index installed over the old segment table (the
//! promise "on an error the old view stays in place" broken: readers found the new events
//! and could not read them).
//!
//! Fixed: the check hands back a checked view, which installs without checking again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::opts;
use seglog::io::sim::{SimDirLock, SimFile, SimFs};
use seglog::io::FileSystem;
use seglog::Log;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `SimFs` counting the stats of the log directory; the `fail_at`-th (when set) says the
/// directory is gone, as if it had been moved away just then.
#[derive(Debug, Clone)]
struct StatFs {
    inner: SimFs,
    dir_stats: Arc<AtomicU64>,
    fail_at: Arc<AtomicU64>,
}

impl FileSystem for StatFs {
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
        if path == Path::new("/log") {
            let n = self.dir_stats.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.fail_at.load(Ordering::SeqCst) {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
        }
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

#[test]
fn a_refresh_failing_at_its_last_check_leaves_the_old_view_whole() {
    let sim = SimFs::new();
    let writer = Log::open_with_fs(sim.clone(), "/log", opts()).unwrap();
    writer.append_blocking("run-1", "acme", b"first").unwrap();
    writer.roll_blocking().unwrap();
    let fs = StatFs {
        inner: sim.clone(),
        dir_stats: Arc::new(AtomicU64::new(0)),
        fail_at: Arc::new(AtomicU64::new(0)),
    };
    let reader = Log::open_read_only_with_fs(fs.clone(), "/log").unwrap();

    // How many times one refresh stats the directory.
    writer.append_blocking("run-1", "acme", b"second").unwrap();
    writer.roll_blocking().unwrap();
    let before = fs.dir_stats.load(Ordering::SeqCst);
    reader.refresh().unwrap();
    let stats_per_refresh = fs.dir_stats.load(Ordering::SeqCst) - before;
    assert_eq!(reader.read("run-1").unwrap().len(), 2);

    // The next refresh's last stat says the directory moved.
    writer.append_blocking("run-1", "acme", b"third").unwrap();
    writer.roll_blocking().unwrap();
    let now = fs.dir_stats.load(Ordering::SeqCst);
    fs.fail_at.store(now + stats_per_refresh, Ordering::SeqCst);
    assert!(
        reader.refresh().is_err(),
        "the failing stat was not reached"
    );
    let served = reader.read("run-1");
    assert!(
        matches!(&served, Ok(events) if events.len() == 2),
        "after a failed refresh the reader serves a mix of views: {:?}",
        served.map(|e| e.len())
    );
}
