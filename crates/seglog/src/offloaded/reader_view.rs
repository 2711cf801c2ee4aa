//! A read-only view of a log with offloaded segments: the segment files of one moment
//! (the segment layer's snapshot) and the offload stubs of that same moment, so that every
//! segment is in the view once, as a file or as a stub.
//!
//! A writer may offload (stub written, then the file removed) or rehydrate (file written
//! back, then the stub removed) while the reader looks. At every moment each segment has its
//! file or its stub (or both), but the snapshot and a listing of the stubs are taken at
//! different moments, so alone they could miss a segment that moved in between. What holds:
//! - The stubs are listed before the snapshot and again after it, and the view is accepted
//!   only when both listings agree: a segment that moved between them changed its stub.
//! - After the second listing, the directory must name no segment file before the view's
//!   last one that the view lacks and no stub stands for: a segment that was offloaded and
//!   brought back again between the listings (the same stubs before and after) shows there.
//! - Anything that failed while the stubs changed (a stub or a checkpoint gone under the
//!   reader) is the directory moving, not damage: the attempt is made again, a bounded number
//!   of times, then [`seglog_segment::Error::DirectoryChanging`].
//! - Nothing is written: a stub whose segment file is also there (an offload a crash
//!   interrupted) is read as the local segment, and left for the writer's open to finish.

use super::{stub, OffloadedRecovery, OffloadedSegment};
use crate::{Error, Result};
use seglog_index::{ExecutionIndex, IndexRebuilder, RebuildStats};
use seglog_segment::io::FileSystem;
use seglog_segment::{RecoveryVisitor, SegmentInfo};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Attempts before a directory that keeps changing is reported.
const ATTEMPTS: u32 = 20;

/// A view taken, with the index of its records and its offloaded segments.
pub(crate) struct ReaderView<V> {
    pub view: V,
    pub index: ExecutionIndex,
    pub offloaded: Vec<OffloadedSegment>,
    pub rebuild: RebuildStats,
}

/// Takes a view with `take` (the segment layer's read-only open or reload, feeding the
/// visitor every record it serves; `local` lists the view's segments and the files without
/// a record it read past) together with the stubs of the same moment.
///
/// # Errors
/// [`seglog_segment::Error::DirectoryChanging`] after [`ATTEMPTS`] views spoiled by a writer;
/// the errors of `take`; corruption of a stub or of an offloaded segment's checkpoint.
pub(crate) fn take<F: FileSystem, V>(
    fs: &F,
    dir: &Path,
    mut take: impl FnMut(&mut dyn RecoveryVisitor) -> seglog_segment::Result<V>,
    local: impl Fn(&V) -> (Vec<SegmentInfo>, Vec<PathBuf>),
) -> Result<ReaderView<V>> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Let the writer finish what it is moving.
            std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt) + 1));
        }
        let Some(before) = list_stubs(fs, dir)? else {
            continue;
        };
        let mut index = ExecutionIndex::new();
        let mut rebuilder = IndexRebuilder::new(fs, dir, &mut index, true);
        let mut visitor = OffloadedRecovery::new(&mut rebuilder, dir, before.clone());
        let taken = take(&mut visitor);
        let local = taken.as_ref().ok().map(&local);
        let finished = visitor.finish(local.as_ref().map(|(infos, _)| infos.as_slice()));
        let rebuild = rebuilder.stats();
        let Some(after) = list_stubs(fs, dir)? else {
            continue;
        };
        if after != before {
            continue;
        }
        if let Some((infos, read_past)) = &local {
            if !names_covered(fs, dir, infos, read_past, &after)? {
                continue;
            }
        }
        // The stubs held still the whole time: what failed, failed for a reason of its own.
        let offloaded = finished?.map(|(applied, _interrupted)| applied);
        let view = taken?;
        return Ok(ReaderView {
            view,
            index,
            offloaded: offloaded.unwrap_or_default(),
            rebuild,
        });
    }
    Err(Error::Segment(seglog_segment::Error::DirectoryChanging {
        dir: dir.to_path_buf(),
    }))
}

/// The directory's stubs, in log order; `None` when one vanished while they were read (a
/// rehydration removed it).
fn list_stubs<F: FileSystem>(fs: &F, dir: &Path) -> Result<Option<Vec<OffloadedSegment>>> {
    match stub::list(fs, dir) {
        Ok((stubs, _temps)) => Ok(Some(stubs)),
        Err(Error::Segment(seglog_segment::Error::Io { source, .. }))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// True when every segment file the directory names now, before the view's last segment,
/// is in the view, stands for a stub of it, or is a file without a record the view read
/// past (`read_past`).
fn names_covered<F: FileSystem>(
    fs: &F,
    dir: &Path,
    local: &[SegmentInfo],
    read_past: &[PathBuf],
    stubs: &[OffloadedSegment],
) -> Result<bool> {
    let Some(last) = local.iter().map(|s| s.first_lsn).max() else {
        return Ok(true);
    };
    let known: BTreeSet<u64> = local
        .iter()
        .map(|s| s.first_lsn)
        .chain(stubs.iter().map(|s| s.first_lsn))
        .collect();
    let now = seglog_segment::inspect::list_segment_files(fs, dir)?;
    Ok(now.iter().all(|(first_lsn, path)| {
        *first_lsn > last || known.contains(first_lsn) || read_past.contains(path)
    }))
}
