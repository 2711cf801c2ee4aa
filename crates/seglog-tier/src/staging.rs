//! The directory a restore is written into before it becomes the log directory.
//!
//! A restore writes many files, and a directory holding some of them can open as a log that
//! is not the one the bucket holds (review 19: everything but the last step opened with the
//! shipped active segment still active, and every later ship failed with `Conflict`). So the
//! files go into a *staging* directory beside the destination, `.<name>.seglog-restore`,
//! which is fsynced and renamed onto the destination (absent, or an empty directory) only
//! once it holds the whole log: a crash leaves the destination as it was, and the next
//! restore removes the staging directory it finds (only one holding the marker file written
//! first, so no directory of the user's is ever removed). This is how etcd's snapshot restore
//! and PostgreSQL's `pg_basebackup` avoid half-restored data directories, too.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The file that marks a directory as a restore's staging directory.
const MARKER: &str = "SEGLOG_RESTORE_STAGING";

/// A staging directory, created empty but for its marker.
#[derive(Debug)]
pub(crate) struct Staging {
    path: PathBuf,
    destination: PathBuf,
    published: bool,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The destination as an absolute path whose last component is a real name (the rename
/// replaces that entry of its parent; a symlink to a directory is followed).
fn resolve(destination: &Path) -> Result<PathBuf> {
    let resolved = match destination.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::path::absolute(destination).map_err(io("resolve", destination))?
        }
        Err(e) => return Err(io("resolve", destination)(e)),
    };
    if resolved.file_name().is_none() || resolved.parent().is_none() {
        return Err(io("resolve", destination)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a restore destination needs a parent directory and a name",
        )));
    }
    Ok(resolved)
}

/// Refuses a destination that is a mount point: the staging directory beside it would be on
/// another file system, and no rename crosses one.
#[cfg(unix)]
fn check_same_file_system(destination: &Path, parent: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(destination) else {
        return Ok(());
    };
    let parent_meta = std::fs::metadata(parent).map_err(io("stat", parent))?;
    if meta.dev() != parent_meta.dev() {
        return Err(Error::DestinationIsMountPoint(destination.to_path_buf()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_same_file_system(_destination: &Path, _parent: &Path) -> Result<()> {
    Ok(())
}

fn is_empty(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .map_err(io("read_dir", dir))?
        .next()
        .is_none())
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync_dir", dir))
}

impl Staging {
    /// Creates the staging directory for `destination` (whose parents it creates), removing
    /// one an interrupted restore left. Blocking.
    ///
    /// # Errors
    /// [`Error::DestinationNotEmpty`] when the staging path holds something not a restore's;
    /// [`Error::DestinationIsMountPoint`]; I/O errors.
    pub(crate) fn create(destination: &Path) -> Result<Self> {
        let destination = resolve(destination)?;
        let (Some(parent), Some(name)) = (destination.parent(), destination.file_name()) else {
            return Err(Error::DestinationNotEmpty(destination));
        };
        std::fs::create_dir_all(parent).map_err(io("create_dir", parent))?;
        check_same_file_system(&destination, parent)?;
        let path = parent.join(format!(".{}.seglog-restore", name.to_string_lossy()));
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("stat", &path)(e)),
            Ok(meta) if meta.is_dir() && path.join(MARKER).is_file() => {
                tracing::warn!(path = %path.display(), "removing an interrupted restore's staging directory");
                std::fs::remove_dir_all(&path).map_err(io("remove_dir_all", &path))?;
            }
            Ok(meta) if meta.is_dir() && is_empty(&path)? => {
                std::fs::remove_dir(&path).map_err(io("remove_dir", &path))?;
            }
            Ok(_) => return Err(Error::DestinationNotEmpty(path)),
        }
        std::fs::create_dir(&path).map_err(io("create_dir", &path))?;
        let staging = Self {
            path,
            destination,
            published: false,
        };
        let marker = staging.path.join(MARKER);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(io("create", &marker))?;
        Ok(staging)
    }

    /// Where the restore writes its files.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the staging directory the destination: fsyncs it, renames it onto the
    /// destination (absent or empty), fsyncs the parent, then removes the marker. Blocking.
    ///
    /// # Errors
    /// [`Error::DestinationNotEmpty`] when something was written into the destination
    /// meanwhile; I/O errors (the destination is then as it was, or whole).
    pub(crate) fn publish(mut self) -> Result<PathBuf> {
        sync_dir(&self.path)?;
        match std::fs::rename(&self.path, &self.destination) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists
                ) =>
            {
                return Err(Error::DestinationNotEmpty(self.destination.clone()))
            }
            Err(e) => return Err(io("rename", &self.destination)(e)),
        }
        self.published = true;
        if let Some(parent) = self.destination.parent() {
            sync_dir(parent)?;
        }
        // IMPORTANT: only after the rename is durable; a crash before leaves a complete log
        // with a marker in it, which every layer ignores.
        let marker = self.destination.join(MARKER);
        std::fs::remove_file(&marker).map_err(io("remove", &marker))?;
        sync_dir(&self.destination)?;
        Ok(self.destination.clone())
    }
}

impl Drop for Staging {
    /// A restore that failed removes what it staged (a crash leaves it for the next restore).
    fn drop(&mut self) {
        if !self.published {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a failed restore's staging directory");
            }
        }
    }
}
