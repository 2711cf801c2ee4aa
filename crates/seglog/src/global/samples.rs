//! A sparse, in-memory LSN → offset map per segment, so that a read in global order starts
//! near its position instead of at the start of the log or of a segment.
//!
//! Per segment it keeps one `(lsn, offset)` sample every [`SAMPLE_EVERY_BYTES`] of records,
//! so a lookup walks at most that many bytes (plus one record) before the first record it
//! wants. Samples are built on first use: a sealed segment's from its index checkpoint when
//! it has a valid one (a few bytes per record, no segment read), else by one scan of the
//! segment; the active segment's are extended, on each use, over what became durable since.
//! Nothing is written to disk: the format is unchanged and a reopen starts empty.
//!
//! Invariants: a sample names the start of a durable record whose LSN it gives (segments are
//! append-only and sealed ones immutable, and segment numbers are never reused, so a sample
//! never goes stale while its segment exists); samples of segments that left the log
//! (compaction) are dropped at the next lookup. A checkpoint is only a hint: a walk that
//! fails from a checkpoint's sample rescans the segment (`forget`).
//!
//! A *clustered* segment (docs/format.md §3.5) holds its records grouped by execution, so no
//! walk in file order yields LSN order: for it the map is dense instead, every record's
//! `(lsn, offset)` sorted by LSN ([`LsnSamples::clustered_order`]), 16 bytes per record while
//! global reads use the segment. Built the same way (checkpoint, else one scan).

use crate::{Error, Result};
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::io::FileSystem;
use seglog_segment::{RecordPosition, SegmentInfo, SegmentLog};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of records between two samples: the longest walk to a position within a segment.
/// Memory: 16 bytes per sample, 32 KiB for a full 128 MiB segment.
pub(crate) const SAMPLE_EVERY_BYTES: u64 = 64 * 1024;

/// The samples of one segment.
#[derive(Debug, Clone, Default)]
struct SegmentSamples {
    /// `(lsn, offset)` of sampled records, both increasing.
    points: Vec<(u64, u64)>,
    /// Offset up to which records have been looked at (the end of the last one).
    covered_to: u64,
    /// Taken from a checkpoint (a hint to verify), not from the records themselves.
    from_checkpoint: bool,
}

impl SegmentSamples {
    fn add(&mut self, lsn: u64, offset: u64, end: u64) {
        let due = self
            .points
            .last()
            .is_none_or(|&(_, at)| offset >= at + SAMPLE_EVERY_BYTES);
        if due {
            self.points.push((lsn, offset));
        }
        self.covered_to = end;
    }

    /// Where to start walking for the first record with an LSN above `after_lsn`: the last
    /// sample at or below it (its offset and LSN), else the first record.
    fn start_for(&self, after_lsn: u64) -> Option<(u64, u64)> {
        let i = self.points.partition_point(|&(lsn, _)| lsn <= after_lsn);
        i.checked_sub(1)
            .map(|i| (self.points[i].1, self.points[i].0))
    }
}

/// The samples of every segment looked up so far, by segment number.
/// Every record of a clustered segment as `(lsn, offset)`, sorted by LSN.
#[derive(Debug, Default)]
pub(crate) struct ClusteredOrder {
    pub by_lsn: Vec<(u64, u64)>,
    pub from_checkpoint: bool,
}

#[derive(Default)]
pub(crate) struct LsnSamples {
    by_segment: parking_lot::Mutex<HashMap<u64, Arc<SegmentSamples>>>,
    clustered: parking_lot::Mutex<HashMap<u64, Arc<ClusteredOrder>>>,
    /// Records read to build samples (scans of segments without a usable checkpoint).
    pub scanned_records: AtomicU64,
    /// Records global reads stepped over or returned (see `global::records_after`).
    pub walked_records: AtomicU64,
}

