//! Reading a log without owning it: for recovery (the record scan and the look-ahead that
//! tells a torn tail from corruption) and for tools such as the `seglog` CLI, which must work
//! on a log another process is appending to — no lock, no writes, no memory map (a writer may
//! truncate the active segment when it seals it), and no allocation sized by a length field.

use crate::format::{
    decode_record, parse_segment_file_name, HeaderDefect, RecordDefect, RecordRef, RecordScan,
    SegmentHeader, COMMIT_MARKER_LEN, KIND_COMMIT, KIND_EVENTS, RECORD_HEADER_LEN,
    REC_DURABLE_THROUGH_OFFSET, REC_KIND_OFFSET, REC_LEN_OFFSET, REC_LSN_OFFSET,
    SEGMENT_HEADER_LEN,
};
use crate::io::{FileSystem, SegmentFile};
use crate::recovery::RecoveryVisitor;
use crate::segment::SegmentInfo;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// How a segment's record scan ended.
pub(crate) struct Scan {
    /// First byte after the last valid record.
    pub end: usize,
    pub last_lsn: u64,
    pub records: u64,
    /// Why it stopped early, if it did.
    pub defect: Option<RecordDefect>,
}

/// Tracks which records of a scan a later record vouches for. Only the unvouched suffix is
/// kept, so memory follows the last commit groups, not the segment.
#[derive(Default)]
struct Vouching {
    vouched_through: u64,
    /// (LSN, offset) of the records not yet vouched for, in order.
    open: std::collections::VecDeque<(u64, usize)>,
}

impl Vouching {
    fn record(&mut self, lsn: u64, durable_through: u64, offset: usize) {
        self.vouched_through = self.vouched_through.max(durable_through);
        while self
            .open
            .front()
            .is_some_and(|&(l, _)| l <= self.vouched_through)
        {
            self.open.pop_front();
        }
        if lsn > self.vouched_through {
            self.open.push_back((lsn, offset));
        }
    }

    fn first_unvouched(&self) -> Option<usize> {
        self.open.front().map(|&(_, offset)| offset)
    }
}

/// Reads the records of `bytes` (a whole segment file, its checksums salted with `salt`);
/// `written_end` bounds the bytes that may be non-zero (the file system guarantees zeros
/// after it). Commit markers are checked and counted for vouching, but not visited.
pub(crate) fn scan_records(
    bytes: &[u8],
    salt: u64,
    written_end: usize,
    info: &mut SegmentInfo,
    prev_lsn: u64,
    visitor: &mut dyn RecoveryVisitor,
) -> Result<Scan> {
    let mut at = SEGMENT_HEADER_LEN;
    let mut last_lsn = prev_lsn;
    let mut records = 0;
    let max_len = bytes.len() as u64;
    let mut min_lsn = info.first_lsn.max(prev_lsn + 1);
    loop {
        let rest = bytes.get(at..).unwrap_or(&[]);
        match decode_record(rest, salt, min_lsn, max_len) {
            RecordScan::Record(r) => {
                visitor.record(info, at as u64, &r)?;
                last_lsn = r.lsn();
                min_lsn = last_lsn + 1;
                records += 1;
                at += r.len();
            }
            RecordScan::Commit(marker) => {
                last_lsn = marker.lsn;
                min_lsn = last_lsn + 1;
                at += COMMIT_MARKER_LEN;
            }
            RecordScan::EndOfData => {
                let defect = bytes
                    .get(at..written_end.max(at))
                    .unwrap_or(&[])
                    .iter()
                    .any(|&b| b != 0)
                    .then_some(RecordDefect::Layout("non-zero bytes after the end of data"));
                return Ok(Scan {
                    end: at,
                    last_lsn,
                    records,
                    defect,
                });
            }
            RecordScan::Defect(d) => {
                return Ok(Scan {
                    end: at,
                    last_lsn,
                    records,
                    defect: Some(d),
                });
            }
        }
    }
}

/// The offset in a segment's bytes (a whole file, header included) from which nothing in
/// the file proves the bytes durable: the first record that no later record or commit
/// marker vouches for (its LSN is above every `durable_through_lsn` after it), or where the
/// record headers stop making sense. `SEGMENT_HEADER_LEN` when no record is proven, `0` when
/// there is no record at all (then not even the header is: records are written only after the
/// header is durable). Reads record headers only, without checksums: a wrong guess only moves
/// the answer earlier, since what it vouches is never more than what writers claimed.
pub(crate) fn first_unproven_offset(bytes: &[u8], written_end: usize) -> usize {
    let mut vouching = Vouching::default();
    let mut at = SEGMENT_HEADER_LEN;
    let end = written_end.min(bytes.len());
    while let Some(header) = bytes.get(at..at + RECORD_HEADER_LEN).filter(|_| at < end) {
        let len = crate::format::le_u32(header, REC_LEN_OFFSET) as usize;
        let kind = header[REC_KIND_OFFSET];
        if len < RECORD_HEADER_LEN
            || at + len > end
            || !(kind == KIND_EVENTS || kind == KIND_COMMIT)
        {
            break;
        }
        vouching.record(
            crate::format::le_u64(header, REC_LSN_OFFSET),
            crate::format::le_u64(header, REC_DURABLE_THROUGH_OFFSET),
            at,
        );
        at += len;
    }
    if at == SEGMENT_HEADER_LEN {
        return 0;
    }
    vouching.first_unvouched().unwrap_or(at)
}

