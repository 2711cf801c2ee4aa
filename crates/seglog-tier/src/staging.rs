//! The marker that keeps a directory a restore is writing from being opened as a log.
//!
//! A restore writes many files, and a directory holding some of them could open as a log
//! that is not the one the bucket holds (review 19: everything but the last step opened with
//! the shipped active segment still active, and every later ship failed with `Conflict`). So
//! a restore first puts `RESTORE_IN_PROGRESS` in the directory (durably, locked with `flock`
//! for as long as it runs), then writes the log, then removes the marker: the commit point.
//! Every open, verification and tool refuses a directory holding the marker (the segment
//! layer's `list_segment_files`). A restore that fails removes what it wrote, the marker
//! last; one a crash interrupted leaves the marker, unlocked, and the next restore into the
//! same directory clears it. This is PostgreSQL's way with `backup_label`: a file in the data
//! directory says it is not yet a database.
//!
//! Writing in place (not beside, then renaming) keeps the directory the operator made: its
//! permissions, owner, ACLs, a mount or bind mount on it, a process's working directory in it
//! (review 21).

use crate::error::{Error, Result};
use seglog_segment::format::RESTORE_MARKER_FILE_NAME;
use std::path::{Path, PathBuf};

/// A directory being restored into, its marker held.
#[derive(Debug)]
pub(crate) struct Restoring {
    dir: PathBuf,
    marker: Option<std::fs::File>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync_dir", dir))
}

/// Creates `dir` and its missing ancestors, each made durable in its parent (a power cut
/// after the restore returned must not take a directory, and the log in it, away).
fn create_dir_durably(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    loop {
        match std::fs::symlink_metadata(at) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(at.to_path_buf());
                match at.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                    _ => break,
                }
            }
            Err(e) => return Err(io("stat", at)(e)),
        }
    }
    for created in missing.iter().rev() {
        match std::fs::create_dir(created) {
            Ok(()) => {}
            // Made meanwhile by someone else: theirs to sync, but syncing again is harmless.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("create_dir", created)(e)),
        }
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent)?;
    }
    Ok(())
}

fn entries(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    std::fs::read_dir(dir)
        .map_err(io("read_dir", dir))?
        .map(|e| e.map(|e| e.file_name()).map_err(io("read_dir", dir)))
        .collect()
}

/// Removes every entry of `dir` but the marker (a restore's files: regular files only; a
/// directory in it is not a restore's, and is refused).
fn clear_all_but_marker(dir: &Path) -> Result<()> {
    for name in entries(dir)? {
        if name == RESTORE_MARKER_FILE_NAME {
            continue;
        }
        let path = dir.join(&name);
        std::fs::remove_file(&path).map_err(io("remove", &path))?;
    }
    sync_dir(dir)
}

/// Whether `file` (open) is still the file at `path` (not unlinked or replaced meanwhile).
#[cfg(unix)]
fn is_still_at(file: &std::fs::File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata().map_err(io("stat", path))?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("stat", path)(e)),
    }
}

#[cfg(not(unix))]
fn is_still_at(_file: &std::fs::File, path: &Path) -> Result<bool> {
    Ok(path.exists())
}

impl Restoring {
    /// Takes `dir` for a restore: creates it when absent (durably), or accepts it empty, or
    /// holding an interrupted restore's leftovers (its marker, which nobody holds: they are
    /// removed); then the marker is created, locked, and made durable. Blocking.
    ///
    /// # Errors
    /// [`Error::DestinationNotEmpty`] for a directory holding anything but a restore's
    /// files; [`Error::RestoreRunning`] when another restore holds the marker; I/O errors.
    pub(crate) fn begin(dir: &Path) -> Result<Self> {
        create_dir_durably(dir)?;
        let marker_path = dir.join(RESTORE_MARKER_FILE_NAME);
        // Bounded: a retry only follows a marker removed under us (a restore finishing).
        for _ in 0..8 {
            let listed = entries(dir)?;
            let had_marker = listed.iter().any(|n| n == RESTORE_MARKER_FILE_NAME);
            if !had_marker && !listed.is_empty() {
                return Err(Error::DestinationNotEmpty(dir.to_path_buf()));
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&marker_path)
                .map_err(io("create", &marker_path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::RestoreRunning(dir.to_path_buf()))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("flock", &marker_path)(e)),
            }
            // IMPORTANT: a restore that finished meanwhile unlinked the marker we opened;
            // locking that file proves nothing, and its directory is a whole log now.
            if !is_still_at(&file, &marker_path)? {
                continue;
            }
            let restoring = Restoring {
                dir: dir.to_path_buf(),
                marker: Some(file),
            };
            if had_marker {
                tracing::warn!(dir = %dir.display(), "clearing what an interrupted restore left");
            }
            // Whatever is here besides the marker is an interrupted restore's (it is ours to
            // remove now that we hold the marker), or appeared since the listing: a log
            // another process is writing there without a marker.
            let now = entries(dir)?;
            if !had_marker && now.iter().any(|n| n != RESTORE_MARKER_FILE_NAME) {
                return Err(Error::DestinationNotEmpty(dir.to_path_buf()));
            }
            clear_all_but_marker(dir)?;
            // IMPORTANT: the marker is durable before any file of the log is written.
            if let Some(f) = &restoring.marker {
                f.sync_all().map_err(io("sync", &marker_path))?;
            }
            sync_dir(dir)?;
            return Ok(restoring);
        }
        Err(Error::RestoreRunning(dir.to_path_buf()))
    }

    /// The commit point: the restore's files are durable (the caller fdatasynced each); the
    /// directory is fsynced, the marker removed, the directory fsynced again. Blocking.
    ///
    /// # Errors
    /// I/O errors (the marker may then still be there: the directory is refused until a
    /// restore runs again).
    pub(crate) fn commit(mut self) -> Result<()> {
        sync_dir(&self.dir)?;
        let marker_path = self.dir.join(RESTORE_MARKER_FILE_NAME);
        std::fs::remove_file(&marker_path).map_err(io("remove", &marker_path))?;
        // From here on the directory is a log: Drop must not clear it.
        self.marker.take();
        sync_dir(&self.dir)
    }
}

impl Drop for Restoring {
    /// A restore that failed removes what it wrote, the marker last, so the directory is as
    /// it was (empty). A crash leaves it for the next restore.
    fn drop(&mut self) {
        if self.marker.is_none() {
            return;
        }
        let cleared = clear_all_but_marker(&self.dir).and_then(|()| {
            let marker_path = self.dir.join(RESTORE_MARKER_FILE_NAME);
            std::fs::remove_file(&marker_path).map_err(io("remove", &marker_path))?;
            sync_dir(&self.dir)
        });
        if let Err(e) = cleared {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot clear a failed restore's files");
        }
    }
}