impl LsnSamples {
    /// The offset in `segment` from which to walk to the first record with an LSN above
    /// `after_lsn`, and, when that offset came from a checkpoint, the LSN the checkpoint says
    /// the record there has: the walk checks it (a checkpoint is a hint: one naming smaller
    /// LSNs than its records hold would start the walk past records it must return) and, if
    /// it fails there, [`Self::forget`]s the samples. Builds or extends the segment's samples
    /// as needed.
    ///
    /// # Errors
    /// Reading the segment: I/O, corruption.
    pub fn start_for<F: FileSystem>(
        &self,
        log: &SegmentLog<F>,
        dir: &Path,
        segment: &SegmentInfo,
        after_lsn: u64,
    ) -> Result<(u64, Option<u64>)> {
        let known = self.by_segment.lock().get(&segment.number).cloned();
        let samples = match known {
            Some(s) if s.covered_to >= segment.data_end => s,
            known => {
                // Built outside the lock: a scan may take a while, and two readers building
                // the same samples at once only do the work twice.
                let built = Arc::new(build(
                    log,
                    dir,
                    segment,
                    known.as_deref(),
                    &self.scanned_records,
                )?);
                self.by_segment.lock().insert(segment.number, built.clone());
                built
            }
        };
        Ok(match samples.start_for(after_lsn) {
            Some((offset, lsn)) if samples.from_checkpoint => (offset, Some(lsn)),
            Some((offset, _)) => (offset, None),
            None => (SEGMENT_HEADER_LEN as u64, None),
        })
    }

    /// Drops the samples of `segment` (a walk from one of them failed), so the next lookup
    /// scans the segment itself.
    pub fn forget(&self, segment: u64) {
        self.by_segment.lock().remove(&segment);
        self.clustered.lock().remove(&segment);
    }

    /// Every record of the clustered (hence sealed) `segment`, sorted by LSN: from its index
    /// checkpoint when valid (a hint: a read that fails from it calls [`Self::forget`]), else
    /// by one scan.
    ///
    /// # Errors
    /// Errors reading the segment.
    pub fn clustered_order<F: FileSystem>(
        &self,
        log: &SegmentLog<F>,
        dir: &Path,
        segment: &SegmentInfo,
    ) -> Result<Arc<ClusteredOrder>> {
        if let Some(known) = self.clustered.lock().get(&segment.number) {
            return Ok(known.clone());
        }
        self.build_clustered_order(log, Some(dir), segment)
    }

    /// [`Self::clustered_order`] from the segment's records alone: for a read that failed
    /// from the checkpoint's order (loading the checkpoint again would fail it again).
    ///
    /// # Errors
    /// Errors reading the segment.
    pub fn scan_clustered_order<F: FileSystem>(
        &self,
        log: &SegmentLog<F>,
        segment: &SegmentInfo,
    ) -> Result<Arc<ClusteredOrder>> {
        self.build_clustered_order(log, None, segment)
    }

    /// Builds and keeps the order of `segment`: from the checkpoint in `checkpoint_dir` when
    /// given and valid, else by one scan.
    fn build_clustered_order<F: FileSystem>(
        &self,
        log: &SegmentLog<F>,
        checkpoint_dir: Option<&Path>,
        segment: &SegmentInfo,
    ) -> Result<Arc<ClusteredOrder>> {
        // The checkpoint's table is a hint: one that names an LSN twice is not used.
        let from_checkpoint = checkpoint_dir
            .and_then(|dir| seglog_index::checkpoint::load(log.file_system(), dir, segment))
            .map(|cp| {
                let mut by_lsn: Vec<(u64, u64)> = cp
                    .records
                    .iter()
                    .map(|r| (r.lsn, u64::from(r.offset)))
                    .collect();
                by_lsn.sort_unstable();
                by_lsn
            })
            .filter(|by_lsn| shared_lsn(by_lsn).is_none());
        let order = match from_checkpoint {
            Some(by_lsn) => ClusteredOrder {
                by_lsn,
                from_checkpoint: true,
            },
            None => {
                let mut by_lsn = Vec::new();
                for record in log.records_from(RecordPosition {
                    segment: segment.number,
                    offset: SEGMENT_HEADER_LEN as u64,
                })? {
                    let record = record?;
                    by_lsn.push((record.view().lsn(), record.position().offset));
                }
                self.scanned_records
                    .fetch_add(by_lsn.len() as u64, Ordering::Relaxed);
                by_lsn.sort_unstable();
                // A global position is never shared (each record checks only against the
                // segment's bounds when read, so two of one LSN would both come out).
                if let Some((lsn, a, b)) = shared_lsn(&by_lsn) {
                    return Err(Error::Corruption(format!(
                        "segment {} holds two records of LSN {lsn} (offsets {a} and {b})",
                        segment.number
                    )));
                }
                ClusteredOrder {
                    by_lsn,
                    from_checkpoint: false,
                }
            }
        };
        let order = Arc::new(order);
        self.clustered.lock().insert(segment.number, order.clone());
        Ok(order)
    }

