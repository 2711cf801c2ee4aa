//! What a salvage of a log directory will cut, worked out from the files before anything is
//! changed, with the scan recovery itself uses (`seglog_segment::inspect::analyze_segment`,
//! built on the same record scan as `RecoveryMode::Salvage`).
//!
//! Salvage keeps the log's longest undamaged prefix: the first segment with a bad record is
//! cut at that record, and every later segment is removed (its records would continue
//! executions past the dropped ones). This module only predicts that; the cut itself is the
//! library's salvage open, and `repair` checks the files afterwards against this plan.

use crate::verify::checks::check_checkpoint;
use crate::verify::{judge_leftover, tail_may_be_torn};
use crate::{CheckpointCheck, Error, Leftover, Result};
use seglog_segment::format::{
    decode_record, RecordScan, SegmentHeader, KIND_COMMIT, KIND_EVENTS, MANIFEST_FILE_NAME,
    RECORD_HEADER_LEN, REC_KIND_OFFSET, REC_LEN_OFFSET,
};
use seglog_segment::inspect::{analyze_segment, list_segment_files, read_file};
use seglog_segment::io::FileSystem;
use seglog_segment::SegmentInfo;
use std::path::{Path, PathBuf};

/// A segment cut short by salvage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentCut {
    /// The segment file.
    pub path: PathBuf,
    /// Its segment number.
    pub segment: u64,
    /// Where it is cut: the first damaged byte, and the file's new length.
    pub offset: u64,
    /// Bytes after the cut that are not zeros (preallocated space is not counted).
    pub bytes_dropped: u64,
    /// Valid records before the cut, kept.
    pub records_kept: u64,
    /// Records after the damage that are still whole and checksummed, dropped with it (the
    /// damaged record itself cannot be counted: its bytes do not delimit it). A lower bound
    /// when `records_dropped_exact` is false.
    pub records_dropped: u64,
    /// False when the search for whole records after the damage gave up (bytes crafted to
    /// look like record headers exhaust its budget): then `records_dropped` is a lower bound.
    pub records_dropped_exact: bool,
    /// What is wrong at the cut.
    pub reason: String,
    /// True when the dropped bytes held acknowledged data (the segment is sealed, or a later
    /// record proves the damaged bytes were durable); false for a torn tail, which any open
    /// cuts anyway.
    pub acknowledged: bool,
}

/// A segment removed whole by salvage, because it follows the cut.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemovedSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Its segment number (`None` when its header does not decode).
    pub segment: Option<u64>,
    /// Its header's record salt (random per segment file, format.md §2; `None` when its
    /// header does not decode): tells it from a segment the salvage open starts under the
    /// same name (and possibly the same number, numbers of removed segments come back).
    pub record_salt: Option<u64>,
    /// Its written bytes.
    pub bytes: u64,
    /// Its valid records.
    pub records: u64,
}

/// An index checkpoint that contradicts its segment or does not decode. Checkpoints are
/// derived data (the next open scans the segment instead): removing one loses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DamagedCheckpoint {
    /// The checkpoint file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// A segment salvage keeps (whole, or up to the cut).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeptSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Valid records it keeps.
    pub records: u64,
}

/// Everything a repair of a log directory changes, known before it changes anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SalvagePlan {
    /// The segment cut short, if any (at most one: everything after it is removed).
    pub cut: Option<SegmentCut>,
    /// Segments removed whole, in log order.
    pub removed: Vec<RemovedSegment>,
    /// A last segment whose creation a crash interrupted (its header never reached the
    /// disk; no records): removed, as any open does.
    pub incomplete_segment: Option<PathBuf>,
    /// Files of zeros under segment names, no header, inside the log where no record is
    /// missing around them (format.md §4, step 1): removed, as any open does.
    pub empty_files: Vec<PathBuf>,
    /// Damaged index checkpoints of kept segments, removed.
    pub damaged_checkpoints: Vec<DamagedCheckpoint>,
    /// Segments kept (the cut one included), in log order.
    pub kept: Vec<KeptSegment>,
}

impl SalvagePlan {
    /// True when there is nothing to repair.
    pub fn is_empty(&self) -> bool {
        self.cut.is_none()
            && self.removed.is_empty()
            && self.incomplete_segment.is_none()
            && self.empty_files.is_empty()
            && self.damaged_checkpoints.is_empty()
    }

    /// Valid records kept.
    pub fn records_kept(&self) -> u64 {
        self.kept.iter().map(|k| k.records).sum()
    }

