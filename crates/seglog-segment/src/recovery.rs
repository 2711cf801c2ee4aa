//! Opening a log directory: find the segments, check them, cut a torn tail.
//!
//! The rules are docs/format.md §4. In short: sealed segments must be whole; only the last
//! segment's tail may be cut, and only when no later durable record proves the damaged bytes
//! were acknowledged. After recovery the surviving tail is fsynced before anything new is
//! written, so nothing a reader saw at open can later vanish.

use crate::format::{
    decode_record, RecordScan, SegmentHeader, TailBound, COMMIT_MARKER_LEN, SALVAGE_TEMP_FILE_NAME,
    SEGMENT_HEADER_LEN,
};
use crate::io::{FileSystem, SegmentFile};
use crate::scan::{
    first_unproven_offset, later_durable_record, scan_records, PrefixClaim, RecoveryVisitor,
};
use crate::segment::{SegmentEntry, SegmentInfo};
use crate::{Error, RecoveryMode, Result, SegmentOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes removed from the end of a segment's data: cut off, or (a torn tail in a file that
/// holds its reserved space) overwritten with zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    /// Segment number.
    pub segment: u64,
    /// Where the data now ends: the file was cut there, or zeroed from there.
    pub offset: u64,
    /// Bytes that were after the cut (excluding zeroed preallocated space).
    pub bytes_dropped: u64,
    /// What was found at the cut.
    pub reason: String,
}

/// What recovery did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Segments in the log after recovery.
    pub segments: usize,
    /// Segments that were read record by record.
    pub segments_scanned: usize,
    /// Records read.
    pub records_scanned: u64,
    /// Bytes read.
    pub bytes_scanned: u64,
    /// Bytes after the end of data read to check that they hold nothing (zeros, or a torn
    /// write): up to where written bytes end, or to the tail bound (format.md §3.6).
    pub bytes_checked_after_data: u64,
    /// The last segment's tail bound was found and trusted (format.md §3.6).
    pub tail_bound_used: bool,
    /// Bytes at the start of the last segment whose records were taken from a checkpoint
    /// of them written at a clean close (format.md §5.1) instead of being read.
    pub last_segment_prefix_bytes: u64,
    /// A torn tail cut from the last segment.
    pub torn_tail: Option<TailCut>,
    /// Cuts made in [`RecoveryMode::Salvage`].
    pub salvaged: Vec<TailCut>,
    /// Segments removed in [`RecoveryMode::Salvage`] because they followed a cut in an
    /// earlier segment (the log keeps its longest undamaged prefix).
    pub salvage_removed: Vec<PathBuf>,
    /// A last segment whose creation a crash interrupted, removed.
    pub removed_incomplete_segment: Option<PathBuf>,
    /// Files under segment names that hold no segment header and nothing but zeros, found
    /// where no record of the log is missing (format.md §4, step 1), removed: never segments
    /// of this log (another log's prepared file that a roll racing a move of its directory
    /// renamed here: design.md, "The directory moved under an open log").
    pub removed_empty_files: Vec<PathBuf>,
    /// Such files found by a read-only open (or its reload), which never removes anything:
    /// it reads past them, and the next writer's open removes them.
    pub empty_files_read_past: Vec<PathBuf>,
    /// A compaction that a crash interrupted after its commit point, finished.
    pub finished_replacement: bool,
    /// Files of a compaction that a crash interrupted before its commit point, removed.
    pub discarded_replacement_files: usize,
    /// LSN of the last record in the log (0 for an empty log).
    pub last_lsn: u64,
    /// Wall time the recovery took.
    pub duration: Duration,
}

pub(crate) struct Recovered<F: FileSystem> {
    /// Segments in log order; the last is active.
    pub segments: Vec<SegmentEntry<F>>,
    pub last_lsn: u64,
    pub report: RecoveryReport,
    /// What recovery found of the tail bound file (whatever segment it names).
    pub tail_bound: crate::tail_bound::Found,
}

struct Found {
    first_lsn: u64,
    path: PathBuf,
}

fn list_segments<F: FileSystem>(fs: &F, dir: &Path) -> Result<Vec<Found>> {
    Ok(crate::inspect::list_segment_files(fs, dir)?
        .into_iter()
        .map(|(first_lsn, path)| Found { first_lsn, path })
        .collect())
}

