//! The last segment of a log as recovery is about to see it, kept so that a failed check can
//! say what was on disk before recovery cut or rejected it.

use seglog_segment::format::{decode_record, RecordScan};
use std::path::Path;

/// The last segment file's name and bytes.
#[derive(Debug, Clone, Default)]
pub struct SegmentSnapshot {
    name: String,
    bytes: Vec<u8>,
}

impl SegmentSnapshot {
    /// Reads the last `*.seg` file of `dir` (empty when there is none).
    pub fn take(dir: &Path) -> SegmentSnapshot {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".seg"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let name = names.pop().unwrap_or_default();
        let bytes = std::fs::read(dir.join(&name)).unwrap_or_default();
        SegmentSnapshot { name, bytes }
    }
}

/// The end of the segment: the last records, the damage, and every valid record after the
/// damage with its durability hint.
impl std::fmt::Display for SegmentSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, bytes) = (&self.name, &self.bytes);
        let a = seglog_segment::inspect::analyze_segment(bytes, 0);
        writeln!(
            f,
            "{name}: {} bytes, {} valid records, last LSN {}, data end {}, damage {:?}",
            bytes.len(),
            a.record_offsets.len(),
            a.last_lsn,
            a.data_end,
            a.damage
        )?;
        for &off in a.record_offsets.iter().rev().take(4).rev() {
            if let Some(r) = a.record(bytes, off) {
                writeln!(
                    f,
                    "  @{off} lsn {} durable_through {} {} seq {}..{}",
                    r.lsn(),
                    r.durable_through_lsn(),
                    String::from_utf8_lossy(r.execution_id()),
                    r.first_seq(),
                    r.last_seq()
                )?;
            }
        }
        let salt = a.header.as_ref().map_or(0, |h| h.segment_number);
        let tail = bytes.get(a.data_end as usize..).unwrap_or(&[]);
        let nonzero = tail.iter().filter(|&&b| b != 0).count();
        let first_nonzero = tail.iter().position(|&b| b != 0);
        writeln!(
            f,
            "  non-zero bytes after the data end: {nonzero} (first at +{first_nonzero:?})"
        )?;
        let mut shown = 0;
        for at in a.data_end as usize + 1..bytes.len().saturating_sub(48) {
            if let RecordScan::Record(r) =
                decode_record(&bytes[at..], salt, a.last_lsn + 1, bytes.len() as u64)
            {
                shown += 1;
                if shown > 8 {
                    writeln!(f, "  …")?;
                    break;
                }
                writeln!(
                    f,
                    "  after the damage @{at}: lsn {} durable_through {} {} seq {}..{}",
                    r.lsn(),
                    r.durable_through_lsn(),
                    String::from_utf8_lossy(r.execution_id()),
                    r.first_seq(),
                    r.last_seq()
                )?;
            }
        }
        Ok(())
    }
}
