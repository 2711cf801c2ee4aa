//! The view compaction policies plan from ([`IndexView`]), built in two halves so that
//! appends wait for as little as possible: [`Gathered::take`] copies what the index holds
//! (every execution's figures and every record's position) under the index's lock, and
//! [`Gathered::finish`] sorts the positions and sums each execution's bytes after the lock
//! is released. (The sort is most of the work: tens of milliseconds per million records,
//! which appends would otherwise wait out on every retention pass.)
//!
//! Invariant: the segment table and the positions are taken under the same hold of the
//! lock, so they belong together (review 107: a compaction relocates records and installs
//! its segments under the write lock).

use crate::append::now_unix_nanos;
use seglog_compact::{ExecutionSummary, IndexView, SegmentSummary};
use std::collections::HashMap;

/// A view's raw material, copied under the index's lock.
pub(crate) struct Gathered {
    segments: Vec<SegmentSummary>,
    /// Every execution with an event, without `segments` and `bytes` yet.
    executions: Vec<ExecutionSummary>,
    /// Every record's `(segment << 32 | offset, index into executions)`.
    starts: Vec<(u64, usize)>,
}

impl Gathered {
    /// Every execution of `index`, as policies see it (no last events): also one whose
    /// appends are not all durable or published yet. A buffered append returned before the
    /// view was taken, so an erasure planned from the view must cover it (a commit round
    /// makes it durable at any time, the compaction's roll at the latest); `events` counts
    /// it, `durable_events` (what the segments' sizes hold, for retention by size) does not.
    /// Call with the index's lock held and `segments` read under it.
    pub(crate) fn take(
        index: &seglog_index::ExecutionIndex,
        segments: Vec<SegmentSummary>,
    ) -> Self {
        let live: Vec<&seglog_index::Execution> =
            index.executions().filter(|e| e.last_seq() > 0).collect();
        let mut starts = Vec::with_capacity(live.iter().map(|e| e.records().len()).sum());
        let mut executions = Vec::with_capacity(live.len());
        for (i, e) in live.iter().enumerate() {
            starts.extend(
                e.records()
                    .iter()
                    .map(|l| ((u64::from(l.segment) << 32) | u64::from(l.offset), i)),
            );
            executions.push(ExecutionSummary {
                id: e.id().to_owned(),
                tenant: index.tenant_of(e.id()).unwrap_or_default().to_owned(),
                events: e.last_seq(),
                durable_events: e.visible_seq(),
                created_lsn: e.created_lsn(),
                last_timestamp_unix_nanos: e.last_timestamp_unix_nanos(),
                segments: Vec::new(),
                bytes: 0,
                last_event: None,
            });
        }
        Gathered {
            segments,
            executions,
            starts,
        }
    }

    /// The view: each execution's segments, and the exact durable bytes its records hold
    /// in the segments listed, from where records start (the index keeps no sizes): a record
    /// runs to the next record of its segment, whatever execution that is, and the last to
    /// the segment's end of durable data; a record starting past that end is not durable yet
    /// and counts nothing, nor does one in a segment not listed (offloaded).
    pub(crate) fn finish(self) -> IndexView {
        let Gathered {
            segments,
            mut executions,
            mut starts,
        } = self;
        let ends: HashMap<u64, u64> = segments.iter().map(|s| (s.number, s.bytes)).collect();
        // Each segment's records in file order; so each execution meets its segments in
        // ascending order.
        starts.sort_unstable();
        for (k, &(at, i)) in starts.iter().enumerate() {
            let (segment, offset) = (at >> 32, at & u64::from(u32::MAX));
            let Some(e) = executions.get_mut(i) else {
                continue;
            };
            if e.segments.last() != Some(&segment) {
                e.segments.push(segment);
            }
            let end = ends.get(&segment).copied().unwrap_or(0);
            let next = starts
                .get(k + 1)
                .filter(|(next, _)| next >> 32 == segment)
                .map_or(end, |(next, _)| next & u64::from(u32::MAX));
            e.bytes += next.min(end).saturating_sub(offset);
        }
        IndexView {
            now_unix_nanos: now_unix_nanos(),
            executions,
            segments,
        }
    }
}
