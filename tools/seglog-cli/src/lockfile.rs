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

/// Whether a writer has the log in `dir` open: a non-blocking *shared* lock on `LOCK` fails
/// exactly while a writer holds its exclusive one. Nothing is created or written.
///
/// When no writer holds it, the shared lock is taken and dropped at once; a writer opening
/// the log in that instant (microseconds) would find it locked. `seglog tail` calls this only
/// when records wait for a proof that they are durable, so at most once after a writer
/// closes the log. A missing `LOCK` means no writer has it open.
///
/// # Errors
/// I/O errors other than a missing `LOCK`, and file systems without `flock`.
pub fn writer_holds_lock(dir: &Path) -> Result<bool> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false), // released when `file` is dropped, now
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot tell whether {} is held", path.display()))
        }
    }
}
