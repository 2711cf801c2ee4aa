//! Whether a decoded checkpoint says what its segment's records say: what an open would put
//! in its index from the checkpoint must be what the records say, entry by entry. Used by
//! verification (the library's and the CLI's `stats`).

use super::DecodedCheckpoint;
use seglog_segment::inspect::SegmentAnalysis;

/// Where `cp` disagrees with the records of its segment (`bytes`, analysed as `analysis`),
/// or `None` when it says exactly what they say.
pub fn disagreement(
    bytes: &[u8],
    analysis: &SegmentAnalysis,
    cp: &DecodedCheckpoint,
) -> Option<String> {
    let offsets = &analysis.record_offsets;
    if cp.records.len() != offsets.len() {
        return Some(format!(
            "lists {} records, the segment has {}",
            cp.records.len(),
            offsets.len()
        ));
    }
    let id = |i: u32| cp.strings.get(i as usize).map(String::as_bytes);
    for (entry, &offset) in cp.records.iter().zip(offsets) {
        let Some(r) = analysis.record(bytes, offset) else {
            return Some(format!("no record at offset {offset}"));
        };
        let same = u64::from(entry.offset) == offset
            && entry.lsn == r.lsn()
            && entry.first_seq == r.first_seq()
            && entry.event_count == r.event_count()
            && entry.timestamp_unix_nanos == r.timestamp_unix_nanos()
            && id(entry.execution) == Some(r.execution_id())
            && id(entry.tenant) == Some(r.tenant_id());
        if !same {
            return Some(format!(
                "its entry for the record at offset {offset} (LSN {}) does not match the record",
                r.lsn()
            ));
        }
    }
    None
}
