//! The marker that keeps a directory a restore is writing from being opened as a log.
//!
//! A restore writes many files, and a directory holding some of them could open as a log
//! that is not the one the bucket holds (review 19: everything but the last step opened with
//! the shipped active segment still active, and every later ship failed with `Conflict`). So
//! a restore first takes the directory's `LOCK` (the engine's own directory lock, so no log
//! is open there and no other restore runs there while it holds it), puts
//! `RESTORE_IN_PROGRESS` in the directory (durably), writes the log, then removes the marker:
//! the commit point. Every open, verification and tool refuses a directory holding the
//! marker (the segment layer's `list_segment_files`). A restore that fails removes what it
//! wrote, the marker last; one a crash interrupted leaves the marker, and the next restore
//! into the same directory clears it. (A restore runs as a task of its own, so dropping its
//! future does not stop it halfway: review 24.) This is PostgreSQL's way with `backup_label`: a file in the data directory says
//! it is not yet a database.
//!
//! Writing in place (not beside, then renaming) keeps the directory the operator made: its
//! permissions, owner, ACLs, a mount or bind mount on it, a process's working directory in it
//! (review 21).

use crate::error::{Error, Result};
use seglog_segment::format::{LOCK_FILE_NAME, RESTORE_MARKER_FILE_NAME};
use std::path::{Path, PathBuf};

/// A directory being restored into: its `LOCK` held, its marker in place.
#[derive(Debug)]
pub(crate) struct Restoring {
    dir: PathBuf,
    /// The directory lock (`LOCK`, `flock`), held until the restore commits or gives up.
    lock: Option<DirLock>,
}

/// A held `flock` on `LOCK`, released explicitly (`LOCK_UN`) when dropped, as the engine's
/// own directory lock is: a child process forked meanwhile shares the open file description,
/// and closing our descriptor alone would leave the lock held by its copy (review 24).
/// `LOCK` itself is never removed: a lock is on the file, and a process that opened the name
/// before a removal would lock a file nobody else can see (two holders; review 24).
#[derive(Debug)]
struct DirLock(std::fs::File);

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

pub(crate) fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync_dir", dir))
}

/// Entries of a directory that are no data of anyone's: `LOCK` (a restore leaves it) and a
/// file system's `lost+found` directory (the root of a fresh volume holds one).
fn is_not_data(dir: &Path, name: &std::ffi::OsStr) -> bool {
    name == LOCK_FILE_NAME || (name == "lost+found" && dir.join(name).is_dir())
}

/// Whether `dir` holds a log to continue: data (anything but `LOCK` and `lost+found`) and
/// no marker of a restore (an interrupted one is restored again, which clears it). Absent:
/// `false`.
///
/// # Errors
/// I/O errors listing it.
pub fn holds_a_log(dir: &Path) -> Result<bool> {
    let names = match std::fs::read_dir(dir) {
        Ok(_) => entries(dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("read_dir", dir)(e)),
    };
    Ok(names.iter().any(|n| !is_not_data(dir, n))
        && !names.iter().any(|n| n == RESTORE_MARKER_FILE_NAME))
}

fn entries(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    std::fs::read_dir(dir)
        .map_err(io("read_dir", dir))?
        .map(|e| e.map(|e| e.file_name()).map_err(io("read_dir", dir)))
        .collect()
}

/// Removes every entry of `dir` but the marker, `LOCK` and `lost+found` (a restore's files:
/// regular files only; another directory in it is not a restore's, and is refused).
fn clear_all_but_marker(dir: &Path) -> Result<()> {
    for name in entries(dir)? {
        if name == RESTORE_MARKER_FILE_NAME || is_not_data(dir, &name) {
            continue;
        }
        let path = dir.join(&name);
        std::fs::remove_file(&path).map_err(io("remove", &path))?;
    }
    sync_dir(dir)
}

impl Restoring {
    /// Takes `dir` for a restore: creates it when absent (durably), takes its `LOCK`, and
    /// accepts it empty (but for `LOCK`), or holding an interrupted restore's leftovers (its
    /// marker: they are removed); then the marker is created and made durable. Blocking.
    ///
    /// # Errors
    /// [`Error::DestinationNotEmpty`] for a directory holding anything but a restore's
    /// files (nothing in it is touched); [`Error::RestoreRunning`] when another restore,
    /// or an open log, holds its `LOCK`; I/O errors.
    pub(crate) fn begin(dir: &Path) -> Result<Self> {
        // Every directory created on the way is durable in its parent: a power cut after the
        // restore returned must not take the directory, and the log in it, away.
        seglog_segment::create_dir_durably(&seglog_segment::io::StdFs, dir)
            .map_err(|e| Error::Log(e.into()))?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("create", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::RestoreRunning(dir.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("flock", &lock_path)(e)),
        }
        // With the lock held, nothing else writes here: what the listing shows stays.
        let listed = entries(dir)?;
        let marked = listed.iter().any(|n| n == RESTORE_MARKER_FILE_NAME);
        let others = listed
            .iter()
            .any(|n| n != RESTORE_MARKER_FILE_NAME && !is_not_data(dir, n));
        if others && !marked {
            // IMPORTANT: someone's files (a log): refused, nothing of theirs touched.
            return Err(Error::DestinationNotEmpty(dir.to_path_buf()));
        }
        if marked {
            tracing::warn!(dir = %dir.display(), "clearing what an interrupted restore left");
            clear_all_but_marker(dir)?;
        }
        let marker_path = dir.join(RESTORE_MARKER_FILE_NAME);
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&marker_path)
            .and_then(|f| f.sync_all())
            .map_err(io("create", &marker_path))?;
        // IMPORTANT: the marker is durable before any file of the log is written.
        sync_dir(dir)?;
        Ok(Restoring {
            dir: dir.to_path_buf(),
            lock: Some(DirLock(lock)),
        })
    }

    /// The commit point: the restore's files are durable (the caller fdatasynced each); the
    /// directory is fsynced, the marker removed, the directory fsynced again, and the lock
    /// released (for the log's own open). Blocking.
    ///
    /// # Errors
    /// I/O errors (the marker may then still be there: the directory is refused until a
    /// restore runs again).
    pub(crate) fn commit(mut self) -> Result<()> {
        sync_dir(&self.dir)?;
        let marker_path = self.dir.join(RESTORE_MARKER_FILE_NAME);
        std::fs::remove_file(&marker_path).map_err(io("remove", &marker_path))?;
        sync_dir(&self.dir)?;
        self.lock.take();
        Ok(())
    }

    /// A restore that failed (every write it started has ended): removes what it wrote,
    /// then the marker, so the directory is as it was (empty, but for `LOCK`, which stays:
    /// see [`DirLock`]). Blocking; best effort (what stays is marked, and the next restore
    /// clears it).
    pub(crate) fn abandon(mut self) {
        let cleared = clear_all_but_marker(&self.dir).and_then(|()| {
            let marker_path = self.dir.join(RESTORE_MARKER_FILE_NAME);
            std::fs::remove_file(&marker_path).map_err(io("remove", &marker_path))?;
            sync_dir(&self.dir)
        });
        if let Err(e) = cleared {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot clear a failed restore's files");
        }
        self.lock.take();
    }
}
