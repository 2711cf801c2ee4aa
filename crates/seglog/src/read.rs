//! Reads: the index says where each event is; the bytes come straight from the segment
//! (a memory map for sealed and preallocated active segments). No scan, no commit lock.

use crate::event_reader::CHUNK_EVENTS;
use crate::log::Log;
use crate::{Error, Result};
use bytes::Bytes;
use seglog_index::EventLocation;
use seglog_segment::io::FileSystem;
use seglog_segment::Record;
use std::sync::atomic::Ordering;

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Its sequence number in its execution (dense, from 1).
    pub seq: u64,
    /// When it was appended, nanoseconds since the Unix epoch (non-decreasing within an
    /// execution; the events of a batch share it).
    pub timestamp_unix_nanos: i64,
    /// The payload encoding tag given at append (`0` = opaque bytes).
    pub encoding: u8,
    /// The payload (shares memory with the segment's map where it can).
    pub payload: Bytes,
    /// The global position of its record (shared by the events of a batch): see
    /// [`Log::read_global`].
    pub lsn: u64,
}

impl<F: FileSystem> Log<F> {
    /// Where the events are, and the creation LSN of the execution's current incarnation
    /// (`None`: unknown execution), from one look at the index.
    fn locations(
        &self,
        execution: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<(Vec<EventLocation>, Option<u64>)> {
        self.check_open()?;
        self.publish_if_due();
        let index = self.shared.index.read();
        let incarnation = index.get(execution).map(|e| e.created_lsn());
        Ok((index.events(execution, from_seq, limit), incarnation))
    }

    /// The events at `locations` (looked up at layout `epoch`), and the tenant their records
    /// carry. The records' ranges are hinted to the file system first, so that a cold read
    /// waits for the disk about once, not once per record.
    fn load(
        &self,
        execution: &str,
        locations: &[EventLocation],
        epoch: u64,
    ) -> Result<(Vec<Event>, Option<String>)> {
        self.read_ahead(locations, epoch);
        // Records of offloaded segments, fetched together (docs/scale-out.md, "Read-through").
        let offloaded = self.load_offloaded(locations)?;
        let mut out = Vec::with_capacity(locations.len());
        let mut tenant = None;
        let mut current: Option<Record> = None;
        for loc in locations {
            let position = loc.location.position();
            let record = match current.take() {
                Some(r) if r.position() == position => r,
                _ => match offloaded.get(&position) {
                    Some(r) => r.clone(),
                    None => self.read_record_anywhere(position)?,
                },
            };
            let view = record.view();
            let expected_seq = view.first_seq() + u64::from(loc.index_in_record);
            if view.execution_id() != execution.as_bytes() || expected_seq != loc.seq {
                return Err(Error::Corruption(format!(
                    "record at segment {} offset {} is not event {} of execution {execution:?}",
                    position.segment, position.offset, loc.seq
                )));
            }
            if tenant.is_none() {
                let id = std::str::from_utf8(view.tenant_id()).map_err(|_| {
                    Error::Corruption(format!("tenant id of execution {execution:?} is not UTF-8"))
                })?;
                tenant = Some(id.to_owned());
            }
            let payload = record.event(loc.index_in_record).ok_or_else(|| {
                Error::Corruption(format!("event {} missing from its record", loc.seq))
            })?;
            out.push(Event {
                seq: loc.seq,
                timestamp_unix_nanos: view.timestamp_unix_nanos(),
                encoding: view.encoding(),
                payload,
                lsn: view.lsn(),
            });
            current = Some(record);
        }
        Ok((out, tenant))
    }

    /// Every event of `execution`, in order. Unknown execution: empty.
    ///
    /// # Errors
    /// [`Error::Closed`], corruption found while reading, I/O errors.
    pub fn read(&self, execution: &str) -> Result<Vec<Event>> {
        self.read_range(execution, 1, usize::MAX)
    }

    /// The events with sequence strictly greater than `after_seq`, in order.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn read_after(&self, execution: &str, after_seq: u64) -> Result<Vec<Event>> {
        self.read_range(execution, after_seq.saturating_add(1), usize::MAX)
    }