    /// Records dropped (a lower bound when the cut's count is).
    pub fn records_dropped(&self) -> u64 {
        self.cut.as_ref().map_or(0, |c| c.records_dropped)
            + self.removed.iter().map(|r| r.records).sum::<u64>()
    }

    /// Bytes dropped: after the cut, and of the removed segments.
    pub fn bytes_dropped(&self) -> u64 {
        self.cut.as_ref().map_or(0, |c| c.bytes_dropped)
            + self.removed.iter().map(|r| r.bytes).sum::<u64>()
    }

    /// True when acknowledged data is dropped (not only a torn tail, an incomplete segment
    /// or checkpoints).
    pub fn drops_acknowledged_data(&self) -> bool {
        self.cut.as_ref().is_some_and(|c| c.acknowledged) || !self.removed.is_empty()
    }
}

fn unrepairable(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Corruption(format!(
        "{}: {what}; salvage cannot repair it",
        path.display()
    ))
}

/// Whole, checksummed records (and commit markers) in `bytes[from..]`, searching every
/// offset: how many records a cut at `from` drops besides the damaged one. Returns the count
/// and whether the search finished (it checksums at most 4 times the bytes searched, plus
/// 1 MiB, so crafted payloads cannot make it quadratic).
pub(crate) fn whole_records_after(
    bytes: &[u8],
    from: usize,
    salt: u64,
    last_good_lsn: u64,
) -> (u64, bool) {
    let max_len = bytes.len() as u64;
    let searched = bytes.len().saturating_sub(from) as u64;
    let mut budget = searched.saturating_mul(4).saturating_add(1 << 20);
    let mut found = 0u64;
    let mut min_lsn = last_good_lsn.saturating_add(1);
    let mut at = from;
    while let Some(header) = bytes.get(at..at + RECORD_HEADER_LEN) {
        let len = u64::from(u32::from_le_bytes([
            header[REC_LEN_OFFSET],
            header[REC_LEN_OFFSET + 1],
            header[REC_LEN_OFFSET + 2],
            header[REC_LEN_OFFSET + 3],
        ]));
        let kind = header[REC_KIND_OFFSET];
        let plausible = (kind == KIND_EVENTS || kind == KIND_COMMIT)
            && len >= RECORD_HEADER_LEN as u64
            && len <= (bytes.len() - at) as u64;
        if !plausible {
            at += 1;
            continue;
        }
        let Some(left) = budget.checked_sub(len) else {
            return (found, false);
        };
        budget = left;
        match decode_record(&bytes[at..], salt, min_lsn, max_len) {
            RecordScan::Record(r) => {
                found += 1;
                min_lsn = r.lsn().saturating_add(1);
                at += r.len();
            }
            RecordScan::Commit(m) => {
                min_lsn = m.lsn.saturating_add(1);
                at += len as usize;
            }
            RecordScan::EndOfData | RecordScan::Defect(_) => at += 1,
        }
    }
    (found, true)
}