    /// Keeps only the samples of `segments` (the others left the log).
    pub fn retain(&self, segments: &[SegmentInfo]) {
        let mut by_segment = self.by_segment.lock();
        if by_segment.len() > segments.len() {
            by_segment.retain(|n, _| segments.iter().any(|s| s.number == *n));
        }
        drop(by_segment);
        let mut clustered = self.clustered.lock();
        if !clustered.is_empty() {
            clustered.retain(|n, _| segments.iter().any(|s| s.number == *n && s.clustered));
        }
    }
}

/// Two neighbours of an LSN-sorted table with one LSN: `(lsn, offset, offset)`.
fn shared_lsn(by_lsn: &[(u64, u64)]) -> Option<(u64, u64, u64)> {
    by_lsn
        .windows(2)
        .find(|w| w[0].0 == w[1].0)
        .map(|w| (w[0].0, w[0].1, w[1].1))
}

/// The samples of `segment`: `known` extended over its records after `known.covered_to`, or
/// new ones (from its checkpoint when sealed and it has a valid one).
fn build<F: FileSystem>(
    log: &SegmentLog<F>,
    dir: &Path,
    segment: &SegmentInfo,
    known: Option<&SegmentSamples>,
    scanned_records: &AtomicU64,
) -> Result<SegmentSamples> {
    if known.is_none() && segment.sealed {
        if let Some(cp) = seglog_index::checkpoint::load(log.file_system(), dir, segment) {
            let mut samples = SegmentSamples {
                from_checkpoint: true,
                ..SegmentSamples::default()
            };
            for r in &cp.records {
                samples.add(r.lsn, u64::from(r.offset), segment.data_end);
            }
            samples.covered_to = segment.data_end;
            return Ok(samples);
        }
    }
    let mut samples = known.cloned().unwrap_or_default();
    let from = samples.covered_to.max(SEGMENT_HEADER_LEN as u64);
    let mut scanned = 0;
    for record in log.records_from(RecordPosition {
        segment: segment.number,
        offset: from,
    })? {
        let record = record?;
        scanned += 1;
        let offset = record.position().offset;
        samples.add(
            record.view().lsn(),
            offset,
            offset + record.bytes().len() as u64,
        );
    }
    // The walk covered the segment's durable bytes as they were when it ran, which reach at
    // least `segment.data_end` (a durable end only grows): trailing commit markers included.
    samples.covered_to = samples.covered_to.max(from).max(segment.data_end);
    scanned_records.fetch_add(scanned, Ordering::Relaxed);
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spaced_and_lookups_start_at_or_before_the_position() {
        let mut s = SegmentSamples::default();
        // Records of 1 KiB from offset 64, LSNs 10, 12, 14, … (compaction leaves gaps).
        for i in 0..1000u64 {
            s.add(10 + 2 * i, 64 + i * 1024, 64 + (i + 1) * 1024);
        }
        assert_eq!(s.covered_to, 64 + 1000 * 1024);
        assert!(s
            .points
            .windows(2)
            .all(|w| w[1].1 - w[0].1 >= SAMPLE_EVERY_BYTES && w[1].0 > w[0].0));
        assert_eq!(s.points.len(), 1000usize.div_ceil(64));
        assert_eq!(s.start_for(0), None, "before the first record");
        for after in [9, 10, 11, 500, 1000, 2007, 5000] {
            // None: from the first record (the header's end), always safe.
            let (start, lsn) = s.start_for(after).unwrap_or((SEGMENT_HEADER_LEN as u64, 0));
            assert!(
                lsn == 0 || s.points.contains(&(lsn, start)),
                "{after}: ({lsn}, {start}) is not a sample"
            );
            assert!(lsn <= after, "sample {lsn} past {after}");
            // The walk from there is at most one sample interval long.
            let i = if after < 10 {
                0
            } else {
                ((after - 10) / 2 + 1).min(1000)
            };
            let first_wanted = 64 + i * 1024;
            assert!(
                first_wanted - start <= SAMPLE_EVERY_BYTES + 1024,
                "{after}: walk from {start}"
            );
        }
    }
}
