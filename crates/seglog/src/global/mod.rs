//! The log in global order: every execution's records interleaved as they were appended,
//! addressed by their global position (the record's LSN), read straight from the segments.
//!
//! The **global position** of a record is its LSN (docs/design.md, "Global order"):
//! - strictly increasing in log order, across segments, executions and restarts;
//! - never reused: every position a reader or an appender has seen belongs to a durable
//!   record, and recovery only cuts records that were never durable, so the next LSN after a
//!   reopen is above every position ever seen;
//! - stable: compaction copies records with their LSN, so the survivors keep their
//!   positions; the positions of the records it drops stay gaps (positions are not dense:
//!   commit markers and rolls take one too).
//!
//! One record is one append: a batch shares one position. Reads see durable records only
//! (each segment's published durable end), in LSN order, and never scan from the start of
//! the log: the segment holding a position is found by binary search over the segment table
//! (ordered by first LSN), and the record within it through sparse samples ([`samples`]).

mod follow;
mod samples;
#[cfg(test)]
mod tests;

pub(crate) use samples::LsnSamples;

use crate::log::Log;
use crate::{Error, Result};
use bytes::Bytes;
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::io::FileSystem;
use seglog_segment::{Record, RecordPosition, SegmentInfo};
use std::sync::atomic::Ordering;

/// Where a durable append went: [`Log::append_encoded_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The global position of its record (one per append, a batch included).
    pub lsn: u64,
    /// The sequence number of its first event in its execution.
    pub first_seq: u64,
}

/// One record of the log read in global order: an append (one event, or a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its global position (its LSN): strictly increasing through the log, stable across
    /// restarts and compaction.
    pub lsn: u64,
    /// The execution it belongs to.
    pub execution: String,
    /// The tenant of that execution.
    pub tenant: String,
    /// The execution's sequence number of its first event (the others follow densely).
    pub first_seq: u64,
    /// When it was appended, nanoseconds since the Unix epoch.
    pub timestamp_unix_nanos: i64,
    /// The payload encoding tag given at append (`0` = opaque bytes).
    pub encoding: u8,
    /// The payloads of its events, in order (sharing memory with the segment's map).
    pub payloads: Vec<Bytes>,
}

