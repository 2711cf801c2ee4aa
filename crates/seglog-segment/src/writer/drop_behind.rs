//! Dropping sealed segments from the page cache behind the tail
//! ([`crate::SegmentOptions::cached_sealed_segments`]), on the background thread.
//!
//! Why: every page a log writes is a new page-cache page, and nothing of a sealed segment is
//! written again. Left to the kernel, a log that streams writes fills memory with them; on
//! a virtual machine that hands freed memory back to its host, each new page is also fresh
//! memory the host must supply (there, 1 MiB `pwrite` + `fdatasync` into new space ran at
//! ~280 MB/s with ~3 s of system time per GiB, and at ~1.1 GB/s with ~0.3 s when the pages
//! written 128 MiB earlier were dropped). PostgreSQL drops a WAL segment's pages when it
//! closes it for the same reason; seglog keeps the newest sealed segments, which recent
//! reads and the seal listener use.
//!
//! Which: the segments this writer's rolls sealed, in the order they were sealed
//! (`CommitState::rolled`), all but the newest few. Never a segment found at open, a
//! compaction's output (numbered after the active segment, holding old records) or the
//! active segment.
//!
//! What must hold: only sealed segments (`seal_segment` syncs a segment before it queues
//! it, so its pages are clean: dropping them never changes what a read returns, and dirty
//! pages would stay anyway). A failure to drop only leaves pages cached. `close` waits for a
//! drop that runs (`dropping`), and none starts after it.

use super::Inner;
use crate::io::{FileSystem, SegmentFile};
use crate::segment::SegmentEntry;
use std::sync::Arc;

impl<F: FileSystem> Inner<F> {
    /// Drops from the page cache the segments sealed by this writer's rolls, but for the
    /// newest [`crate::SegmentOptions::cached_sealed_segments`] of them.
    pub(super) fn drop_cache_behind(&self) {
        let Some(keep) = self.opts.cached_sealed_segments else {
            return;
        };
        let numbers: Vec<u64> = {
            let mut st = self.commit.lock();
            let older = st.rolled.len().saturating_sub(keep);
            if st.closed || st.zeroing_stopped || st.poisoned.is_some() || older == 0 {
                return;
            }
            st.dropping = true;
            st.rolled.drain(..older).collect()
        };
        // Gone from the table (retention, compaction): nothing to drop.
        let behind: Vec<Arc<SegmentEntry<F>>> = {
            let segments = self.segments.read();
            numbers
                .iter()
                .filter_map(|n| segments.get(n).cloned())
                .collect()
        };
        for entry in &behind {
            let len = entry.data_end();
            // The kernel keeps mapped pages: the segment's own map, which its checkpoint
            // scan faulted in, gives way to a new one first.
            match entry.remap_sealed().and_then(|()| entry.file.evict(0, len)) {
                Ok(()) => self.stats.record_cache_dropped(len),
                Err(e) => {
                    tracing::debug!(segment = entry.number(), error = %e, "cannot drop a sealed segment from the page cache");
                }
            }
        }
        self.commit.lock().dropping = false;
    }
}
