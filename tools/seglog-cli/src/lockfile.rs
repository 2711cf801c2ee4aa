//! The log directory's `LOCK` file as the CLI sees it. A seglog writer holds an exclusive
//! `flock` on it for as long as it has the log open (`seglog_segment::io::StdFs::lock_dir`):
//! `demo` takes that lock before it clears a directory; `tail` asks whether a writer holds it.

use anyhow::{bail, Context, Result};
use seglog_segment::format::LOCK_FILE_NAME;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// The exclusive lock on a log directory, held until dropped.
pub struct HeldLock {
    _file: File,
}

/// Takes the exclusive lock on `dir`, as a writer would, creating `LOCK` if needed.
///
/// # Errors
/// When another process holds it (a writer has the log open), and I/O errors.
pub fn lock_exclusive(dir: &Path) -> Result<HeldLock> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(HeldLock { _file: file }),
        Err(TryLockError::WouldBlock) => bail!(
            "{} is open in another process (its LOCK is held)",
            dir.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}