impl LogRecord {
    fn from_record(record: &Record) -> Result<Self> {
        let view = record.view();
        let text = |bytes: &[u8], what: &str| {
            std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| {
                Error::Corruption(format!(
                    "{what} id of the record at LSN {} is not UTF-8",
                    view.lsn()
                ))
            })
        };
        let payloads = (0..view.event_count())
            .map(|i| {
                record.event(i).ok_or_else(|| {
                    Error::Corruption(format!(
                        "event {i} missing from the record at LSN {}",
                        view.lsn()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LogRecord {
            lsn: view.lsn(),
            execution: text(view.execution_id(), "execution")?,
            tenant: text(view.tenant_id(), "tenant")?,
            first_seq: view.first_seq(),
            timestamp_unix_nanos: view.timestamp_unix_nanos(),
            encoding: view.encoding(),
            payloads,
        })
    }
}

impl<F: FileSystem> Log<F> {
    /// At most `limit` durable records with a global position above `after_lsn`, in log
    /// order (`after_lsn = 0`: from the start). Appends from every execution, across
    /// restarts; records dropped by compaction are gone, the others keep their positions.
    ///
    /// Cost: a binary search over the segments, at most 64 KiB of records walked to reach
    /// the position, then the records returned. The first read in a segment also builds its
    /// sparse samples: from its index checkpoint, or by one scan of that segment.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> seglog::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| seglog::Error::InvalidOptions(e.to_string()))?;
    /// let log = seglog::Log::open(dir.path(), seglog::Options::default()).await?;
    /// let a = log.append_encoded_at("exec-a", "t", None, 0, &[b"a1"]).await?;
    /// log.append("exec-b", "t", b"b1").await?;
    /// log.append("exec-a", "t", b"a2").await?;
    /// let after_a1: Vec<String> = log
    ///     .read_global(a.lsn, 10)?
    ///     .into_iter()
    ///     .map(|r| r.execution)
    ///     .collect();
    /// assert_eq!(after_a1, ["exec-b", "exec-a"]);
    /// assert_eq!(log.read_global(0, usize::MAX)?.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Closed`], corruption found while reading, I/O errors.
    pub fn read_global(&self, after_lsn: u64, limit: usize) -> Result<Vec<LogRecord>> {
        self.retry_on_relayout(|| self.try_read_global(after_lsn, limit))
    }

    /// The global position of the last durable record, `0` when the log has none.
    ///
    /// # Errors
    /// As [`Self::read_global`].
    pub fn latest_lsn(&self) -> Result<u64> {
        self.retry_on_relayout(|| self.try_latest_lsn())
    }

    /// Runs `read` again when the layout changed while it ran: a compaction replaced
    /// segments (it may have failed on them), or a rehydration moved a segment between the
    /// offloaded and the local tables (it may have *succeeded* without its records, having
    /// missed it in both: review 22). Positions are LSNs, which both keep, so the retry
    /// reads the same records.
    fn retry_on_relayout<T>(&self, read: impl Fn() -> Result<T>) -> Result<T> {
        loop {
            let epoch = self.shared.layout_epoch.load(Ordering::Acquire);
            let done = read();
            // Compaction swaps the segment table and bumps the epoch under the index's write
            // lock: once we hold its read lock, a swap we tripped over shows.
            drop(self.shared.index.read());
            if self.shared.layout_epoch.load(Ordering::Acquire) == epoch {
                return done;
            }
        }
    }

    fn try_latest_lsn(&self) -> Result<u64> {
        self.check_open()?;
        let segments = self.shared.segments.segments();
        // The newest segment with a record; the last one may be a fresh, empty one.
        // Offloaded segments (all before the last local one) count by their stubs.
        let offloaded = self.offloaded_last_event_lsn();
        for (i, segment) in segments.iter().enumerate().rev() {
            let next_first = segments.get(i + 1).map(|s| s.first_lsn);
            let records = self.records_after(segment, next_first, 0, usize::MAX, true)?;
            if let Some(last) = records.last() {
                return Ok(last.lsn.max(offloaded));
            }
        }
        Ok(offloaded)
    }

    fn try_read_global(&self, after_lsn: u64, limit: usize) -> Result<Vec<LogRecord>> {
        self.check_open()?;
        let segments = self.shared.segments.segments();
        self.shared.lsn_samples.retain(&segments);
        // The segment holding the first position above `after_lsn`: the last one starting
        // at or below it (first LSNs increase through the segment table).
        let first = segments
            .partition_point(|s| s.first_lsn <= after_lsn.saturating_add(1))
            .saturating_sub(1);
        let mut out = Vec::new();
        for (i, segment) in segments.iter().enumerate().skip(first) {
            if out.len() >= limit {
                break;
            }
            let wanted = limit - out.len();
            let next_first = segments.get(i + 1).map(|s| s.first_lsn);
            out.extend(self.records_after(segment, next_first, after_lsn, wanted, false)?);
        }
        // Records of offloaded segments are not walked here: a read that passes over one
        // fails rather than skip them.
        let reached = match out.last() {
            Some(last) if out.len() >= limit => last.lsn,
            _ => u64::MAX,
        };
        self.check_global_range(after_lsn, reached)?;
        Ok(out)
    }

    /// Up to `limit` records of `segment` with an LSN above `after_lsn`; with `last_only`,
    /// only the last record of the segment (walked to from the last sample). `next_first`
    /// is the first LSN of the segment after it (none for the last).
    fn records_after(
        &self,
        segment: &SegmentInfo,
        next_first: Option<u64>,
        after_lsn: u64,
        limit: usize,
        last_only: bool,
    ) -> Result<Vec<LogRecord>> {
        if segment.clustered {
            return self.clustered_records_after(segment, next_first, after_lsn, limit, last_only);
        }
        let samples = &self.shared.lsn_samples;
        let log = &self.shared.segments;
        let from_lsn = if last_only { u64::MAX } else { after_lsn };
        let (start, hinted_lsn) = samples.start_for(log, &self.shared.dir, segment, from_lsn)?;
        let walk = |start: u64, expected_lsn: Option<u64>| -> Result<Vec<LogRecord>> {
            let mut out: Vec<LogRecord> = Vec::new();
            let mut last: Option<Record> = None;
            let mut previous_lsn = segment.first_lsn.saturating_sub(1);
            let mut walked = 0;
            let counted = |walked| samples.walked_records.fetch_add(walked, Ordering::Relaxed);
            for record in log.records_from(RecordPosition {
                segment: segment.number,
                offset: start,
            })? {
                let record = record.inspect_err(|_| {
                    counted(walked);
                })?;
                if let Some(expected) = expected_lsn.filter(|_| walked == 0) {
                    if record.view().lsn() != expected {
                        counted(walked);
                        return Err(Error::Corruption(format!(
                            "segment {} offset {start}: LSN {} where its checkpoint says {expected}",
                            segment.number,
                            record.view().lsn()
                        )));
                    }
                }
                walked += 1;
                check_in_order(record.view().lsn(), previous_lsn, segment, next_first)?;
                previous_lsn = record.view().lsn();
                if last_only {
                    last = Some(record);
                    continue;
                }
                if record.view().lsn() <= after_lsn {
                    continue;
                }
                out.push(LogRecord::from_record(&record)?);
                if out.len() >= limit {
                    break;
                }
            }
            counted(walked);
            if let Some(last) = last {
                out.push(LogRecord::from_record(&last)?);
            }
            Ok(out)
        };
        match walk(start, hinted_lsn) {
            // The sample came from an index checkpoint that does not match the records (it
            // is a hint, never the truth): walk the segment itself.
            Err(e) if hinted_lsn.is_some() => {
                tracing::warn!(segment = segment.number, error = %e, "LSN samples from the index checkpoint do not match the segment; scanning it");
                samples.forget(segment.number);
                walk(SEGMENT_HEADER_LEN as u64, None)
            }
            done => done,
        }
    }

    /// [`Self::records_after`] for a clustered segment: its records are grouped by execution,
    /// so they are taken in the order of its LSN table, one positioned read each.
    fn clustered_records_after(
        &self,
        segment: &SegmentInfo,
        next_first: Option<u64>,
        after_lsn: u64,
        limit: usize,
        last_only: bool,
    ) -> Result<Vec<LogRecord>> {
        let samples = &self.shared.lsn_samples;
        let log = &self.shared.segments;
        let read = |order: &samples::ClusteredOrder| -> Result<Vec<LogRecord>> {
            let wanted: &[(u64, u64)] = if last_only {
                order.by_lsn.last().map_or(&[], std::slice::from_ref)
            } else {
                let from = order.by_lsn.partition_point(|&(lsn, _)| lsn <= after_lsn);
                let to = from.saturating_add(limit).min(order.by_lsn.len());
                &order.by_lsn[from..to]
            };
            let mut out = Vec::with_capacity(wanted.len());
            for &(lsn, offset) in wanted {
                let record = log.read(RecordPosition {
                    segment: segment.number,
                    offset,
                })?;
                if record.view().lsn() != lsn {
                    return Err(Error::Corruption(format!(
                        "segment {} offset {offset}: LSN {} where its table says {lsn}",
                        segment.number,
                        record.view().lsn()
                    )));
                }
                check_in_order(
                    lsn,
                    segment.first_lsn.saturating_sub(1),
                    segment,
                    next_first,
                )?;
                out.push(LogRecord::from_record(&record)?);
            }
            samples
                .walked_records
                .fetch_add(out.len() as u64, Ordering::Relaxed);
            Ok(out)
        };
        let order = samples.clustered_order(log, &self.shared.dir, segment)?;
        match read(&order) {
            // The table came from an index checkpoint that does not match the records (it is
            // a hint, never the truth): build it from the segment itself.
            Err(e) if order.from_checkpoint => {
                tracing::warn!(segment = segment.number, error = %e, "LSN table from the index checkpoint does not match the clustered segment; scanning it");
                samples.forget(segment.number);
                read(&*samples.scan_clustered_order(log, segment)?)
            }
            done => done,
        }
    }
}

/// A record's LSN lies between its segment's first LSN and the next segment's (format.md
/// §1), and above the record before it in the segment's file order (but in a clustered
/// segment, whose order is by execution: its records come here sorted by LSN, each checked
/// against the segment's start alone). The global order rests on it: a record out of order
/// (written by a faulty writer, or edited with its checksum made to match) would come out of
/// order, and a reader paging by position would skip what lies between.
fn check_in_order(
    lsn: u64,
    after: u64,
    segment: &SegmentInfo,
    next_first: Option<u64>,
) -> Result<()> {
    if lsn <= after || next_first.is_some_and(|next| lsn >= next) {
        return Err(Error::Corruption(format!(
            "segment {} (first LSN {}) holds a record of LSN {lsn} out of order: it must lie above LSN {after} and below {}",
            segment.number,
            segment.first_lsn,
            next_first.map_or_else(|| "the end of the log".to_owned(), |n| format!("the next segment's first LSN {n}"))
        )));
    }
    Ok(())
}
