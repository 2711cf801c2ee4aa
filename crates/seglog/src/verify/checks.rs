//! The checks [`crate::Log::verify`] and [`crate::verify_dir`] make of one segment and of the
//! log as a whole: its index checkpoint against its records, entry by entry, and the records
//! against each other (dense sequences, one tenant per execution), as an index rebuilt from
//! them would see them.

use super::CheckpointCheck;
use seglog_index::checkpoint::{checkpoint_file_name, decode};
use seglog_index::{ExecutionIndex, IndexedRecord, Location};
use seglog_segment::inspect::{read_file, SegmentAnalysis};
use seglog_segment::io::FileSystem;
use seglog_segment::{RecordPosition, SegmentInfo};
use std::path::Path;

/// Problems listed at most; past that only counted.
pub(crate) const MAX_PROBLEMS: usize = 20;

/// The state of a sealed segment's checkpoint (`bytes`: the whole segment).
pub(crate) fn check_checkpoint<F: FileSystem>(
    fs: &F,
    dir: &Path,
    info: &SegmentInfo,
    bytes: &[u8],
    analysis: &SegmentAnalysis,
) -> CheckpointCheck {
    let path = dir.join(checkpoint_file_name(info.first_lsn));
    let cp_bytes = match read_file(fs, &path) {
        Ok(b) => b,
        Err(seglog_segment::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return CheckpointCheck::Missing
        }
        Err(e) => return CheckpointCheck::Damaged(e.to_string()),
    };
    match decode(&cp_bytes, info) {
        Ok(cp) => match seglog_index::checkpoint::disagreement(bytes, analysis, &cp) {
            None => CheckpointCheck::Valid {
                records: cp.records.len(),
            },
            Some(why) => CheckpointCheck::Damaged(why),
        },
        // A checkpoint of another version of this segment (rewritten, or cut by recovery),
        // or of a checkpoint version a newer build wrote (a downgrade), is harmless: the
        // open ignores it. Anything else under a final name is damage.
        Err(defect) if defect.is_harmless() => CheckpointCheck::Stale(defect.to_string()),
        Err(defect) => CheckpointCheck::Damaged(defect.to_string()),
    }
}

/// An index rebuilt from the records, collecting what contradicts it.
pub(crate) struct Rebuilt {
    pub index: ExecutionIndex,
    pub problems: Vec<String>,
    pub problem_count: usize,
}

impl Rebuilt {
    pub fn new() -> Self {
        Rebuilt {
            index: ExecutionIndex::new(),
            problems: Vec::new(),
            problem_count: 0,
        }
    }

    pub fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }

    /// Adds every intact record of a segment (`bytes`: the whole segment).
    pub fn add_segment(&mut self, number: u64, bytes: &[u8], analysis: &SegmentAnalysis) {
        for &offset in &analysis.record_offsets {
            let Some(r) = analysis.record(bytes, offset) else {
                continue;
            };
            let (Ok(execution), Ok(tenant)) = (
                std::str::from_utf8(r.execution_id()),
                std::str::from_utf8(r.tenant_id()),
            ) else {
                self.problem(format!(
                    "segment {number} offset {offset}: an id is not UTF-8"
                ));
                continue;
            };
            let location = match Location::from_position(RecordPosition {
                segment: number,
                offset,
            }) {
                Ok(l) => l,
                Err(e) => {
                    self.problem(format!("segment {number} offset {offset}: {e}"));
                    continue;
                }
            };
            let inserted = self.index.insert(&IndexedRecord {
                execution,
                tenant,
                lsn: r.lsn(),
                location,
                first_seq: r.first_seq(),
                event_count: r.event_count(),
                timestamp_unix_nanos: r.timestamp_unix_nanos(),
            });
            if let Err(e) = inserted {
                self.problem(format!("segment {number} offset {offset}: {e}"));
            }
        }
    }
}
