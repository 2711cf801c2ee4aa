//! What a reader without the directory lock may trust of a log that a writer in another
//! process may be appending to, compacting or recovering: the segments of a consistent
//! snapshot (`snapshot`), each read through its own handle and never mapped, and of those
//! only what is proven durable.
//!
//! - A segment followed by another one is sealed: the writer made it whole and durable
//!   before it created the next (format.md §4). All of it must read back; damage is
//!   corruption, as in recovery. An index checkpoint may stand in for reading it
//!   (`RecoveryVisitor::wants_scan`). A file without a header counts as no segment here: a
//!   last one (a segment being created, a cut creation, or another log's file of zeros,
//!   which a reader cannot tell apart: reviews 134 to 136) leaves the segment before it the
//!   last one; one inside the log is read past where a writer's open would remove it.
//! - In the last segment, a record is trusted only once a later checksummed record or
//!   commit marker vouches for it (`durable_through_lsn`), or the segment is a compaction
//!   output (written whole and synced before it was named). The view ends at the first
//!   record nothing vouches for: a torn tail, an append in flight, or the newest commit
//!   group, which becomes visible once the writer commits again or closes the log.
//! - Damage before that point is damage to acknowledged data: corruption.
//!
//! Nothing here writes, creates, truncates, syncs or removes a file.

use crate::format::SEGMENT_HEADER_LEN;
use crate::io::{FileSystem, SegmentFile};
use crate::recovery::RecoveryReport;
use crate::scan::{proven_end, scan_records, RecoveryVisitor};
use crate::segment::{SegmentEntry, SegmentInfo};
use crate::snapshot::{self, HeaderlessFile, OpenedSegment};
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The segments a read-only reader serves, and what it found.
pub(crate) struct ReadView<F: FileSystem> {
    /// In log order; the last is not sealed unless a later segment is being created.
    pub segments: Vec<Arc<SegmentEntry<F>>>,
    /// LSN of the last trusted record.
    pub last_lsn: u64,
    pub report: RecoveryReport,
}

/// Takes a consistent snapshot of `dir` and reads what of it is proven durable; `visitor`
/// sees every trusted record, in log order.
///
/// # Errors
/// As `snapshot::take`; corruption in a sealed segment or in the proven part of the last
/// one; LSNs that do not increase across segments; errors of the visitor; I/O errors.
pub(crate) fn load<F: FileSystem>(
    fs: &F,
    dir: &Path,
    visitor: &mut dyn RecoveryVisitor,
) -> Result<ReadView<F>> {
    let started = Instant::now();
    let snap = snapshot::take(fs, dir)?;
    let count = snap.segments.len();
    let mut report = RecoveryReport::default();
    let mut segments = Vec::with_capacity(count);
    let mut prev_lsn = 0u64;
    let mut numbers = BTreeSet::new();
    let first_lsns: Vec<u64> = snap.segments.iter().map(|s| s.header.first_lsn).collect();
    let mut headerless = snap.headerless.into_iter().peekable();
    // The segment before was taken from its checkpoint, not read.
    let mut prev_skipped = false;
    for (i, opened) in snap.segments.into_iter().enumerate() {
        if let Some(file) = headerless.next_if(|h| h.before == i) {
            let prev = segments.last().filter(|_| prev_skipped).map(AsRef::as_ref);
            check_headerless_file(&file, prev, prev_lsn, opened.header.first_lsn)?;
            report.empty_files_read_past.push(file.path);
        }
        let sealed = i + 1 < count;
        let next_first_lsn = first_lsns.get(i + 1).copied();
        let (entry, skipped) = load_segment(
            opened,
            sealed,
            (prev_lsn, next_first_lsn),
            &mut numbers,
            visitor,
            &mut report,
        )?;
        prev_lsn = entry.info().last_lsn;
        prev_skipped = skipped;
        segments.push(Arc::new(entry));
    }
    report.segments = segments.len();
    report.last_lsn = prev_lsn;
    report.duration = started.elapsed();
    Ok(ReadView {
        segments,
        last_lsn: prev_lsn,
        report,
    })
}

/// Reads past a file without a header (`file`) only where a writer's open would remove it:
/// nothing but zeros, and no LSN missing between the segment before it and the next one's
/// first (`next_first_lsn`). The greatest LSN before it is `prev_lsn`, or, where `prev` was
/// taken from its checkpoint (which lists records, not commit markers), read from `prev`.
///
/// # Errors
/// The error a writer's open would fail with; I/O errors.
fn check_headerless_file<F: FileSystem>(
    file: &HeaderlessFile<F>,
    prev: Option<&SegmentEntry<F>>,
    prev_lsn: u64,
    next_first_lsn: u64,
) -> Result<()> {
    let mut greatest = prev_lsn;
    if let Some(prev) = prev.filter(|_| prev_lsn.checked_add(1) != Some(next_first_lsn)) {
        let info = prev.info();
        let bytes = crate::inspect::read_prefix(&prev.file, &info.path, info.data_end)?;
        greatest = greatest.max(crate::inspect::analyze_segment(&bytes, 0).last_lsn_with_markers);
    }
    crate::recovery::judge_headerless_file(
        &file.path,
        file.defect.clone(),
        crate::inspect::written_zeros_from(&file.file, &file.path, 0)?,
        greatest,
        next_first_lsn,
        false,
    )
}