/// Searches `bytes[from..]` for a valid record (or commit marker) that proves the damage
/// before it was acknowledged: one written after a sync that covered LSNs beyond
/// `last_good_lsn`. Returns its offset and LSN.
///
/// Linear in the bytes searched: a position is checksummed only when its header already
/// claims such a proof, and the bytes checksummed in all are bounded by
/// [`LOOK_AHEAD_BUDGET_FACTOR`] times the bytes searched. Only payloads crafted to look like
/// record headers can exhaust that budget; the search then stops and answers `None` (logged):
/// a tenant must not be able to make an ordinary torn tail refuse to open. What that gives up
/// is detecting real damage to acknowledged records in the same crash — damage a tenant
/// cannot cause.
pub fn later_durable_record(
    bytes: &[u8],
    from: usize,
    salt: u64,
    last_good_lsn: u64,
) -> Option<(usize, u64)> {
    let max_len = bytes.len() as u64;
    let end = bytes.len().saturating_sub(RECORD_HEADER_LEN);
    let searched = end.saturating_sub(from) as u64;
    let mut budget = searched
        .saturating_mul(LOOK_AHEAD_BUDGET_FACTOR)
        .saturating_add(1 << 20);
    // Records after the damage follow the last good one: at most one LSN per record header's
    // worth of bytes (LSNs skip only in compacted, sealed segments).
    let lsn_limit = last_good_lsn
        .saturating_add(searched / RECORD_HEADER_LEN as u64)
        .saturating_add(2);
    for at in from..end {
        let Some(claimed_len) = claims_proof(&bytes[at..], last_good_lsn, lsn_limit) else {
            continue;
        };
        let Some(left) = budget.checked_sub(claimed_len) else {
            tracing::warn!(
                offset = at,
                "torn-tail look-ahead stopped: too many record-like headers to check"
            );
            return None;
        };
        budget = left;
        let proof = match decode_record(&bytes[at..], salt, last_good_lsn + 1, max_len) {
            RecordScan::Record(r) if r.durable_through_lsn() > last_good_lsn => r.lsn(),
            RecordScan::Commit(m) if m.durable_through_lsn > last_good_lsn => m.lsn,
            _ => continue,
        };
        return Some((at, proof));
    }
    None
}

/// How many times the searched bytes [`later_durable_record`] may checksum.
pub const LOOK_AHEAD_BUDGET_FACTOR: u64 = 4;

/// The record length claimed at the start of `rec` when its header, read without the
/// checksum, would prove data beyond `last_good_lsn` durable (with an LSN up to `lsn_limit`).
fn claims_proof(rec: &[u8], last_good_lsn: u64, lsn_limit: u64) -> Option<u64> {
    let header = rec.get(..RECORD_HEADER_LEN)?;
    let len = u64::from(crate::format::le_u32(header, REC_LEN_OFFSET));
    let kind = header[REC_KIND_OFFSET];
    let plausible_len = match kind {
        KIND_EVENTS => len > RECORD_HEADER_LEN as u64,
        KIND_COMMIT => len == COMMIT_MARKER_LEN as u64,
        _ => false,
    };
    let lsn = crate::format::le_u64(header, REC_LSN_OFFSET);
    let durable_through = crate::format::le_u64(header, REC_DURABLE_THROUGH_OFFSET);
    (plausible_len
        && len <= rec.len() as u64
        && durable_through > last_good_lsn
        && durable_through < lsn
        && lsn <= lsn_limit)
        .then_some(len)
}

/// The segment files of `dir`, by first LSN.
///
/// # Errors
/// I/O errors, and a `.seg` file whose name is malformed.
pub fn list_segment_files<F: FileSystem>(fs: &F, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let names = fs.list(dir).map_err(|e| Error::io("list", dir, e))?;
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
    let len = usize::try_from(len)
        .map_err(|_| Error::InvalidRecord("file too large for this platform"))?;
    let mut buf = vec![0u8; len];
    let mut at = 0;
    while at < len {
        match file.read_at(&mut buf[at..], at as u64) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", path, e)),
        }
    }
    buf.truncate(at);
    Ok(buf)
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
    };
    let prev = prev_lsn.max(h.first_lsn.saturating_sub(1));
    let mut offsets = Vec::new();
    // The visitor never fails, so neither does the scan.
    let Ok(scan) = scan_records(
        bytes,
        h.record_salt(),
        bytes.len(),
        &mut info,
        prev,
        &mut Offsets(&mut offsets),
    ) else {
        return analysis;
    };
    analysis.record_offsets = offsets;
    analysis.last_lsn = if scan.records > 0 { scan.last_lsn } else { 0 };
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