/// The error an open fails with for a segment file whose header does not decode.
pub(crate) fn header_error(path: &Path, defect: crate::format::HeaderDefect) -> Error {
    match defect {
        crate::format::HeaderDefect::Version(found) => Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: crate::format::FORMAT_VERSION,
        },
        d => Error::Corruption {
            segment: 0,
            offset: 0,
            reason: format!("{}: {d}", path.display()),
        },
    }
}

fn sync_file<F: FileSystem>(file: &F::File, path: &Path) -> Result<()> {
    file.sync_data()
        .map_err(|e| Error::io("sync_data", path, e))
}

/// Cuts the segment at `path` to its first `len` bytes by copy, never in place: the prefix
/// goes into [`SALVAGE_TEMP_FILE_NAME`], is fdatasynced, and is renamed over the segment,
/// then the directory is synced. Every other name of the old file (a backup's hard link,
/// even one made while this runs) keeps all of its bytes (reviews 63 to 65). Returns the cut
/// segment, open. A crash before the rename leaves the segment as it was and the temporary
/// file, which the next writer's open removes. With `len` the file's length, it gives the
/// segment a file of its own.
fn cut_by_copy<F: FileSystem>(
    fs: &F,
    dir: &Path,
    file: &F::File,
    path: &Path,
    len: u64,
) -> Result<F::File> {
    let tmp = dir.join(SALVAGE_TEMP_FILE_NAME);
    crate::replacement::remove_if_present(fs, &tmp)?;
    crate::writer::copy_prefix(fs, file, path, &tmp, len)?;
    fs.rename(&tmp, path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    fs.sync_dir(dir)
        .map_err(|e| Error::io("sync_dir", dir, e))?;
    fs.open(path).map_err(|e| Error::io("open", path, e))
}

fn truncate<F: FileSystem>(file: &F::File, path: &Path, len: u64) -> Result<()> {
    file.set_len(len)
        .map_err(|e| Error::io("set_len", path, e))?;
    sync_file::<F>(file, path)
}

/// Removes the torn tail of the last segment: the `damaged` bytes from `end` on (zeros
/// follow them, to the end of what was written).
///
/// A file that holds its whole reservation (`reserved` bytes: a prepared segment's written
/// zeros, or preallocated space) keeps it: the damaged bytes are overwritten with zeros,
/// which read as the end of data. Cutting it would give back space the writer reserves again
/// at once and, in a prepared segment, turn written zeros back into unwritten extents (whose
/// first write costs each commit fsync a block-map update); on ext4, cutting a 128 MiB file
/// of written zeros took longer than the rest of the open (docs/benchmarks.md, R1). A shorter
/// file is cut.
fn remove_torn_tail<F: FileSystem>(
    file: &F::File,
    path: &Path,
    end: u64,
    damaged: u64,
    file_len: u64,
    reserved: u64,
) -> Result<()> {
    if file_len < reserved.max(end.saturating_add(damaged)) {
        return truncate::<F>(file, path, end);
    }
    file.write_zeros(end, damaged)
        .map_err(|e| Error::io("write", path, e))?;
    // IMPORTANT: durable before any append: a power cut must not bring the damaged bytes
    // back behind records written after them (they would read as garbage, or as old records,
    // after the new data).
    sync_file::<F>(file, path)
}

/// Makes the page cache of the last segment show what the disk holds wherever nothing in
/// the file proves its bytes durable, before recovery reads it.
///
/// IMPORTANT: after a failed fsync, Linux marks the failed pages clean and keeps them cached:
/// they read back fine, but they are not on the disk, and no fsync of ours would write them
/// (fsyncgate). Serving them — and vouching for them with later records — loses them in the
/// next power cut. Rewriting them is no cure either (ext4 leaves the preallocated extent
/// unwritten and the rewrite is lost too). So: sync the dirty pages (those of a process that
/// died without syncing: they are fine), then drop the cache from where proof ends, so that
/// recovery reads the disk there.
///
/// `proven_through` is where bytes proven durable by other means end (a checkpoint of the
/// prefix written after a clean close synced it), or `SEGMENT_HEADER_LEN`: the walk starts
/// there, so that an open after a clean close does not read the prefix.
///
/// The drop stops at the segment's tail bound (format.md §3.6) when one covers the record
/// headers: recovery reads nothing past it, and no write of the writer's reached past it —
/// records, commit markers and the zeroing thread's zeros alike move the bound first
/// (review 41: the zeros did not) — so its cache cannot hide a failed writeback. (A
/// prepared segment's whole 128 MiB is cached after the zeroing; dropping it all took ~6 ms
/// of a ~12 ms open.)
/// Should the checked scan still go past the bound, it reads there only bytes beyond where
/// written data ends: never cached, as `written_data_end` counts cached pages as data.
fn settle_last_segment<F: FileSystem>(
    fs: &F,
    path: &Path,
    proven_through: usize,
    tail_bound: Option<TailBound>,
) -> Result<()> {
    let file = fs.open(path).map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let (from, until) = {
        let bytes = file.map().map_err(|e| Error::io("map", path, e))?;
        let written_end = file
            .written_data_end(0)
            .map_err(|e| Error::io("seek", path, e))?;
        match SegmentHeader::decode(&bytes) {
            Ok(header) => {
                let (from, walked) =
                    first_unproven_offset(&bytes, proven_through, written_end as usize);
                // Up to a whole page past the bound (64 KiB covers every page size): the
                // kernel drops whole pages only, and the one holding the bound's last byte is
                // read.
                let until = match crate::tail_bound::bound_for(tail_bound, &header, &bytes) {
                    Some(b) if walked <= b => (b as u64).saturating_add(64 << 10).min(len),
                    _ => len,
                };
                (from, until)
            }
            Err(_) => (0, len),
        }
    };
    if from as u64 >= until || crate::teeth::skipped(crate::teeth::SyncPoint::RecoveredTailEvict) {
        return Ok(());
    }
    // IMPORTANT: the previous process may have written bytes it never synced; they are in
    // the page cache, and what recovery reads of them will be served and vouched for. Sync
    // them before anything else (and before the eviction, which cannot drop dirty pages).
    if !crate::teeth::skipped(crate::teeth::SyncPoint::RecoveredTailFsync) {
        sync_file::<F>(&file, path)?;
    }
    file.evict(from as u64, until - from as u64)
        .map_err(|e| Error::io("fadvise", path, e))
}

/// A prefix of the last segment that recovery may take from the layer above's checkpoint.
#[derive(Debug, Clone, Copy)]
struct CheckedPrefix {
    /// The segment's first LSN (its name).
    first_lsn: u64,
    /// Where the prefix ends (after its closing commit marker).
    end: usize,
    /// The closing marker's LSN: the greatest LSN in the prefix.
    marker_lsn: u64,
}

/// Asks the visitor for a claim on the last segment's prefix (format.md §5.1) and checks
/// what can be checked without reading the prefix: the segment is one the writer appends
/// to (not clustered, with a random salt), the prefix lies inside the file, and exactly at
/// its end lies a valid commit marker of this segment (its checksum salted with this file's
/// salt) with an LSN above every LSN the claim lists, vouching for every LSN before its own.
/// A file cut shorter than the prefix, or cut and written again, fails one of these.
fn checked_prefix<F: FileSystem>(
    fs: &F,
    last: &Found,
    visitor: &mut dyn RecoveryVisitor,
) -> Result<Option<CheckedPrefix>> {
    let file = fs
        .open(&last.path)
        .map_err(|e| Error::io("open", &last.path, e))?;
    // Only the header is needed to ask for a claim: ask for it alone, or the map's first
    // fault reads megabytes around it (the kernel's read-around). Hints never fail the open.
    let _ = file.will_need(&[(0, SEGMENT_HEADER_LEN as u64)]);
    let bytes = file.map().map_err(|e| Error::io("map", &last.path, e))?;
    let Ok(header) = SegmentHeader::decode(&bytes) else {
        return Ok(None);
    };
    // Versions 1 and 2 know no commit marker (salt 0); a clustered segment is never active.
    if header.salt == 0 || !header.tail_may_be_torn() || header.first_lsn != last.first_lsn {
        return Ok(None);
    }
    let info = SegmentInfo {
        number: header.segment_number,
        first_lsn: header.first_lsn,
        last_lsn: header.first_lsn - 1,
        path: last.path.clone(),
        data_end: bytes.len() as u64,
        sealed: false,
        created_unix_nanos: header.created_unix_nanos,
        record_salt: header.record_salt(),
        clustered: header.clustered,
    };
    let Some(claim) = visitor.prefix_claim(&info) else {
        return Ok(None);
    };
    // What the open reads of this segment from here on: the closing marker, and from the
    // prefix's end to where written bytes end (the zeros written ahead of the tail, records
    // appended after the close). Asked for together and alone, so that the map's faults
    // find them cached instead of each reading megabytes around itself.
    if let Ok(written_end) = file.written_data_end(0) {
        let from = claim.end.saturating_sub(COMMIT_MARKER_LEN as u64);
        if from < written_end {
            let _ = file.will_need(&[(from, written_end - from)]);
        }
    }
    let checked = check_claim(&bytes, &header, claim);
    if checked.is_none() {
        tracing::info!(
            segment = header.segment_number,
            end = claim.end,
            "the last segment's checkpoint does not match its file; reading the segment"
        );
    }
    Ok(checked)
}

fn check_claim(bytes: &[u8], header: &SegmentHeader, claim: PrefixClaim) -> Option<CheckedPrefix> {
    let end = usize::try_from(claim.end).ok()?;
    let start = end.checked_sub(COMMIT_MARKER_LEN)?;
    let marker = bytes
        .get(start..end)
        .filter(|_| start >= SEGMENT_HEADER_LEN)?;
    let min_lsn = header
        .first_lsn
        .max(claim.last_record_lsn.saturating_add(1));
    match decode_record(
        marker,
        header.record_salt(),
        min_lsn,
        COMMIT_MARKER_LEN as u64,
    ) {
        RecordScan::Commit(m) if m.durable_through_lsn.checked_add(1) == Some(m.lsn) => {
            Some(CheckedPrefix {
                first_lsn: header.first_lsn,
                end,
                marker_lsn: m.lsn,
            })
        }
        _ => None,
    }
}

/// Whether the last segment file, settled (step 0: read from the disk), is one whose creation
/// a crash cut: its header never made it to disk and nothing else in it is written (records
/// are written only after the header and the directory entry are durable), so nothing in it
/// was acknowledged, and recovery removes it. `false` when it has a header; an error when it
/// is anything else (format.md §4, step 1).
fn creation_was_cut<F: FileSystem>(fs: &F, path: &Path, opts: &SegmentOptions) -> Result<bool> {
    let file = fs.open(path).map_err(|e| Error::io("open", path, e))?;
    let bytes = file.map().map_err(|e| Error::io("map", path, e))?;
    let Err(defect) = SegmentHeader::decode(&bytes) else {
        return Ok(false);
    };
    let written_end = file
        .written_data_end(0)
        .map_err(|e| Error::io("seek", path, e))?;
    let written = bytes
        .get(..(written_end as usize).min(bytes.len()))
        .unwrap_or(&[]);
    let cut =
        crate::inspect::leftover(written, 0, None) == Some(crate::inspect::Leftover::CutCreation);
    if !cut || opts.recovery_mode == RecoveryMode::AbsoluteConsistency {
        return Err(header_error(path, defect));
    }
    tracing::warn!(path = %path.display(), %defect, "removing a segment whose creation was interrupted");
    Ok(true)
}

/// The greatest LSN of a sealed segment recovery did not read (its checkpoint stood in for
/// it), commit markers included: a checkpoint lists records only (review 130).
fn greatest_lsn_of<F: FileSystem>(entry: &SegmentEntry<F>) -> Result<u64> {
    let bytes = entry
        .file
        .map()
        .map_err(|e| Error::io("map", &entry.path, e))?;
    Ok(crate::inspect::analyze_segment(&bytes, 0).last_lsn_with_markers)
}

/// Looks at a file inside the log, under a segment name, whose header does not decode
/// (`defect`): `Ok` when recovery may remove it, else the error the open fails with. `bytes`
/// are the file's (mapped); see [`judge_headerless_file`].
fn check_stray_file<F: SegmentFile>(
    file: &F,
    bytes: &[u8],
    path: &Path,
    defect: crate::format::HeaderDefect,
    prev_lsn: u64,
    next_first_lsn: u64,
    opts: &SegmentOptions,
) -> Result<()> {
    let written_end = file
        .written_data_end(0)
        .map_err(|e| Error::io("seek", path, e))?;
    let written = bytes
        .get(..(written_end as usize).min(bytes.len()))
        .unwrap_or(&[]);
    judge_headerless_file(
        path,
        defect,
        crate::zeros::first_nonzero(written).is_none(),
        prev_lsn,
        next_first_lsn,
        opts.recovery_mode == RecoveryMode::AbsoluteConsistency,
    )
}

/// What a writer's open (which removes it) and a read-only one (which reads past it) make of
/// a file inside the log, under a segment name, whose header does not decode (`defect`):
/// `Ok` when it holds no record of the log, else the error the open fails with. It holds
/// none only when it holds nothing at all (`all_zero`: every byte written is a zero, the
/// header's too: a prepared file another log's roll renamed here never had one) and no
/// record of the log is missing around it: the greatest LSN before it (`prev_lsn`, commit
/// markers included) is right before the next segment's first. A segment of this log whose
/// contents a disk lost reads as zeros too, but its records are missing there. Never with
/// `absolute` (`AbsoluteConsistency`).
pub(crate) fn judge_headerless_file(
    path: &Path,
    defect: crate::format::HeaderDefect,
    all_zero: bool,
    prev_lsn: u64,
    next_first_lsn: u64,
    absolute: bool,
) -> Result<()> {
    if !all_zero {
        return Err(header_error(path, defect));
    }
    let refuse = |why: String| Error::Corruption {
        segment: 0,
        offset: 0,
        reason: format!(
            "{}: no segment header and nothing but zeros, {why}",
            path.display()
        ),
    };
    if prev_lsn.checked_add(1) != Some(next_first_lsn) {
        return Err(refuse(format!(
            "where records are missing (the log's LSN {prev_lsn} before it, \
             {next_first_lsn} after it): a segment whose contents were lost?"
        )));
    }
    if absolute {
        return Err(refuse(
            "where no record is missing: no segment of this log (an open in another \
             recovery mode removes it)"
                .into(),
        ));
    }
    Ok(())
}

/// Opens and checks every segment in `dir`.
pub(crate) fn recover<F: FileSystem>(
    fs: &F,
    dir: &Path,
    opts: &SegmentOptions,
    visitor: &mut dyn RecoveryVisitor,
) -> Result<Recovered<F>> {
    let started = Instant::now();
    let mut report = RecoveryReport::default();
    // A compaction interrupted by a crash is finished or undone before the segments are
    // listed, so the list is either the old set or the new one.
    let replacement = crate::replacement::finish_at_open(fs, dir)?;
    report.finished_replacement = replacement.rolled_forward;
    report.discarded_replacement_files = replacement.discarded_files;
    let mut found = list_segments(fs, dir)?;
    let tail_bound = crate::tail_bound::read(fs, dir);
    // Files recovery removes (no record in them): only once the rest of the log has passed
    // its checks, so that an open that fails leaves the directory as it found it (review
    // 131: after a refused open, the next one took the segment it had refused for a cut
    // creation, as the cut creation before it was gone).
    let mut doomed: Vec<PathBuf> = Vec::new();
    // The last segment is settled (step 0), and then, when its header is not on the disk, it
    // is a segment whose creation was cut, removed: the one before it is the last one then,
    // and that one is settled too (a zeroed file named after the last segment hid the real
    // one from step 0). Only one: a crash cuts one creation, and a file before it with no
    // header is something else (review 129: a sealed segment whose contents were lost).
    let mut prefix = None;
    // The first LSN of the cut creation removed, if one was.
    let mut removed_cut: Option<u64> = None;
    while let Some(last) = found.last() {
        // Salvage reads every record: damage hidden behind a checkpoint is damage too.
        prefix = match opts.recovery_mode {
            RecoveryMode::Salvage => None,
            _ => checked_prefix(fs, last, visitor)?,
        };
        let proven_through = prefix.map_or(SEGMENT_HEADER_LEN, |p| p.end);
        settle_last_segment(fs, &last.path, proven_through, tail_bound.slot())?;
        if removed_cut.is_some() || !creation_was_cut(fs, &last.path, opts)? {
            break;
        }
        report.removed_incomplete_segment = Some(last.path.clone());
        doomed.push(last.path.clone());
        removed_cut = Some(last.first_lsn);
        found.pop();
    }

    let count = found.len();
    let mut segments: Vec<SegmentEntry<F>> = Vec::with_capacity(count);
    let mut prev_lsn = 0u64;
    let mut numbers = std::collections::BTreeSet::new();
    let mut salvage_stop = false;
    // The segment before was taken from its checkpoint, not read.
    let mut prev_skipped = false;
    for (i, f) in found.iter().enumerate() {
        let mut is_last = i + 1 == count;
        let mut file = fs
            .open(&f.path)
            .map_err(|e| Error::io("open", &f.path, e))?;
        if !is_last {
            // Only the header of a sealed segment may be read here: ask for it alone, or the
            // map's first fault reads megabytes around it (the kernel's read-around).
            let _ = file.will_need(&[(0, SEGMENT_HEADER_LEN as u64)]);
        }
        let bytes = file.map().map_err(|e| Error::io("map", &f.path, e))?;
        let header = match SegmentHeader::decode(&bytes) {
            Ok(header) => header,
            Err(defect) => {
                let next_first_lsn = found.get(i + 1).map_or(u64::MAX, |n| n.first_lsn);
                let mut greatest = prev_lsn;
                if prev_skipped && greatest.checked_add(1) != Some(next_first_lsn) {
                    if let Some(prev) = segments.last() {
                        greatest = greatest.max(greatest_lsn_of(prev)?);
                    }
                }
                check_stray_file(
                    &file,
                    &bytes,
                    &f.path,
                    defect,
                    greatest,
                    next_first_lsn,
                    opts,
                )?;
                tracing::warn!(path = %f.path.display(), "removing a file under a segment name that holds nothing but zeros and no record of the log");
                report.removed_empty_files.push(f.path.clone());
                doomed.push(f.path.clone());
                continue;
            }
        };
        let corrupt = |offset: u64, reason: String| Error::Corruption {
            segment: header.segment_number,
            offset,
            reason,
        };
        if header.first_lsn != f.first_lsn {
            return Err(corrupt(
                0,
                format!(
                    "file name says first LSN {} but header says {}",
                    f.first_lsn, header.first_lsn
                ),
            ));
        }
        if header.first_lsn <= prev_lsn {
            return Err(corrupt(
                0,
                format!(
                    "first LSN {} does not follow LSN {prev_lsn} of the previous segment",
                    header.first_lsn
                ),
            ));
        }
        if !numbers.insert(header.segment_number) {
            return Err(corrupt(0, "segment number used twice".into()));
        }
        let mut info = SegmentInfo {
            number: header.segment_number,
            first_lsn: header.first_lsn,
            last_lsn: header.first_lsn - 1,
            path: f.path.clone(),
            data_end: bytes.len() as u64,
            sealed: !is_last,
            created_unix_nanos: header.created_unix_nanos,
            record_salt: header.record_salt(),
            clustered: header.clustered,
        };
        // Salvage reads every record: damage hidden behind a checkpoint is damage too.
        let next_first_lsn = found.get(i + 1).map(|next| next.first_lsn);
        if !is_last
            && opts.recovery_mode != RecoveryMode::Salvage
            && !visitor.wants_scan(&info, next_first_lsn)
        {
            // Trusted by the layer above (its checkpoint covers it); its records are not read,
            // but its last LSN is known, so the next segment must start after it.
            let last_lsn = visitor
                .skipped_last_lsn()
                .unwrap_or(info.last_lsn)
                .max(info.last_lsn);
            let entry =
                SegmentEntry::new(header, f.path.clone(), file, bytes.len() as u64, last_lsn);
            entry.seal(Some(bytes));
            segments.push(entry);
            prev_lsn = last_lsn;
            prev_skipped = true;
            continue;
        }
        // The last segment's prefix, from the checkpoint written when the log was closed:
        // its records are not read, and the scan starts after its closing commit marker.
        let (from, from_lsn) = match prefix {
            Some(p) if is_last && p.first_lsn == f.first_lsn && visitor.take_prefix(&info) => {
                report.last_segment_prefix_bytes = p.end as u64;
                (p.end, p.marker_lsn)
            }
            _ => (SEGMENT_HEADER_LEN, prev_lsn.max(header.first_lsn - 1)),
        };
        // Bytes past this offset are holes or preallocated space: zeros, never read.
        let written_end = file
            .written_data_end(SEGMENT_HEADER_LEN as u64)
            .map_err(|e| Error::io("seek", &f.path, e))?
            .min(bytes.len() as u64) as usize;
        // Nor was anything written at or past the tail bound of the segment it names (a
        // segment made from a prepared file is written zeros to its end; format.md §3.6).
        // Only for a segment no build that ignores the bound can have appended to.
        let bound = crate::tail_bound::bound_for(tail_bound.slot(), &header, &bytes);
        let mut scan = scan_records(
            &bytes,
            header.record_salt(),
            from,
            bound.map_or(written_end, |b| written_end.min(b)),
            &mut info,
            from_lsn,
            visitor,
        )?;
        let written_end = match bound {
            Some(b) if scan.end <= b => {
                report.tail_bound_used = true;
                written_end.min(b)
            }
            Some(b) => {
                // Data past the bound: nothing this build writes does that. Not trusted; the
                // end-of-data check runs again over everything written.
                tracing::warn!(
                    segment = header.segment_number,
                    bound = b,
                    end = scan.end,
                    "the tail bound does not cover the data; reading the segment to its end"
                );
                if scan.defect.is_none() {
                    scan.defect = crate::scan::stray_bytes_after(&bytes, scan.end, written_end);
                }
                written_end
            }
            None => written_end,
        };
        report.bytes_checked_after_data += written_end.saturating_sub(scan.end) as u64;
        report.segments_scanned += 1;
        report.records_scanned += scan.records;
        report.bytes_scanned += (scan.end - from) as u64;
        let end = scan.end as u64;
        // The map the scan read, kept as a sealed segment's view unless the file is cut.
        let mut view = Some(bytes);
        if let Some(defect) = scan.defect {
            let bytes: &[u8] = view.as_deref().unwrap_or(&[]);
            let file_len = bytes.len() as u64;
            let dropped = crate::zeros::last_nonzero(
                bytes
                    .get(scan.end..written_end.max(scan.end))
                    .unwrap_or(&[]),
            )
            .map_or(0, |p| p as u64 + 1);
            let cut = TailCut {
                segment: header.segment_number,
                offset: end,
                bytes_dropped: dropped,
                reason: defect.to_string(),
            };
            match opts.recovery_mode {
                RecoveryMode::Salvage => {
                    tracing::error!(segment = cut.segment, offset = cut.offset, bytes = cut.bytes_dropped, reason = %cut.reason, "salvage: cutting damaged segment");
                    if !is_last {
                        // First, before anything is removed or cut: a sealed segment with
                        // other names (a backup's hard links) gets a file of its own (a whole
                        // copy renamed over it), so that a full disk fails the salvage here,
                        // before any change, and not the next open, which would have to cut
                        // by copy the last segment a salvage cut short left (review 65). A
                        // name linked after this check is safe all the same: every cut of a
                        // salvage, and of a last segment with other names, is a copy.
                        let names = fs
                            .link_count(&f.path)
                            .map_err(|e| Error::io("stat", &f.path, e))?;
                        if names > 1 {
                            file = cut_by_copy(fs, dir, &file, &f.path, file_len)?;
                        }
                        // Point-in-time salvage: the log keeps its longest undamaged prefix.
                        // Later segments go (their records would continue executions past
                        // the records this cut drops), and this segment becomes the active one.
                        is_last = true;
                        salvage_stop = true;
                        // IMPORTANT: the later segments go, durably, *before* the cut: a crash
                        // between the two must not leave the cut segment clean and the later
                        // ones in place (nothing would show damage any more, and the gap in
                        // sequences would make every open fail). Last first, so that what
                        // survives a crash midway is always a prefix of the log.
                        for later in found[i + 1..].iter().rev() {
                            tracing::error!(path = %later.path.display(), "salvage: removing a segment after the cut");
                            crate::replacement::remove_if_present(fs, &later.path)?;
                            report.salvage_removed.push(later.path.clone());
                        }
                        fs.sync_dir(dir)
                            .map_err(|e| Error::io("sync_dir", dir, e))?;
                    }
                    view = None; // no map may outlive the cut
                    file = cut_by_copy(fs, dir, &file, &f.path, end)?;
                    report.salvaged.push(cut);
                }
                RecoveryMode::AbsoluteConsistency => return Err(corrupt(end, defect.to_string())),
                RecoveryMode::TolerateTornTail if !is_last => {
                    return Err(corrupt(end, format!("{defect} in a sealed segment")));
                }
                // The last segment only because the cut creation after it is removed, and
                // that file's name is where this segment's records would end: its creation
                // began after this segment was sealed, whole and synced (review 131: its
                // damage was cut as a torn tail, acknowledged records with it). A file named
                // far beyond is no roll of this segment's (review 132: another log's prepared
                // file, put here by a roll that raced a move of its directory, after an
                // active segment whose tail a crash really tore).
                RecoveryMode::TolerateTornTail
                    if removed_cut.is_some_and(|next| {
                        crate::inspect::successor_fits(
                            next,
                            scan.last_lsn,
                            written_end.saturating_sub(scan.end) as u64,
                        )
                    }) =>
                {
                    return Err(corrupt(
                        end,
                        format!(
                            "{defect} in a segment sealed before the next one's creation began \
                             (a crash cut that creation)"
                        ),
                    ));
                }
                RecoveryMode::TolerateTornTail if !header.tail_may_be_torn() => {
                    return Err(corrupt(end, format!("{defect} in a clustered segment")));
                }
                RecoveryMode::TolerateTornTail => {
                    if let Some((at, lsn)) = later_durable_record(
                        &bytes[..written_end.max(scan.end)],
                        scan.end + 1,
                        header.record_salt(),
                        scan.last_lsn,
                    ) {
                        return Err(corrupt(end, format!("{defect}, but record LSN {lsn} at offset {at} was written after this one was durable: acknowledged data is damaged")));
                    }
                    tracing::warn!(segment = cut.segment, offset = cut.offset, bytes = cut.bytes_dropped, reason = %cut.reason, "removing torn tail of the last segment");
                    view = None; // no map may outlive the cut

                    // A last segment with other names is cut by copy: in place, they would be
                    // cut too. A backup never links the last segment, but a salvage cut short
                    // after its removals leaves last a segment that a read-only process's
                    // backup may have linked while it ran (review 66).
                    let names = fs
                        .link_count(&f.path)
                        .map_err(|e| Error::io("stat", &f.path, e))?;
                    if names > 1 {
                        file = cut_by_copy(fs, dir, &file, &f.path, end)?;
                    } else {
                        remove_torn_tail::<F>(
                            &file,
                            &f.path,
                            end,
                            cut.bytes_dropped,
                            file_len,
                            opts.segment_size_bytes,
                        )?;
                    }
                    report.torn_tail = Some(cut);
                }
            }
        }
        info.last_lsn = scan.last_lsn.max(header.first_lsn - 1);
        let entry: SegmentEntry<F> =
            SegmentEntry::new(header, f.path.clone(), file, end, info.last_lsn);
        if !is_last {
            // A cut segment (Salvage) is mapped again: the old map covered the cut bytes.
            let view = match view {
                Some(v) => v,
                None => entry
                    .file
                    .map()
                    .map_err(|e| Error::io("map", &entry.path, e))?,
            };
            entry.seal(Some(view));
        }
        prev_lsn = info.last_lsn;
        prev_skipped = false;
        segments.push(entry);
        if salvage_stop {
            break;
        }
    }

    for path in &doomed {
        crate::replacement::remove_if_present(fs, path)?;
    }
    if !segments.is_empty() {
        // IMPORTANT: the active segment's name may never have been made durable (a roll that
        // failed after creating the file, a removal above): appends go into it from now on.
        // It also makes durable the removal of the checkpoint of the last segment's prefix
        // that the visitor consumed (format.md §5.1): appends after this open must never find
        // it again should a later cut make the file shorter and then longer.
        if !crate::teeth::skipped(crate::teeth::SyncPoint::RecoveredDirFsync) {
            fs.sync_dir(dir)
                .map_err(|e| Error::io("sync_dir", dir, e))?;
        }
    } else if !doomed.is_empty() {
        // IMPORTANT: make the removal of an incomplete segment durable before new segments
        // with the same first LSN can be created.
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    report.segments = segments.len();
    report.last_lsn = prev_lsn;
    report.duration = started.elapsed();
    Ok(Recovered {
        segments,
        last_lsn: prev_lsn,
        report,
        tail_bound,
    })
}
