//! Reading a segment's records in order, and what its bytes prove about durability: the
//! record scan that recovery and tools share, the walk to the first record nothing vouches
//! for, and the look-ahead that tells a torn tail from damage to acknowledged data.
//! Both `recovery` (which owns the log) and `inspect` (which only reads) build on this; it
//! depends on neither.

use crate::format::{
    decode_record, RecordDefect, RecordRef, RecordScan, COMMIT_MARKER_LEN, KIND_COMMIT,
    KIND_EVENTS, RECORD_HEADER_LEN, REC_DURABLE_THROUGH_OFFSET, REC_KIND_OFFSET, REC_LEN_OFFSET,
    REC_LSN_OFFSET, SEGMENT_HEADER_LEN,
};
use crate::segment::SegmentInfo;
use crate::zeros::first_nonzero;
use crate::Result;

/// Receives what recovery finds, so the layer above can rebuild its index in the same pass.
pub trait RecoveryVisitor {
    /// Asked for each sealed segment before it is read; `false` skips reading it (for
    /// example because an index checkpoint already describes it). The last segment is
    /// always read. `next_first_lsn` is the first LSN of the segment after it: every record
    /// of this one lies below it (format.md §1), so a description that says otherwise does
    /// not describe this segment and must not stand in for reading it.
    fn wants_scan(&mut self, _segment: &SegmentInfo, _next_first_lsn: Option<u64>) -> bool {
        true
    }

    /// After [`Self::wants_scan`] returned `false`: the LSN of the segment's last record as
    /// the layer above knows it (from its checkpoint), so that recovery can check that LSNs
    /// increase across segments it does not read. `None` when it does not know (then the
    /// segment counts as ending right before its first LSN).
    fn skipped_last_lsn(&self) -> Option<u64> {
        None
    }

    /// Asked once per open, before anything of the log is read, for the **last** segment
    /// (`segment.data_end` is its file's length): what the layer above knows of that
    /// segment's first bytes from a checkpoint of them written at a clean close (format.md
    /// §5.1). Recovery then checks that a commit marker ends the claimed prefix, and if it
    /// does, calls [`Self::take_prefix`] in log order instead of reading the prefix.
    ///
    /// What must hold: the claim is about this very file (its salt), its bytes were synced
    /// before the claim was written, and no claim survives an open that may append. The
    /// layer above removes its file when it hands out the claim; recovery's directory fsync
    /// before the first append makes the removal durable.
    fn prefix_claim(&mut self, _segment: &SegmentInfo) -> Option<PrefixClaim> {
        None
    }

    /// After [`Self::prefix_claim`] and recovery's checks of it, in log order: take the
    /// claimed prefix's records into the index (all or nothing). `false` (they do not fit)
    /// makes recovery read the whole segment instead.
    fn take_prefix(&mut self, _segment: &SegmentInfo) -> bool {
        false
    }

    /// Called for each valid record, in log order. Records passed here survive recovery.
    ///
    /// # Errors
    /// An error aborts the open.
    fn record(
        &mut self,
        _segment: &SegmentInfo,
        _offset: u64,
        _record: &RecordRef<'_>,
    ) -> Result<()> {
        Ok(())
    }
}

/// What a checkpoint of the last segment's first bytes says about them
/// ([`RecoveryVisitor::prefix_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixClaim {
    /// Where the prefix ends: the first byte after the commit marker that closes it.
    pub end: u64,
    /// The greatest LSN of the records it lists (0 when it lists none).
    pub last_record_lsn: u64,
}

/// A visitor that wants nothing.
impl RecoveryVisitor for () {}

/// How a segment's record scan ended.
pub(crate) struct Scan {
    /// First byte after the last valid record.
    pub end: usize,
    pub last_lsn: u64,
    pub records: u64,
    /// Why it stopped early, if it did.
    pub defect: Option<RecordDefect>,
}

/// The order rule of a clustered segment: each execution's records in increasing LSN order,
/// and no LSN twice in the segment. Memory grows with the records of the segment (an LSN
/// each), only for clustered segments that are read, not loaded from a checkpoint.
#[derive(Default)]
pub(crate) struct ClusteredOrder<'a> {
    last_by_execution: std::collections::HashMap<&'a [u8], u64>,
    seen: std::collections::HashSet<u64>,
}

