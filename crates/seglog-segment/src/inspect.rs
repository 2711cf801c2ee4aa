//! Reading a log without owning it: for tools such as the `seglog` CLI, which must work
//! on a log another process is appending to — no lock, no writes, no memory map (a writer may
//! truncate the active segment when it seals it), and no allocation sized by a length field.

use crate::format::{
    decode_record, parse_segment_file_name, HeaderDefect, RecordDefect, RecordRef, RecordScan,
    SegmentHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::io::{FileSystem, SegmentFile};
pub use crate::scan::{later_durable_record, LOOK_AHEAD_BUDGET_FACTOR};
use crate::scan::{scan_records, RecoveryVisitor};
use crate::segment::SegmentInfo;
pub use crate::zeros::last_nonzero;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Fails with [`Error::RestoreInProgress`] when `names` (the listing of `dir`) hold the
/// marker of a restore still writing it (format.md §1): nothing in such a directory is read,
/// not even to list it as a log.
///
/// # Errors
/// [`Error::RestoreInProgress`].
pub fn refuse_unfinished_restore(dir: &Path, names: &[String]) -> Result<()> {
    if names
        .iter()
        .any(|n| n == crate::format::RESTORE_MARKER_FILE_NAME)
    {
        return Err(Error::RestoreInProgress {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// The segment files of `dir`, by first LSN. Every open, verification and tool lists a log
/// directory through it.
///
/// # Errors
/// I/O errors, a `.seg` file whose name is malformed, and [`Error::RestoreInProgress`] for a
/// directory a restore is writing (it may hold part of a log).
pub fn list_segment_files<F: FileSystem>(fs: &F, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let names = fs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    refuse_unfinished_restore(dir, &names)?;
    let mut found = Vec::new();
    for name in names {
        match parse_segment_file_name(&name) {
            None => {}
            Some(Ok(first_lsn)) => found.push((first_lsn, dir.join(&name))),
            Some(Err(())) => {
                return Err(Error::Corruption {
                    segment: 0,
                    offset: 0,
                    reason: format!("unexpected segment file name {name:?}"),
                })
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a file's written bytes (up to where the file system says written data ends) with
/// positional reads. The allocation is bounded by the file's real size, never by its
/// contents; a file that shrinks meanwhile yields what could be read.
///
/// # Errors
/// I/O errors.
pub fn read_file<F: FileSystem>(fs: &F, path: &Path) -> Result<Vec<u8>> {
    let file = fs
        .open_read_only(path)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file
        .written_data_end(0)
        .map_err(|e| Error::io("seek", path, e))?;
    read_prefix(&file, path, len)
}

/// Reads `len` bytes from the start of `file` (positional reads; `len` comes from the file
/// system, never from the file's contents). A file that is shorter yields what it holds.
pub(crate) fn read_prefix<F: crate::io::SegmentFile>(
    file: &F,
    path: &Path,
    len: u64,
) -> Result<Vec<u8>> {
    let len = usize::try_from(len)
        .map_err(|_| Error::InvalidRecord("file too large for this platform"))?;
    read_range(file, path, 0, len)
}

/// Up to `len` bytes of `file` from `offset`, positionally (fewer where the file ends).
pub(crate) fn read_range<F: crate::io::SegmentFile>(
    file: &F,
    path: &Path,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut at = 0;
    while at < len {
        match file.read_at(&mut buf[at..], offset + at as u64) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    buf.truncate(at);
    Ok(buf)
}

/// Whether every byte `file` holds from `from` up to where its written data ends is a zero,
/// read positionally a block at a time (the file may be as large as a segment).
pub(crate) fn written_zeros_from<F: crate::io::SegmentFile>(
    file: &F,
    path: &Path,
    from: u64,
) -> Result<bool> {
    const BLOCK: u64 = 1 << 20;
    let end = file
        .written_data_end(from)
        .map_err(|e| Error::io("seek", path, e))?;
    let mut at = from;
    while at < end {
        let n = usize::try_from((end - at).min(BLOCK)).unwrap_or(BLOCK as usize);
        let block = read_range(file, path, at, n)?;
        if crate::zeros::first_nonzero(&block).is_some() {
            return Ok(false);
        }
        if block.len() < n {
            break; // the file ends here
        }
        at += n as u64;
    }
    Ok(true)
}

/// A file under a segment name that holds no record, which a writer's open removes without
/// loss (format.md §4, step 1): tools report it as such, not as corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// The last file: no header, and nothing written after where it would be. A segment
    /// whose creation a crash cut.
    CutCreation,
    /// Inside the log: nothing but zeros, where its header would be too, and no record is
    /// missing around it. No segment of this log (another log's prepared file that a roll
    /// racing a move of its directory renamed here).
    Zeros,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Leftover::CutCreation => {
                "no header and nothing after it: a segment whose creation a crash cut (the \
                 next open removes it)"
            }
            Leftover::Zeros => {
                "no header, nothing but zeros, and no record missing around it: no segment \
                 of this log (the next open removes it)"
            }
        })
    }
}

/// Whether a segment named `next_first_lsn` can be the one a roll created right after a
/// segment whose valid records end at LSN `last_good_lsn`, followed by `bytes_after` bytes
/// that do not read: at most one LSN per record header's worth of those bytes (the
/// look-ahead's bound, `scan::later_durable_record`), then the next segment's first. Where
/// it can, damage in that segment before a cut creation named `next_first_lsn` is damage
/// to a sealed segment (format.md §4, step 3); where it cannot, the file is no roll of this
/// segment's, which stays the active one, its damage a torn tail.
pub fn successor_fits(next_first_lsn: u64, last_good_lsn: u64, bytes_after: u64) -> bool {
    next_first_lsn
        <= last_good_lsn
            .saturating_add(bytes_after / RECORD_HEADER_LEN as u64)
            .saturating_add(3)
}

/// The bytes after the intact part of a segment (`analysis` of its written bytes, `bytes`)
/// that may hold records, as recovery counts them for [`successor_fits`]: up to where the
/// written bytes end, or to the log's tail bound (format.md §3.6) when a slot names this
/// segment and the intact part lies within it (a segment made from a prepared file holds
/// written zeros to its end). Reads the bound file of `dir` without writing anything.
pub fn bytes_after_intact<F: FileSystem>(
    fs: &F,
    dir: &Path,
    bytes: &[u8],
    analysis: &SegmentAnalysis,
) -> u64 {
    let written = bytes.len() as u64;
    let end = analysis
        .header
        .as_ref()
        .ok()
        .and_then(|h| crate::tail_bound::bound_for(crate::tail_bound::peek(fs, dir), h, bytes))
        .map(|b| b as u64)
        .filter(|&b| analysis.data_end <= b)
        .map_or(written, |b| written.min(b));
    end.saturating_sub(analysis.data_end)
}

/// What a file under a segment name is to the open when it is a [`Leftover`]. `bytes` are
/// its written bytes ([`read_file`]); `prev_lsn` the greatest LSN of the segments before it,
/// commit markers included ([`SegmentAnalysis::last_lsn_with_markers`]); `next_first_lsn`
/// the first LSN the next segment file's name gives, `None` for the last file.
///
/// The open removes one cut creation only, and then finds nothing after a file of zeros
/// right before it: such a file is no leftover, which the caller decides, as it knows
/// whether the last file is a cut creation.
pub fn leftover(bytes: &[u8], prev_lsn: u64, next_first_lsn: Option<u64>) -> Option<Leftover> {
    if SegmentHeader::decode(bytes).is_ok() {
        return None;
    }
    match next_first_lsn {
        None => crate::zeros::first_nonzero(bytes.get(SEGMENT_HEADER_LEN..).unwrap_or(&[]))
            .is_none()
            .then_some(Leftover::CutCreation),
        Some(next) => (crate::zeros::first_nonzero(bytes).is_none()
            && prev_lsn.checked_add(1) == Some(next))
        .then_some(Leftover::Zeros),
    }
}

/// Damage found in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where the intact part ends (the first bad byte).
    pub offset: u64,
    /// What is wrong there.
    pub defect: RecordDefect,
    /// A valid record after the damage that was written after the damaged bytes were
    /// durable (offset, LSN): proof that acknowledged data is damaged.
    pub later_durable_record: Option<(u64, u64)>,
}

/// What a segment file holds, as a tool sees it.
#[derive(Debug, Clone)]
pub struct SegmentAnalysis {
    /// The header, or why it does not decode.
    pub header: std::result::Result<SegmentHeader, HeaderDefect>,
    /// Offsets of the valid records, in order.
    pub record_offsets: Vec<u64>,
    /// LSN of the last valid record (0 if none).
    pub last_lsn: u64,
    /// The greatest LSN of the intact part, commit markers included (they take LSNs too);
    /// the LSN before the header's first when it holds neither record nor marker (0 when
    /// the header does not decode). Where a segment that follows must start after.
    pub last_lsn_with_markers: u64,
    /// End of the intact part.
    pub data_end: u64,
    /// Bytes read (the written part of the file).
    pub file_bytes: u64,
    /// Why the intact part ends before the written data does, if it does.
    pub damage: Option<Damage>,
}

impl SegmentAnalysis {
    /// The valid record at `offset` of `bytes` (the bytes the analysis was made from).
    pub fn record<'a>(&self, bytes: &'a [u8], offset: u64) -> Option<RecordRef<'a>> {
        let salt = self.header.as_ref().ok()?.record_salt();
        match decode_record(bytes.get(offset as usize..)?, salt, 0, bytes.len() as u64) {
            RecordScan::Record(r) => Some(r),
            _ => None,
        }
    }
}

/// Analyses the bytes of one segment file. `prev_lsn` is the last LSN of the segment before
/// it (0 when unknown). Never fails and never panics: damage is described, not raised.
pub fn analyze_segment(bytes: &[u8], prev_lsn: u64) -> SegmentAnalysis {
    let header = SegmentHeader::decode(bytes);
    let mut analysis = SegmentAnalysis {
        header: header.clone(),
        record_offsets: Vec::new(),
        last_lsn: 0,
        last_lsn_with_markers: 0,
        data_end: 0,
        file_bytes: bytes.len() as u64,
        damage: None,
    };
    let Ok(h) = header else {
        return analysis;
    };
    struct Offsets<'v>(&'v mut Vec<u64>);
    impl RecoveryVisitor for Offsets<'_> {
        fn record(&mut self, _: &SegmentInfo, offset: u64, _: &RecordRef<'_>) -> Result<()> {
            self.0.push(offset);
            Ok(())
        }
    }
    let mut info = SegmentInfo {
        number: h.segment_number,
        first_lsn: h.first_lsn,
        last_lsn: h.first_lsn.saturating_sub(1),
        path: PathBuf::new(),
        data_end: bytes.len() as u64,
        sealed: false,
        created_unix_nanos: h.created_unix_nanos,
        record_salt: h.record_salt(),
        clustered: h.clustered,
    };
    let prev = prev_lsn.max(h.first_lsn.saturating_sub(1));
    let mut offsets = Vec::new();
    // The visitor never fails, so neither does the scan.
    let Ok(scan) = scan_records(
        bytes,
        h.record_salt(),
        SEGMENT_HEADER_LEN,
        bytes.len(),
        &mut info,
        prev,
        &mut Offsets(&mut offsets),
    ) else {
        return analysis;
    };
    analysis.record_offsets = offsets;
    analysis.last_lsn = if scan.records > 0 { scan.last_lsn } else { 0 };
    analysis.last_lsn_with_markers = scan.last_lsn;
    analysis.data_end = scan.end as u64;
    analysis.damage = scan.defect.map(|defect| Damage {
        offset: scan.end as u64,
        defect,
        later_durable_record: later_durable_record(
            bytes,
            scan.end + 1,
            h.record_salt(),
            scan.last_lsn,
        )
        .map(|(at, lsn)| (at as u64, lsn)),
    });
    analysis
}
