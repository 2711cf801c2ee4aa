//! Read-ahead for reads: the index says where every record of a read is before a byte of it
//! is read, so the segments are told first ([`SegmentFile::will_need`]) and, on a cold page
//! cache, the disk reads all of them together instead of one fault at a time.
//!
//! Invariants: a hint never changes what a read returns, and never fails it (its errors are
//! only traced). One read-only handle per segment is kept for the hints, opened on first use
//! and dropped as soon as compaction changes the layout: a handle on a removed segment would
//! keep its space allocated.

use crate::log::Log;
use parking_lot::Mutex;
use seglog_index::EventLocation;
use seglog_segment::format::REC_LEN_OFFSET;
use seglog_segment::io::{FileSystem, SegmentFile};
use std::collections::HashMap;
use std::sync::Arc;

/// Bytes hinted from each record's start: a record of up to 4 KiB is covered whatever its
/// alignment (at most two pages, read as one request). Longer records get the rest hinted
/// once their length is known.
const RECORD_HINT_BYTES: u64 = 4096;

/// Ranges closer than this are hinted as one: reading the gap costs less than one more
/// request.
const COALESCE_GAP_BYTES: u64 = 16 << 10;

/// The read-only handles the hints go through, valid for one layout of the log.
pub(crate) struct ReadAhead<F: FileSystem> {
    handles: Mutex<Handles<F>>,
}

struct Handles<F: FileSystem> {
    /// The `layout_epoch` the handles belong to.
    epoch: u64,
    by_segment: HashMap<u64, Arc<F::File>>,
}

impl<F: FileSystem> ReadAhead<F> {
    pub fn new() -> Self {
        ReadAhead {
            handles: Mutex::new(Handles {
                epoch: 0,
                by_segment: HashMap::new(),
            }),
        }
    }

    /// Drops every handle: the layout moved to `epoch` (compaction), or the log closes
    /// (`u64::MAX`: no handle is opened again).
    pub fn forget(&self, epoch: u64) {
        let mut handles = self.handles.lock();
        handles.epoch = epoch;
        handles.by_segment.clear();
    }
}

/// Sorted, coalesced `(offset, length)` ranges per segment.
fn coalesce(mut ranges: Vec<(u64, u64, u64)>) -> Vec<(u64, Vec<(u64, u64)>)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, Vec<(u64, u64)>)> = Vec::new();
    for (segment, offset, len) in ranges {
        let end = offset.saturating_add(len);
        match out.last_mut() {
            Some((s, list)) if *s == segment => match list.last_mut() {
                Some((start, l)) if offset <= start.saturating_add(*l) + COALESCE_GAP_BYTES => {
                    *l = (*l).max(end - *start);
                }
                _ => list.push((offset, len)),
            },
            _ => out.push((segment, vec![(offset, len)])),
        }
    }
    out
}

impl<F: FileSystem> Log<F> {
    /// Hints the records at `locations` (looked up at layout `epoch`); on a cold cache, then
    /// also the rest of every record longer than the first hint. Returns whether reads were
    /// started.
    pub(crate) fn read_ahead(&self, locations: &[EventLocation], epoch: u64) -> bool {
        let mut records: Vec<(u64, u64)> = locations
            .iter()
            .map(|l| {
                let p = l.location.position();
                (p.segment, p.offset)
            })
            .collect();
        records.dedup();
        let first: Vec<_> = records
            .iter()
            .map(|&(s, o)| (s, o, RECORD_HINT_BYTES))
            .collect();
        if !self.hint(coalesce(first), epoch) {
            return false;
        }
        self.shared.counters.record_cold_read();
        // Cold: every record's first page is on its way. Their lengths (in those pages) say
        // which records run on past the first hint; the rest of those goes now too, before
        // the read waits on any of them.
        let mut rest = Vec::new();
        let mut bytes: Option<(u64, bytes::Bytes)> = None;
        for &(segment, offset) in &records {
            if bytes.as_ref().is_none_or(|(s, _)| *s != segment) {
                bytes = self
                    .shared
                    .segments
                    .segment_bytes(segment)
                    .ok()
                    .map(|b| (segment, b));
            }
            let Some((_, b)) = &bytes else { continue };
            let at = offset as usize + REC_LEN_OFFSET;
            let Some(len) = b.get(at..at + 4).and_then(|f| f.try_into().ok()) else {
                continue;
            };
            let len = u64::from(u32::from_le_bytes(len));
            if len > RECORD_HINT_BYTES {
                rest.push((segment, offset + RECORD_HINT_BYTES, len - RECORD_HINT_BYTES));
            }
        }
        if !rest.is_empty() {
            self.hint(coalesce(rest), epoch);
        }
        true
    }

    /// Hints `ranges` per segment through a read-only handle of each. Returns whether any
    /// reads were started.
    fn hint(&self, ranges: Vec<(u64, Vec<(u64, u64)>)>, epoch: u64) -> bool {
        let mut started = false;
        for (segment, list) in ranges {
            let Some(file) = self.hint_handle(segment, epoch) else {
                continue;
            };
            match file.will_need(&list) {
                Ok(s) => started |= s,
                Err(e) => tracing::trace!(segment, error = %e, "read-ahead hint failed"),
            }
        }
        started
    }

    /// The read-only handle of `segment` for hints, opened if need be; `None` when the
    /// layout moved on since `epoch` or the segment is gone.
    fn hint_handle(&self, segment: u64, epoch: u64) -> Option<Arc<F::File>> {
        let read_ahead = &self.shared.read_ahead;
        {
            let handles = read_ahead.handles.lock();
            if handles.epoch != epoch {
                return None;
            }
            if let Some(file) = handles.by_segment.get(&segment) {
                return Some(file.clone());
            }
        }
        let info = self
            .shared
            .segments
            .segments()
            .into_iter()
            .find(|i| i.number == segment)?;
        let fs = self.shared.segments.file_system();
        let file = match fs.open_read_only(&info.path) {
            Ok(f) => Arc::new(f),
            Err(e) => {
                tracing::trace!(segment, error = %e, "cannot open a segment for read-ahead");
                return None;
            }
        };
        let mut handles = read_ahead.handles.lock();
        // Compaction may have swapped the segments meanwhile: then the handle goes.
        if handles.epoch != epoch {
            return None;
        }
        Some(handles.by_segment.entry(segment).or_insert(file).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_sorted_per_segment_and_near_ones_merge() {
        let merged = coalesce(vec![
            (2, 100, 4096),
            (1, 50_000, 4096),
            (1, 0, 4096),
            (1, 5000, 4096),
            (2, 4196 + COALESCE_GAP_BYTES + 1, 10),
        ]);
        assert_eq!(
            merged,
            vec![
                (1, vec![(0, 9096), (50_000, 4096)]),
                (2, vec![(100, 4096), (4196 + COALESCE_GAP_BYTES + 1, 10)]),
            ]
        );
    }

    #[test]
    fn a_range_inside_another_does_not_shorten_it() {
        assert_eq!(
            coalesce(vec![(1, 0, 10_000), (1, 100, 10)]),
            vec![(1, vec![(0, 10_000)])]
        );
    }
}
