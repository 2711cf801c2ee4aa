//! Refusing to change a log directory that is no longer at the path the log opened.
//!
//! A log names its files by path. Renamed or removed while the log is open, its directory's
//! old path names nothing, or another log opened there since; a roll, a prepared segment, a
//! checkpoint or a compaction made by path would then land in that other log, or remove its
//! files. So the log records which directory it locked and, before each change it makes to
//! the directory by path, checks that the path still names it, as SQLite checks that its
//! database file has not moved before each write transaction (`SQLITE_READONLY_DBMOVED`).
//! A move between the check and the change is not caught, so a check sits right before each
//! step that would do harm in another log's directory: a change made of several steps (the
//! compaction's manifest: create, sync, rename) is checked again before its commit step.
//! Writes through handles already open (appends to the active segment) need no check: they
//! follow the file wherever it went.

use crate::io::{FileIdentity, FileSystem};
use crate::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};

/// The directory a log locked, as it was at open.
#[derive(Debug, Clone)]
pub struct DirGuard {
    dir: PathBuf,
    identity: FileIdentity,
}

impl DirGuard {
    /// Records which directory `dir` names now (call it under the directory's lock).
    ///
    /// # Errors
    /// An I/O error when `dir` cannot be examined.
    pub fn capture<F: FileSystem + ?Sized>(fs: &F, dir: &Path) -> Result<Self> {
        let identity = fs.identity(dir).map_err(|e| Error::io("stat", dir, e))?;
        Ok(DirGuard {
            dir: dir.to_path_buf(),
            identity,
        })
    }

    /// The directory's path.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory's identity at open.
    pub(crate) fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// True when both recorded the same directory at their opens (by its identity, not its
    /// path: a path may name another directory since, and two paths the same one).
    pub fn same_directory(&self, other: &DirGuard) -> bool {
        self.identity == other.identity
    }

    /// Ok when the path still names the directory recorded at open.
    ///
    /// # Errors
    /// [`Error::DirectoryMoved`] when the path names another directory or nothing; an I/O
    /// error when it cannot be examined.
    pub fn check<F: FileSystem + ?Sized>(&self, fs: &F) -> Result<()> {
        match fs.identity(&self.dir) {
            Ok(now) if now == self.identity => Ok(()),
            Ok(_) => Err(self.moved()),
            // A component of the path removed, or replaced by a file.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Err(self.moved())
            }
            Err(e) => Err(Error::io("stat", &self.dir, e)),
        }
    }

    /// The error of a change refused because the path names another directory (or file).
    pub(crate) fn moved(&self) -> Error {
        tracing::error!(dir = %self.dir.display(), "the log directory was moved or removed while the log was open; changes to it are refused");
        Error::DirectoryMoved {
            dir: self.dir.clone(),
        }
    }
}
