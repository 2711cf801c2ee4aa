//! Reads of offloaded segments' records through the [`super::SegmentSource`].
//!
//! A read knows every record it needs before it reads one (the index's locations), so the
//! records of offloaded segments are asked for together: one call per segment with the
//! first `FIRST_READ_BYTES` of every record (the source fetches them in parallel, coalesced),
//! then one more for the rest of the records longer than that. Every record is checked as a
//! read from the file is: its length within the segment, its checksum salted with the
//! segment's salt (so bytes of another segment, or a damaged object, fail), its LSN within
//! the segment's. A failed check is an error, never other bytes.

use super::OffloadedSegment;
use crate::log::Log;
use crate::{Error, Result};
use bytes::{Bytes, BytesMut};
use seglog_index::EventLocation;
use seglog_segment::format::{RECORD_HEADER_LEN, REC_LEN_OFFSET, SEGMENT_HEADER_LEN};
use seglog_segment::io::FileSystem;
use seglog_segment::{Record, RecordPosition};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// Bytes asked for at each record's start: most records fit, and their length is in them.
const FIRST_READ_BYTES: u64 = 4096;

fn corrupt(segment: &OffloadedSegment, offset: u64, reason: impl std::fmt::Display) -> Error {
    Error::Corruption(format!(
        "offloaded segment {} ({}) offset {offset}: {reason}",
        segment.number, segment.location
    ))
}

impl<F: FileSystem> Log<F> {
    /// The record at `position`: from its segment's file, or when the segment is offloaded
    /// (before the read, or while it ran), through the segment source.
    pub(crate) fn read_record_anywhere(&self, position: RecordPosition) -> Result<Record> {
        match self.shared.segments.read(position) {
            // IMPORTANT: an offload puts the segment in the offloaded table before it takes
            // it out of the segment table, so a miss here finds it there.
            Err(missing @ seglog_segment::Error::NoSuchRecord { .. }) => {
                match self.shared.offloaded.get(position.segment) {
                    Some(s) => self
                        .read_offloaded(&s, &[position.offset])?
                        .pop()
                        .ok_or_else(|| corrupt(&s, position.offset, "no record returned")),
                    None => Err(missing.into()),
                }
            }
            other => other.map_err(Error::from),
        }
    }

    /// The records at `locations` that lie in offloaded segments, read together (one
    /// source call per segment and round), by position. Empty when none does.
    pub(crate) fn load_offloaded(
        &self,
        locations: &[EventLocation],
    ) -> Result<HashMap<RecordPosition, Record>> {
        let mut out = HashMap::new();
        if self.shared.offloaded.is_empty() {
            return Ok(out);
        }
        let mut by_segment: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for l in locations {
            let p = l.location.position();
            by_segment.entry(p.segment).or_default().push(p.offset);
        }
        for (number, mut offsets) in by_segment {
            let Some(segment) = self.shared.offloaded.get(number) else {
                continue;
            };
            offsets.sort_unstable();
            offsets.dedup();
            let records = self.read_offloaded(&segment, &offsets)?;
            for (offset, record) in offsets.into_iter().zip(records) {
                out.insert(
                    RecordPosition {
                        segment: number,
                        offset,
                    },
                    record,
                );
            }
        }
        Ok(out)
    }

    /// The checked records of `segment` at `offsets`, in that order.
    fn read_offloaded(&self, segment: &OffloadedSegment, offsets: &[u64]) -> Result<Vec<Record>> {
        let source = self.shared.offloaded.source(segment.number)?;
        let read = self.read_offloaded_from(&*source, segment, offsets);
        if let Err(e) = &read {
            if !matches!(e, Error::ColdRead { .. }) {
                tracing::warn!(segment = segment.number, location = %segment.location, error = %e, "offloaded bytes failed their checks");
                source.forget(segment);
            }
        }
        read
    }

