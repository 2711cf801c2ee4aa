//! Verification of a log with offloaded segments (their file left the directory: see
//! docs/scale-out.md, "Read-through"). Their bytes are not here to read; what is checked is
//! what the directory holds for them: a valid stub, a checkpoint that decodes as the
//! segment's, and whose records fit the index rebuilt from the segments before them. Their
//! records enter that index in log order, so the checks of later records (dense sequences,
//! one tenant per execution) see them.

use super::checks::Rebuilt;
use super::{CheckpointCheck, Health};
use crate::offloaded::OffloadedSegment;
use seglog_index::checkpoint::{checkpoint_file_name, decode};
use seglog_segment::inspect::read_file;
use seglog_segment::io::FileSystem;
use std::collections::VecDeque;
use std::path::Path;

/// What verification found of an offloaded segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedOffload {
    /// Segment number.
    pub number: u64,
    /// LSN of its first record.
    pub first_lsn: u64,
    /// Where its bytes are (the object key, for `seglog-tier`).
    pub location: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// Its checkpoint, which the open indexes its records from: anything but `Valid` means
    /// the log cannot be opened without restoring it (or its segment) from the bucket.
    pub checkpoint: CheckpointCheck,
}

impl VerifiedOffload {
    /// `Clean` when its checkpoint is valid; otherwise `Corrupt` (its records cannot be
    /// indexed).
    pub fn health(&self) -> Health {
        match self.checkpoint {
            CheckpointCheck::Valid { .. } => Health::Clean,
            _ => Health::Corrupt,
        }
    }
}

/// The offloaded segments still to verify, in log order.
pub(super) struct Pending(VecDeque<OffloadedSegment>);

impl Pending {
    /// The stubs of `dir` (a damaged stub is an index problem: its records are lost).
    pub fn list<F: FileSystem>(fs: &F, dir: &Path, rebuilt: &mut Rebuilt) -> Self {
        match crate::offloaded::stub::list(fs, dir) {
            Ok((stubs, _)) => Pending(stubs.into()),
            Err(e) => {
                rebuilt.problem(e.to_string());
                Pending(VecDeque::new())
            }
        }
    }

    /// Verifies every offloaded segment before `before_lsn` (a stub naming `before_lsn`
    /// itself, an offload a crash interrupted, is left to the local segment). Returns the
    /// greatest LSN they hold.
    pub fn verify_before<F: FileSystem>(
        &mut self,
        fs: &F,
        dir: &Path,
        before_lsn: u64,
        rebuilt: &mut Rebuilt,
        out: &mut Vec<VerifiedOffload>,
    ) -> u64 {
        let mut last = 0;
        while self.0.front().is_some_and(|s| s.first_lsn <= before_lsn) {
            let Some(s) = self.0.pop_front() else { break };
            if s.first_lsn == before_lsn {
                continue;
            }
            last = last.max(s.last_lsn);
            out.push(verify_one(fs, dir, &s, rebuilt));
        }
        last
    }
}

impl Pending {
    /// After the last local segment: the stubs left lie after it, which no open accepts
    /// (the local segments after them are gone). Each is listed, checked and reported.
    pub fn verify_rest<F: FileSystem>(
        &mut self,
        fs: &F,
        dir: &Path,
        rebuilt: &mut Rebuilt,
        out: &mut Vec<VerifiedOffload>,
    ) {
        while let Some(s) = self.0.pop_front() {
            rebuilt.problem(format!(
                "offloaded segment {} (first LSN {}) lies after the log's last local segment: \
                 the open refuses it (restore the log from its bucket)",
                s.number, s.first_lsn
            ));
            out.push(verify_one(fs, dir, &s, rebuilt));
        }
    }
}

/// The open's numbering rule (format.md §7): an offloaded segment is numbered below the
/// greatest local segment number and shares no number with a local segment, or the writer
/// could give its number out again.
pub(super) fn check_numbers(local: &[u64], offloaded: &[VerifiedOffload], rebuilt: &mut Rebuilt) {
    let max_local = local.iter().copied().max().unwrap_or(0);
    for o in offloaded {
        if o.number >= max_local || local.contains(&o.number) {
            rebuilt.problem(format!(
                "offloaded segment {} shares its number with a local segment, or is numbered \
                 after every local one: the open refuses it",
                o.number
            ));
        }
    }
}

fn verify_one<F: FileSystem>(
    fs: &F,
    dir: &Path,
    s: &OffloadedSegment,
    rebuilt: &mut Rebuilt,
) -> VerifiedOffload {
    let info = s.info(dir);
    let path = dir.join(checkpoint_file_name(s.first_lsn));
    let checkpoint = match read_file(fs, &path) {
        Err(seglog_segment::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            CheckpointCheck::Missing
        }
        Err(e) => CheckpointCheck::Damaged(e.to_string()),
        Ok(bytes) => match decode(&bytes, &info) {
            Err(defect) if defect.is_harmless() => CheckpointCheck::Stale(defect.to_string()),
            Err(defect) => CheckpointCheck::Damaged(defect.to_string()),
            Ok(cp) => match u32::try_from(s.number)
                .map_err(|e| e.to_string())
                .and_then(|n| {
                    rebuilt
                        .index
                        .apply_checkpoint(n, &cp.strings, &cp.records)
                        .map_err(|e| e.to_string())
                }) {
                Ok(()) => CheckpointCheck::Valid {
                    records: cp.records.len(),
                },
                Err(why) => CheckpointCheck::Damaged(format!("does not fit the index: {why}")),
            },
        },
    };
    VerifiedOffload {
        number: s.number,
        first_lsn: s.first_lsn,
        location: s.location.clone(),
        bytes: s.data_end,
        checkpoint,
    }
}
