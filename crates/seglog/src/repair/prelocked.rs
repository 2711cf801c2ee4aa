//! A file system whose directory lock for one directory is already held by the caller.
//!
//! `repair` must plan, ask and cut under one lock, so that no writer can open the log
//! between the plan the user confirmed and the cut. But an open takes the lock itself, and
//! `flock` locks conflict between two open files of one process. So repair takes the lock,
//! and opens the log through this wrapper, whose `lock_dir` for that directory hands back
//! nothing: the lock stays the caller's, held until repair returns.

use seglog_segment::io::FileSystem;
use std::io;
use std::path::{Path, PathBuf};

/// `F`, with the lock of `locked` (an absolute path) already held by whoever made this.
#[derive(Clone)]
pub(super) struct PreLocked<F> {
    pub(super) inner: F,
    pub(super) locked: PathBuf,
}

impl<F: FileSystem + Clone> FileSystem for PreLocked<F> {
    type File = F::File;
    /// `None` for the directory whose lock is held already.
    type DirLock = Option<F::DirLock>;

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
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock> {
        if self.inner.absolute(dir)? == self.locked {
            Ok(None)
        } else {
            self.inner.lock_dir(dir).map(Some)
        }
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
