//! Files under segment names that hold no record, which a writer's open removes without
//! loss (format.md §4, step 1), judged as the open judges them by the tools that only read
//! a log directory: [`crate::verify_dir`], the repair's plan, and the CLI's readers.

use crate::Result;
use seglog_segment::inspect::{leftover, read_file, Leftover};
use seglog_segment::io::FileSystem;
use std::path::PathBuf;

/// What the open makes of `files[i]` (a directory listing, by first LSN, as
/// `seglog_segment::inspect::list_segment_files` gives it) whose written bytes are `bytes`:
/// a [`Leftover`] it removes, or `None` (a segment, or damage). `greatest_lsn` is the
/// greatest LSN of the local segment files before it, commit markers included (the open
/// knows nothing of offloaded segments).
///
/// As the open: it removes one cut creation only, after which nothing follows a file of
/// zeros right before it. And as the open, a last segment whose whole contents a disk lost
/// reads as a cut creation: a checkpoint of its name is no proof of records (LSNs are given
/// out again after a salvage or a torn tail's cut, and the checkpoints of the segments those
/// removed stay until the next open's index rebuild removes them).
///
/// # Errors
/// I/O errors.
pub fn judge_leftover<F: FileSystem>(
    fs: &F,
    files: &[(u64, PathBuf)],
    i: usize,
    bytes: &[u8],
    greatest_lsn: u64,
) -> Result<Option<Leftover>> {
    if i >= files.len() {
        return Ok(None);
    }
    let next = files.get(i + 1);
    let Some(what) = leftover(bytes, greatest_lsn, next.map(|(lsn, _)| *lsn)) else {
        return Ok(None);
    };
    if let (Leftover::Zeros, Some((_, last))) = (what, next) {
        if i + 2 == files.len() && leftover(&read_file(fs, last)?, 0, None).is_some() {
            return Ok(None);
        }
    }
    Ok(Some(what))
}