/// `(prev_lsn, next_first_lsn)`: the segment's records lie above the previous segment's last
/// LSN and below the next segment's first, when there is one. Also says whether the segment
/// was taken from its checkpoint (not read).
fn load_segment<F: FileSystem>(
    opened: OpenedSegment<F>,
    sealed: bool,
    (prev_lsn, next_first_lsn): (u64, Option<u64>),
    numbers: &mut BTreeSet<u64>,
    visitor: &mut dyn RecoveryVisitor,
    report: &mut RecoveryReport,
) -> Result<(SegmentEntry<F>, bool)> {
    let OpenedSegment { path, file, header } = opened;
    let corrupt = |offset: u64, reason: String| Error::Corruption {
        segment: header.segment_number,
        offset,
        reason,
    };
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
    let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    let mut info = SegmentInfo {
        number: header.segment_number,
        first_lsn: header.first_lsn,
        last_lsn: header.first_lsn - 1,
        path: path.clone(),
        data_end: len,
        sealed,
        created_unix_nanos: header.created_unix_nanos,
        record_salt: header.record_salt(),
        clustered: header.clustered,
    };
    let prev = prev_lsn.max(header.first_lsn - 1);
    if sealed && !visitor.wants_scan(&info, next_first_lsn) {
        let last_lsn = visitor
            .skipped_last_lsn()
            .unwrap_or(info.last_lsn)
            .max(info.last_lsn);
        let entry = SegmentEntry::new(header, path, file, len, last_lsn);
        entry.read_positionally();
        entry.seal(None);
        return Ok((entry, true));
    }
    let read_len = if sealed {
        len
    } else {
        // Past this only preallocated space: zeros, which end the records anyway.
        file.written_data_end(SEGMENT_HEADER_LEN as u64)
            .map_err(|e| Error::io("seek", &path, e))?
            .min(len)
    };
    let bytes = crate::inspect::read_prefix(&file, &path, read_len)?;
    // A segment whose tail cannot be torn (a clustered compaction output) must read back
    // whole even when it is last, as the writer's open requires.
    let end = if sealed || !header.tail_may_be_torn() {
        bytes.len()
    } else if header.compacted {
        // A compaction output, last only after a salvage: whole and synced before it was
        // named. Its valid records are all trusted.
        valid_end(&bytes, &header, prev)
    } else {
        proven_end(&bytes, header.record_salt(), prev + 1)
    };
    let trusted = bytes.get(..end).unwrap_or(&bytes);
    let scan = scan_records(
        trusted,
        header.record_salt(),
        SEGMENT_HEADER_LEN,
        trusted.len(),
        &mut info,
        prev,
        visitor,
    )?;
    if let Some(defect) = scan.defect {
        let what = if sealed {
            "in a sealed segment"
        } else if !header.tail_may_be_torn() {
            "in a clustered segment (a compaction output, whole when it was named)"
        } else {
            "before records that prove it was durable"
        };
        return Err(corrupt(scan.end as u64, format!("{defect} {what}")));
    }
    report.segments_scanned += 1;
    report.records_scanned += scan.records;
    report.bytes_scanned += scan.end as u64;
    let last_lsn = scan.last_lsn.max(header.first_lsn - 1);
    let entry = SegmentEntry::new(header, path, file, scan.end as u64, last_lsn);
    entry.read_positionally();
    if sealed {
        entry.seal(None);
    }
    Ok((entry, false))
}

/// Where the valid records of `bytes` end (no durability proof asked).
fn valid_end(bytes: &[u8], header: &crate::format::SegmentHeader, prev: u64) -> usize {
    let mut info = SegmentInfo {
        number: header.segment_number,
        first_lsn: header.first_lsn,
        last_lsn: prev,
        path: std::path::PathBuf::new(),
        data_end: bytes.len() as u64,
        sealed: true,
        created_unix_nanos: header.created_unix_nanos,
        record_salt: header.record_salt(),
        clustered: header.clustered,
    };
    scan_records(
        bytes,
        header.record_salt(),
        SEGMENT_HEADER_LEN,
        bytes.len(),
        &mut info,
        prev,
        &mut (),
    )
    .map_or(SEGMENT_HEADER_LEN, |s| s.end)
}