/// Works out what a salvage of `dir` would change. Reads only; the caller holds the lock
/// (or accepts that a writer may change the log meanwhile).
///
/// # Errors
/// I/O errors; [`Error::Segment`] corruption that salvage cannot repair (a header that does
/// not decode outside an interrupted creation, a header that contradicts its file name or
/// the segment before it); [`Error::Unrepairable`] when a compaction's switch is pending,
/// or when the log the salvage would leave does not open for its offloaded segments
/// (`check_offloaded`).
pub fn plan_salvage<F: FileSystem>(fs: &F, dir: &Path) -> Result<SalvagePlan> {
    if fs
        .list(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .iter()
        .any(|n| n == MANIFEST_FILE_NAME)
    {
        return Err(Error::Unrepairable(format!(
            "{} holds {MANIFEST_FILE_NAME}: a compaction was interrupted during its switch; \
             the next open of the log finishes it (any open, even one that then fails), then \
             repair again",
            dir.display()
        )));
    }
    let listing = list_segment_files(fs, dir)?;
    let files = listing.clone();
    let mut plan = SalvagePlan::default();
    let mut prev_lsn = 0u64;
    // The greatest LSN so far, commit markers included (for `judge_leftover`).
    let mut greatest_lsn = 0u64;
    let mut numbers = std::collections::BTreeSet::new();
    let count = files.len();
    let mut files = files.into_iter().enumerate();
    while let Some((i, (name_lsn, path))) = files.next() {
        let is_last = i + 1 == count;
        let bytes = read_file(fs, &path)?;
        let analysis = analyze_segment(&bytes, prev_lsn);
        let header = match &analysis.header {
            Ok(h) => *h,
            // As recovery: no record in it, and the open removes it.
            Err(defect) => match judge_leftover(fs, &listing, i, &bytes, greatest_lsn)? {
                Some(Leftover::CutCreation) => {
                    plan.incomplete_segment = Some(path);
                    break;
                }
                Some(Leftover::Zeros) => {
                    plan.empty_files.push(path);
                    continue;
                }
                None => return Err(unrepairable(&path, format!("unreadable header: {defect}"))),
            },
        };
        greatest_lsn = greatest_lsn.max(analysis.last_lsn_with_markers);
        check_header(&path, &header, name_lsn, prev_lsn, &mut numbers)?;
        plan.kept.push(KeptSegment {
            path: path.clone(),
            records: analysis.record_offsets.len() as u64,
        });
        let Some(damage) = &analysis.damage else {
            if !is_last {
                let info = SegmentInfo {
                    number: header.segment_number,
                    first_lsn: header.first_lsn,
                    last_lsn: analysis.last_lsn,
                    path: path.clone(),
                    data_end: bytes.len() as u64,
                    sealed: true,
                    created_unix_nanos: header.created_unix_nanos,
                    record_salt: header.record_salt(),
                    clustered: header.clustered,
                };
                if let CheckpointCheck::Damaged(reason) =
                    check_checkpoint(fs, dir, &info, &bytes, &analysis)
                {
                    plan.damaged_checkpoints.push(DamagedCheckpoint {
                        path: dir.join(seglog_index::checkpoint::checkpoint_file_name(
                            header.first_lsn,
                        )),
                        reason,
                    });
                }
            }
            prev_lsn = prev_lsn
                .max(analysis.last_lsn)
                .max(header.first_lsn.saturating_sub(1));
            continue;
        };
        let from = usize::try_from(damage.offset).unwrap_or(bytes.len());
        let bytes_dropped = seglog_segment::inspect::last_nonzero(bytes.get(from..).unwrap_or(&[]))
            .map_or(0, |p| p as u64 + 1);
        let last_good = prev_lsn
            .max(analysis.last_lsn)
            .max(header.first_lsn.saturating_sub(1));
        let (records_dropped, exact) = whole_records_after(
            &bytes,
            from.saturating_add(1),
            header.record_salt(),
            last_good,
        );
        plan.cut = Some(SegmentCut {
            path,
            segment: header.segment_number,
            offset: damage.offset,
            bytes_dropped,
            records_kept: analysis.record_offsets.len() as u64,
            records_dropped,
            records_dropped_exact: exact,
            reason: damage.defect.to_string(),
            acknowledged: !tail_may_be_torn(fs, &listing, i, &bytes, &analysis)?
                || !header.tail_may_be_torn()
                || damage.later_durable_record.is_some(),
        });
        for (j, (_, later)) in files.by_ref() {
            let bytes = read_file(fs, &later)?;
            // A last file whose creation a crash cut: the open removes it first, as ever,
            // holding no record (review 135: it was counted among the removed segments,
            // which made the plan say it drops acknowledged data).
            if j + 1 == count
                && seglog_segment::inspect::leftover(&bytes, 0, None) == Some(Leftover::CutCreation)
            {
                plan.incomplete_segment = Some(later);
                break;
            }
            let analysis = analyze_segment(&bytes, 0);
            plan.removed.push(RemovedSegment {
                path: later,
                segment: analysis.header.as_ref().ok().map(|h| h.segment_number),
                record_salt: analysis.header.as_ref().ok().map(|h| h.record_salt()),
                bytes: bytes.len() as u64,
                records: analysis.record_offsets.len() as u64,
            });
        }
    }
    super::check_offloaded(fs, dir, &plan)?;
    Ok(plan)
}

/// What recovery refuses of a header, refused here before anything changes.
fn check_header(
    path: &Path,
    header: &SegmentHeader,
    name_lsn: u64,
    prev_lsn: u64,
    numbers: &mut std::collections::BTreeSet<u64>,
) -> Result<()> {
    if header.first_lsn != name_lsn {
        return Err(unrepairable(
            path,
            format!(
                "the file name says first LSN {name_lsn}, the header {}",
                header.first_lsn
            ),
        ));
    }
    if header.first_lsn <= prev_lsn {
        return Err(unrepairable(
            path,
            format!(
                "first LSN {} does not follow LSN {prev_lsn} of the segment before",
                header.first_lsn
            ),
        ));
    }
    if !numbers.insert(header.segment_number) {
        return Err(unrepairable(path, "segment number used twice"));
    }
    Ok(())
}