    fn read_offloaded_from(
        &self,
        source: &dyn super::SegmentSource,
        segment: &OffloadedSegment,
        offsets: &[u64],
    ) -> Result<Vec<Record>> {
        let end = segment.data_end;
        for &o in offsets {
            if o < SEGMENT_HEADER_LEN as u64 || o >= end {
                return Err(Error::Segment(seglog_segment::Error::NoSuchRecord {
                    segment: segment.number,
                    offset: o,
                }));
            }
        }
        let fetch = |ranges: &[Range<u64>]| -> Result<Vec<Bytes>> {
            let got = source
                .read_ranges(segment, ranges)
                .map_err(|source| Error::ColdRead {
                    segment: segment.number,
                    location: segment.location.clone(),
                    source,
                })?;
            if got.len() != ranges.len()
                || got
                    .iter()
                    .zip(ranges)
                    .any(|(b, r)| b.len() as u64 != r.end - r.start)
            {
                return Err(corrupt(
                    segment,
                    ranges.first().map_or(0, |r| r.start),
                    "the source returned other lengths than asked",
                ));
            }
            Ok(got)
        };
        let first: Vec<Range<u64>> = offsets
            .iter()
            .map(|&o| o..(o + FIRST_READ_BYTES).min(end))
            .collect();
        let mut heads = fetch(&first)?;
        // The records that run on past their first read: their length field says how far
        // (bounded by the segment's length before anything is allocated).
        let mut rest = Vec::new();
        let mut lens = Vec::with_capacity(offsets.len());
        for (i, (&o, head)) in offsets.iter().zip(&heads).enumerate() {
            let field = head
                .get(REC_LEN_OFFSET..REC_LEN_OFFSET + 4)
                .and_then(|f| <[u8; 4]>::try_from(f).ok())
                .ok_or_else(|| corrupt(segment, o, "no record length"))?;
            let len = u64::from(u32::from_le_bytes(field));
            if len < RECORD_HEADER_LEN as u64 || len > end - o {
                return Err(corrupt(
                    segment,
                    o,
                    format!("impossible record length {len}"),
                ));
            }
            if len > head.len() as u64 {
                rest.push((i, o + head.len() as u64..o + len));
            }
            lens.push(len);
        }
        if !rest.is_empty() {
            let ranges: Vec<Range<u64>> = rest.iter().map(|(_, r)| r.clone()).collect();
            for ((i, _), tail) in rest.iter().zip(fetch(&ranges)?) {
                let mut whole = BytesMut::with_capacity(lens[*i] as usize);
                whole.extend_from_slice(&heads[*i]);
                whole.extend_from_slice(&tail);
                heads[*i] = whole.freeze();
            }
        }
        offsets
            .iter()
            .zip(heads)
            .map(|(&offset, bytes)| {
                let position = RecordPosition {
                    segment: segment.number,
                    offset,
                };
                let record = Record::from_detached_bytes(
                    position,
                    bytes,
                    segment.record_salt,
                    end - offset,
                )?;
                let lsn = record.view().lsn();
                if lsn < segment.first_lsn || lsn > segment.last_lsn {
                    return Err(corrupt(
                        segment,
                        offset,
                        format!("LSN {lsn} outside the segment's"),
                    ));
                }
                Ok(record)
            })
            .collect()
    }
}

impl<F: FileSystem> Log<F> {
    /// [`Log::read_range_with_tenant`] for async callers: when the log has offloaded
    /// segments (whose reads block on their source), the read runs on tokio's blocking pool
    /// (in place outside a tokio runtime); otherwise in place, as the synchronous read.
    ///
    /// # Errors
    /// As [`Log::read_range_with_tenant`].
    pub async fn read_range_with_tenant_async(
        &self,
        execution: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<(Vec<crate::Event>, Option<String>)> {
        if self.shared.offloaded.is_empty() {
            return self.read_range_with_tenant(execution, from_seq, limit);
        }
        let log = self.clone();
        let execution = execution.to_owned();
        crate::offload::run_blocking("read", move || {
            log.read_range_with_tenant(&execution, from_seq, limit)
        })
        .await
    }
}