    /// At most `limit` events starting at sequence `from_seq`, in order.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn read_range(&self, execution: &str, from_seq: u64, limit: usize) -> Result<Vec<Event>> {
        self.read_range_with_tenant(execution, from_seq, limit)
            .map(|(events, _)| events)
    }

    /// As [`Self::read_range`], with the tenant the events were written under, taken from the
    /// same records (`None` when there are no events). Unlike a separate [`Self::tenant_of`],
    /// this cannot pair the events with the tenant of another incarnation of the execution
    /// (erased and created again in between).
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn read_range_with_tenant(
        &self,
        execution: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, Option<String>)> {
        // A chunk at a time, so that no lookup holds the index for the whole execution; all
        // chunks must come from one incarnation of it, or the read starts over.
        'read: loop {
            let mut out = Vec::new();
            let mut tenant = None;
            let mut incarnation = None;
            let mut next_seq = from_seq;
            loop {
                let want = (limit - out.len()).min(CHUNK_EVENTS);
                let (events, chunk_tenant, now) =
                    self.read_chunk_with_tenant(execution, next_seq, want)?;
                if out.is_empty() {
                    incarnation = now;
                } else if now != incarnation {
                    continue 'read;
                }
                tenant = tenant.or(chunk_tenant);
                let complete = events.len() < want;
                if let Some(last) = events.last() {
                    next_seq = last.seq + 1;
                }
                out.extend(events);
                if complete || out.len() == limit {
                    return Ok((out, tenant));
                }
            }
        }
    }

    /// At most `limit` events from one look at the index, the tenant their records carry,
    /// and the creation LSN of the execution's incarnation they belong to.
    pub(crate) fn read_chunk_with_tenant(
        &self,
        execution: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, Option<String>, Option<u64>)> {
        loop {
            let epoch = self.shared.layout_epoch.load(Ordering::Acquire);
            let (locations, incarnation) = self.locations(execution, from_seq, limit)?;
            let loaded = self.load(execution, &locations, epoch);
            // A compaction (or a read-only log's refresh) moved the records after we looked
            // them up: look again. A writer never reuses a segment number while it has the
            // log open, so its stale positions fail, never mislead; a read-only log's refresh
            // may install files of a later writer, so a result read across a change of
            // layout is not trusted either, even when it read back.
            if self.shared.layout_epoch.load(Ordering::Acquire) != epoch {
                continue;
            }
            return loaded.map(|(events, tenant)| (events, tenant, incarnation));
        }
    }

    /// [`Self::read_chunk_with_tenant`] without the tenant.
    pub(crate) fn read_chunk(
        &self,
        execution: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, Option<u64>)> {
        self.read_chunk_with_tenant(execution, from_seq, limit)
            .map(|(events, _, incarnation)| (events, incarnation))
    }

    /// The last durable sequence number of `execution`, `None` if it does not exist.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn latest_seq(&self, execution: &str) -> Result<Option<u64>> {
        self.check_open()?;
        self.publish_if_due();
        let st = self.shared.index.read();
        Ok(st
            .get(execution)
            .map(|e| e.visible_seq())
            .filter(|&s| s > 0))
    }

    /// Number of durable events of `execution` (0 if unknown).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn count(&self, execution: &str) -> Result<u64> {
        Ok(self.latest_seq(execution)?.unwrap_or(0))
    }

    /// True if `execution` has at least one durable event.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn exists(&self, execution: &str) -> Result<bool> {
        Ok(self.latest_seq(execution)?.is_some())
    }

    /// The tenant `execution` belongs to.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn tenant_of(&self, execution: &str) -> Result<Option<String>> {
        if self.latest_seq(execution)?.is_none() {
            return Ok(None);
        }
        Ok(self
            .shared
            .index
            .read()
            .tenant_of(execution)
            .map(str::to_owned))
    }

    /// `tenant`'s executions, newest first by creation (first append; ties by log order),
    /// skipping `offset`, at most `limit`. Reads only the index, never the log.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn list_executions(
        &self,
        tenant: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<String>> {
        self.check_open()?;
        self.publish_if_due();
        let st = self.shared.index.read();
        Ok(st
            .list_executions(tenant, limit, offset)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }
}