impl<'a> ClusteredOrder<'a> {
    /// True when a record of `execution` with `lsn` may follow the records admitted so far.
    pub(crate) fn admits(&mut self, execution: &'a [u8], lsn: u64) -> bool {
        let last = self.last_by_execution.entry(execution).or_insert(0);
        if lsn <= *last || !self.seen.insert(lsn) {
            return false;
        }
        *last = lsn;
        true
    }
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

/// Reads the records of `bytes` (a whole segment file, its checksums salted with `salt`)
/// from offset `from` (`SEGMENT_HEADER_LEN`, or the end of a prefix taken from a checkpoint,
/// whose greatest LSN is then `prev_lsn`); `written_end` bounds the bytes that may be
/// non-zero (the file system guarantees zeros after it). Commit markers are checked and
/// counted for vouching, but not visited.
pub(crate) fn scan_records(
    bytes: &[u8],
    salt: u64,
    from: usize,
    written_end: usize,
    info: &mut SegmentInfo,
    prev_lsn: u64,
    visitor: &mut dyn RecoveryVisitor,
) -> Result<Scan> {
    let mut at = from.max(SEGMENT_HEADER_LEN);
    let mut last_lsn = prev_lsn;
    let mut records = 0;
    let max_len = bytes.len() as u64;
    let floor_lsn = info.first_lsn.max(prev_lsn + 1);
    let mut min_lsn = floor_lsn;
    // A clustered segment (format.md §3.5): LSNs increase per execution, not through the
    // file; `last_lsn` is then the greatest LSN seen.
    let mut clustered = info.clustered.then(ClusteredOrder::default);
    loop {
        let rest = bytes.get(at..).unwrap_or(&[]);
        let min = if clustered.is_some() {
            floor_lsn
        } else {
            min_lsn
        };
        match decode_record(rest, salt, min, max_len) {
            RecordScan::Record(r) => {
                if let Some(order) = clustered.as_mut() {
                    if !order.admits(r.execution_id(), r.lsn()) {
                        return Ok(Scan {
                            end: at,
                            last_lsn,
                            records,
                            defect: Some(RecordDefect::LsnOrder),
                        });
                    }
                }
                visitor.record(info, at as u64, &r)?;
                last_lsn = last_lsn.max(r.lsn());
                min_lsn = last_lsn + 1;
                records += 1;
                at += r.len();
            }
            RecordScan::Commit(marker) => {
                last_lsn = last_lsn.max(marker.lsn);
                min_lsn = last_lsn + 1;
                at += COMMIT_MARKER_LEN;
            }
            RecordScan::EndOfData => {
                let defect = stray_bytes_after(bytes, at, written_end);
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
///
/// `from` is where the walk starts: `SEGMENT_HEADER_LEN`, or the end of a prefix already
/// proven durable (a checkpoint of it was written after it was synced); the answer is then
/// at least `from`.
///
/// Also returns where the walk stopped: the end of the last record whose header made sense.
/// A checksummed scan reads no record further, but for one reaching past `written_end`.
pub(crate) fn first_unproven_offset(
    bytes: &[u8],
    from: usize,
    written_end: usize,
) -> (usize, usize) {
    let mut vouching = Vouching::default();
    let start = from.max(SEGMENT_HEADER_LEN);
    let mut at = start;
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
        return (0, at);
    }
    (vouching.first_unvouched().unwrap_or(at).max(start), at)
}

/// The defect of a clean end of data at `end` when anything but zeros follows it, up to
/// `written_end` (where written bytes end, or a trusted tail bound).
pub(crate) fn stray_bytes_after(
    bytes: &[u8],
    end: usize,
    written_end: usize,
) -> Option<RecordDefect> {
    first_nonzero(bytes.get(end..written_end.max(end)).unwrap_or(&[]))
        .map(|_| RecordDefect::Layout("non-zero bytes after the end of data"))
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
    // The last offset a record header fits at. IMPORTANT: included: a commit marker (one
    // header long) that ends the file starts there, and it is the proof that the records
    // before it were acknowledged (a file not preallocated, or cut at close, ends with it).
    let end = bytes.len().checked_sub(RECORD_HEADER_LEN)?;
    let searched = (end + 1).saturating_sub(from) as u64;
    let mut budget = searched
        .saturating_mul(LOOK_AHEAD_BUDGET_FACTOR)
        .saturating_add(1 << 20);
    // Records after the damage follow the last good one: at most one LSN per record header's
    // worth of bytes (LSNs skip only in compacted, sealed segments).
    let lsn_limit = last_good_lsn
        .saturating_add(searched / RECORD_HEADER_LEN as u64)
        .saturating_add(2);
    let mut at = from;
    while at <= end {
        // A header that claims a proof has a non-zero kind byte: skip to the next non-zero
        // byte where it could be (a crashed prepared segment is mostly zeros).
        if bytes[at + REC_KIND_OFFSET] == 0 {
            match first_nonzero(&bytes[at + REC_KIND_OFFSET..=end + REC_KIND_OFFSET]) {
                Some(skip) => at += skip,
                None => break,
            }
        }
        let here = at;
        at += 1;
        let Some(claimed_len) = claims_proof(&bytes[here..], last_good_lsn, lsn_limit) else {
            continue;
        };
        let Some(left) = budget.checked_sub(claimed_len) else {
            tracing::warn!(
                offset = here,
                "torn-tail look-ahead stopped: too many record-like headers to check"
            );
            return None;
        };
        budget = left;
        let proof = match decode_record(&bytes[here..], salt, last_good_lsn + 1, max_len) {
            RecordScan::Record(r) if r.durable_through_lsn() > last_good_lsn => r.lsn(),
            RecordScan::Commit(m) if m.durable_through_lsn > last_good_lsn => m.lsn,
            _ => continue,
        };
        return Some((here, proof));
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

/// Where the records of `bytes` (a whole segment file, its checksums salted with `salt`)
/// stop being proven durable, for a reader that cannot ask the writer: the offset of the
/// first valid record that no later valid record or commit marker vouches for, or where the
/// valid records end. Unlike [`first_unproven_offset`], only checksummed records count, so
/// neither a torn write nor a tenant's payload can vouch for anything. `SEGMENT_HEADER_LEN`
/// when nothing is proven.
pub(crate) fn proven_end(bytes: &[u8], salt: u64, min_lsn: u64) -> usize {
    let mut vouching = Vouching::default();
    let mut at = SEGMENT_HEADER_LEN;
    let mut min_lsn = min_lsn;
    let max_len = bytes.len() as u64;
    loop {
        let rest = bytes.get(at..).unwrap_or(&[]);
        let (lsn, durable_through, len) = match decode_record(rest, salt, min_lsn, max_len) {
            RecordScan::Record(r) => (r.lsn(), r.durable_through_lsn(), r.len()),
            RecordScan::Commit(m) => (m.lsn, m.durable_through_lsn, COMMIT_MARKER_LEN),
            RecordScan::EndOfData | RecordScan::Defect(_) => break,
        };
        vouching.record(lsn, durable_through, at);
        min_lsn = lsn + 1;
        at += len;
    }
    vouching.first_unvouched().unwrap_or(at)
}
