//! Opening a log with offloaded segments: their records enter the index from their
//! checkpoints *in log order*, between the segments recovery reads (an execution's records
//! must be indexed in LSN order, and offloaded segments may sit between local ones), and an
//! offload a crash interrupted (stub durable, file still there) is finished.
//!
//! What must hold: an offloaded segment whose checkpoint is missing or does not fit fails
//! the open (its records would otherwise be lost without a word); a stub whose segment file
//! is still there names that very segment (number and salt), or the open fails; offloaded
//! segments lie before the log's last local segment and never share a number with a local
//! one, so the writer never reuses their numbers (it numbers on from the local maximum).

use super::OffloadedSegment;
use crate::{Error, Result};
use seglog_index::IndexRebuilder;
use seglog_segment::format::RecordRef;
use seglog_segment::io::FileSystem;
use seglog_segment::{PrefixClaim, RecoveryVisitor, SegmentInfo};
use std::collections::VecDeque;
use std::path::Path;

/// Offloads a crash interrupted: stubs written, the segment files still in the directory.
/// The open finishes them once the log is assembled (the same steps as an offload after
/// its stub).
#[derive(Debug, Default)]
pub(crate) struct Finishing {
    pub segments: Vec<OffloadedSegment>,
}

/// A [`RecoveryVisitor`] that feeds the index rebuilder the offloaded segments' checkpoints
/// at their place in log order.
pub(crate) struct OffloadedRecovery<'v, 'r, F: FileSystem> {
    inner: &'v mut IndexRebuilder<'r, F>,
    dir: &'v Path,
    pending: VecDeque<OffloadedSegment>,
    applied: Vec<OffloadedSegment>,
    still_local: Vec<OffloadedSegment>,
    error: Option<Error>,
}

impl<'v, 'r, F: FileSystem> OffloadedRecovery<'v, 'r, F> {
    /// `stubs`: every stub of the directory, in log order.
    pub fn new(
        inner: &'v mut IndexRebuilder<'r, F>,
        dir: &'v Path,
        stubs: Vec<OffloadedSegment>,
    ) -> Self {
        OffloadedRecovery {
            inner,
            dir,
            pending: stubs.into(),
            applied: Vec::new(),
            still_local: Vec::new(),
            error: None,
        }
    }

    /// Applies every offloaded segment before local segment `local` (and sets aside the
    /// stub of `local` itself, an interrupted offload).
    fn reach(&mut self, local: &SegmentInfo) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(Error::Corruption(e.to_string()));
        }
        while let Some(next) = self.pending.front() {
            if next.first_lsn > local.first_lsn {
                break;
            }
            let Some(next) = self.pending.pop_front() else {
                break;
            };
            if next.first_lsn == local.first_lsn {
                if next.number != local.number || next.record_salt != local.record_salt {
                    return Err(self.fail(Error::Corruption(format!(
                        "the offload stub of first LSN {} names segment {} (salt {:x}), but \
                         the segment file there is segment {} (salt {:x})",
                        next.first_lsn,
                        next.number,
                        next.record_salt,
                        local.number,
                        local.record_salt
                    ))));
                }
                self.still_local.push(next);
                continue;
            }
            match self.inner.apply_offloaded(&next.info(self.dir)) {
                Ok(_) => self.applied.push(next),
                Err(e) => return Err(self.fail(e.into())),
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Error {
        let shown = Error::Corruption(e.to_string());
        self.error.get_or_insert(e);
        shown
    }

    /// After recovery: the offloaded segments (applied to the index) and the interrupted
    /// offloads to finish, checked against the recovered local segments (`None`: the open
    /// failed; then `Ok(None)` unless this visitor's own failure caused it).
    pub fn finish(
        mut self,
        local: Option<&[SegmentInfo]>,
    ) -> Result<Option<(Vec<OffloadedSegment>, Finishing)>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let Some(local) = local else {
            return Ok(None);
        };
        // The last segment may hold no record (nothing called `reach` for it): the offloaded
        // segments before it are applied now, still in log order.
        if let Some(last) = local.iter().max_by_key(|s| s.first_lsn) {
            self.reach(last)?;
        }
        if let Some(after) = self.pending.front() {
            return Err(Error::Corruption(format!(
                "offloaded segment {} (first LSN {}) lies after the log's last segment: the \
                 local segments after it are gone (restore the log from its bucket)",
                after.number, after.first_lsn
            )));
        }
        let max_local = local.iter().map(|s| s.number).max().unwrap_or(0);
        for s in &self.applied {
            if s.number > max_local || local.iter().any(|l| l.number == s.number) {
                return Err(Error::Corruption(format!(
                    "offloaded segment {} shares its number with a local segment, or is \
                     numbered after every local one (its number could be reused)",
                    s.number
                )));
            }
        }
        Ok(Some((
            self.applied,
            Finishing {
                segments: self.still_local,
            },
        )))
    }
}

fn to_segment_error(segment: &SegmentInfo, e: Error) -> seglog_segment::Error {
    seglog_segment::Error::Corruption {
        segment: segment.number,
        offset: 0,
        reason: e.to_string(),
    }
}

impl<F: FileSystem> RecoveryVisitor for OffloadedRecovery<'_, '_, F> {
    fn wants_scan(&mut self, segment: &SegmentInfo, next_first_lsn: Option<u64>) -> bool {
        // On failure the error is kept and reported by `finish`; the scan it asks for then
        // fails at the first record (`record` sees the error).
        if self.reach(segment).is_err() {
            return true;
        }
        self.inner.wants_scan(segment, next_first_lsn)
    }

    fn skipped_last_lsn(&self) -> Option<u64> {
        self.inner.skipped_last_lsn()
    }

    fn prefix_claim(&mut self, segment: &SegmentInfo) -> Option<PrefixClaim> {
        // Asked before anything is read: no offloaded segment is applied here.
        self.inner.prefix_claim(segment)
    }

    fn take_prefix(&mut self, segment: &SegmentInfo) -> bool {
        if self.reach(segment).is_err() {
            return false;
        }
        self.inner.take_prefix(segment)
    }

    fn record(
        &mut self,
        segment: &SegmentInfo,
        offset: u64,
        record: &RecordRef<'_>,
    ) -> seglog_segment::Result<()> {
        self.reach(segment)
            .map_err(|e| to_segment_error(segment, e))?;
        self.inner.record(segment, offset, record)
    }
}
