//! Files under segment names that hold no record, which a writer's open removes without
//! loss (format.md §4, step 1), judged as the open judges them by the tools that only read
//! a log directory: [`crate::verify_dir`], the repair's plan, and the CLI's readers.

use crate::Result;
use seglog_segment::inspect::{
    bytes_after_intact, leftover, read_file, successor_fits, Leftover, SegmentAnalysis,
};
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

/// Whether the open takes damage in `files[i]` (`analysis`: its written bytes analysed) for
/// a torn tail it cuts: in the last file; and in the one before a last file that is a cut
/// creation (which the open removes first, making this one the last), unless that file's
/// name is where this segment's records could end
/// ([`seglog_segment::inspect::successor_fits`]): the roll that created it began after this
/// segment was sealed, whole and synced, so its damage is damage to a sealed segment
/// (format.md §4, step 3; review 132). `bytes`: the written bytes `analysis` describes.
/// Reads the last file (and the log's tail bound) only when `analysis` shows damage.
///
/// # Errors
/// I/O errors.
pub fn tail_may_be_torn<F: FileSystem>(
    fs: &F,
    files: &[(u64, PathBuf)],
    i: usize,
    bytes: &[u8],
    analysis: &SegmentAnalysis,
) -> Result<bool> {
    if i + 1 == files.len() {
        return Ok(true);
    }
    let (Some(_), Some((next_first_lsn, last)), true) =
        (&analysis.damage, files.get(i + 1), i + 2 == files.len())
    else {
        return Ok(false);
    };
    if leftover(&read_file(fs, last)?, 0, None) != Some(Leftover::CutCreation) {
        return Ok(false);
    }
    let dir = last.parent().unwrap_or_else(|| std::path::Path::new("."));
    let bytes_after = bytes_after_intact(fs, dir, bytes, analysis);
    Ok(!successor_fits(
        *next_first_lsn,
        analysis.last_lsn_with_markers,
        bytes_after,
    ))
}
