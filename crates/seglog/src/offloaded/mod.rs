//! Offloaded segments: sealed segments whose file left the log directory because their
//! bytes are in object storage (docs/scale-out.md, "Read-through"; docs/format.md §7).
//!
//! The index keeps their records (loaded from their checkpoint, which stays in the
//! directory); a stub file records durably that the segment is offloaded and where its bytes
//! are; reads of its records go through a [`SegmentSource`] the application installs
//! (`seglog-tier` implements one with ranged GETs and a block cache), and every record read
//! that way is checked as a read from the file is (its length, its checksum salted with its
//! segment's salt, its LSN within the segment).
//!
//! Invariants:
//! - a segment is offloaded only when sealed, before the active segment (by LSN and by
//!   number), with a valid checkpoint, and with its whole bytes matching the length and
//!   CRC-32 the caller vouches the bucket holds; the stub is durable before the file goes;
//! - segment numbers of offloaded segments are never reused: the open refuses a log whose
//!   offloaded segments are not all before its last local segment;
//! - compaction never rewrites an offloaded segment (see `compact`), so its records, its
//!   checkpoint and its stub never change; an erasure brings the segments it must rewrite
//!   back first (`rehydrate`), when a source is set.

mod download;
mod offload;
mod read;
pub(crate) mod reader_view;
mod recovery;
mod rehydrate;
pub(crate) mod stub;

pub(crate) use download::download_checked;
pub(crate) use recovery::{Finishing, OffloadedRecovery};

use crate::log::Log;
use crate::{Error, Result};
use bytes::Bytes;
use parking_lot::RwLock;
use seglog_segment::format::SEGMENT_HEADER_LEN;
use seglog_segment::io::FileSystem;
use seglog_segment::SegmentInfo;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// A sealed segment whose bytes live outside the log directory (its stub's contents).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OffloadedSegment {
    /// Segment number.
    pub number: u64,
    /// LSN of its first record.
    pub first_lsn: u64,
    /// LSN of its last record (`first_lsn - 1` when it has none).
    pub last_lsn: u64,
    /// The greatest LSN of an event record in it (`first_lsn - 1` when none).
    pub last_event_lsn: u64,
    /// The segment's length in bytes, header included (the object's length).
    pub data_end: u64,
    /// Its header's record salt.
    pub record_salt: u64,
    /// Its header's creation time, nanoseconds since the Unix epoch.
    pub created_unix_nanos: i64,
    /// Its records are grouped by execution (format.md §3.5).
    pub clustered: bool,
    /// Its header, byte for byte.
    pub header_bytes: [u8; SEGMENT_HEADER_LEN],
    /// CRC-32 (IEEE) of the segment's bytes.
    pub object_crc32: u32,
    /// Where its bytes are, for the [`SegmentSource`] (for `seglog-tier`: the object key,
    /// which names the segment's number, salt and the uploader's epoch).
    pub location: String,
}

impl OffloadedSegment {
    /// The segment as the segment table describes one (for checkpoints and tools); `path`
    /// is where its file was.
    pub fn info(&self, dir: &Path) -> SegmentInfo {
        SegmentInfo {
            number: self.number,
            first_lsn: self.first_lsn,
            last_lsn: self.last_lsn,
            path: dir.join(seglog_segment::format::segment_file_name(self.first_lsn)),
            data_end: self.data_end,
            sealed: true,
            created_unix_nanos: self.created_unix_nanos,
            record_salt: self.record_salt,
            clustered: self.clustered,
        }
    }
}

impl OffloadedSegment {
    /// Describes a sealed segment that was never local here: one a restore leaves in object
    /// storage (`seglog-tier`'s lazy restore), from its header (64 bytes, verbatim: the
    /// object's first bytes), its length, last LSNs and CRC-32, and its location. The
    /// result is what [`write_offload_stub`] records.
    ///
    /// # Errors
    /// [`Error::Corruption`] when the header does not decode or the fields break the stub's
    /// rules (docs/format.md §7: `data_end` in 64 ..= 2^32 − 1, `last_event_lsn ≤ last_lsn`,
    /// both at least `first_lsn − 1`); [`Error::InvalidOptions`] for a location that is
    /// empty or longer than 1024 bytes.
    pub fn from_header(
        header_bytes: [u8; SEGMENT_HEADER_LEN],
        data_end: u64,
        last_lsn: u64,
        last_event_lsn: u64,
        object_crc32: u32,
        location: String,
    ) -> Result<Self> {
        if location.is_empty() || location.len() > stub::MAX_LOCATION_BYTES {
            return Err(Error::InvalidOptions(format!(
                "an offload location is 1..={} bytes",
                stub::MAX_LOCATION_BYTES
            )));
        }
        let header = seglog_segment::format::SegmentHeader::decode(&header_bytes)
            .map_err(|d| Error::Corruption(format!("offloaded segment header: {d}")))?;
        let segment = OffloadedSegment {
            number: header.segment_number,
            first_lsn: header.first_lsn,
            last_lsn,
            last_event_lsn,
            data_end,
            record_salt: header.record_salt(),
            created_unix_nanos: header.created_unix_nanos,
            clustered: header.clustered,
            header_bytes,
            object_crc32,
            location,
        };
        // The reader's checks, exactly: what this returns, the open accepts.
        let name = stub::stub_file_name(segment.first_lsn);
        stub::decode(&stub::encode(&segment), Path::new(&name), segment.first_lsn)
    }
}

/// Writes `segment`'s offload stub `<first_lsn>.off` into `dir`, a log directory no log
/// has open (a restore's), crash-atomically: temp file, fdatasync, rename, directory fsync.
/// After it returns the stub is durable; after a crash it is whole or absent (a leftover
/// temp file is removed by the next open). The segment's checkpoint must be in `dir` too,
/// and a local segment after it (by LSN, and numbered above it) before the log is opened
/// (docs/format.md §7, "Opening"). Logs offload their own segments with
/// [`Log::offload_segment`] instead.
///
/// # Errors
/// I/O errors.
pub fn write_offload_stub(dir: &Path, segment: &OffloadedSegment) -> Result<()> {
    stub::write(&seglog_segment::io::StdFs, dir, segment)
}

/// The offloaded segments of the log directory `dir`, read from their stubs, in log order
/// (none when `dir` has no stub). For tools that read a directory without opening the log:
/// each segment's records are indexed by its checkpoint in `dir`
/// (`seglog_index::checkpoint`, under `segment.info(dir)`), its bytes are at its location.
/// Reads only.
///
/// # Errors
/// A damaged stub ([`Error::Corruption`]), a directory a restore is still writing, I/O
/// errors.
pub fn offloaded_segments_in(dir: &Path) -> Result<Vec<OffloadedSegment>> {
    Ok(stub::list(&seglog_segment::io::StdFs, dir)?.0)
}

/// Where a segment's bytes are confirmed to be, as the caller of [`Log::offload_segment`]
/// vouches (for `seglog-tier`: an object a committed manifest names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadTarget {
    /// The location the [`SegmentSource`] reads (at most 1024 bytes of UTF-8).
    pub location: String,
    /// The object's length in bytes: must equal the segment file's.
    pub len: u64,
    /// CRC-32 (IEEE) of the object's bytes: must equal the segment file's.
    pub crc32: u32,
}

/// The error a [`SegmentSource`] reports.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where reads of offloaded segments get their bytes. Implemented by `seglog-tier`
/// (`ReadThrough`: ranged GETs from the bucket, cached); installed with
/// [`Log::set_segment_source`].
///
/// Reads of the log are synchronous, so [`SegmentSource::read_ranges`] **blocks the calling
/// thread** until the bytes are there: call such reads off an async runtime's worker threads
/// (`spawn_blocking`, or [`Log::read_range_with_tenant_async`]). An implementation must not
/// rely on the caller's runtime (it may have none, or be one of its workers).
pub trait SegmentSource: Send + Sync + std::fmt::Debug {
    /// The bytes of `ranges` of `segment`, in the order asked: each range lies within
    /// `0..segment.data_end`, and each returned buffer must be exactly its range's length.
    /// Fetch them together (in parallel, coalesced), not one after another.
    ///
    /// # Errors
    /// Whatever prevented reading them; never return other bytes instead.
    fn read_ranges(
        &self,
        segment: &OffloadedSegment,
        ranges: &[Range<u64>],
    ) -> std::result::Result<Vec<Bytes>, SourceError>;

    /// Told when bytes it returned for `segment` failed the checks (a damaged object, a
    /// damaged cache): drop whatever is cached of it, so that a later read fetches again.
    fn forget(&self, _segment: &OffloadedSegment) {}
}

/// The log's offloaded segments and the source of their bytes.
#[derive(Default)]
pub(crate) struct Offloaded {
    segments: RwLock<BTreeMap<u64, Arc<OffloadedSegment>>>,
    source: RwLock<Option<Arc<dyn SegmentSource>>>,
}

impl Offloaded {
    /// Installs the segments an open found offloaded.
    pub fn restore(&self, segments: Vec<OffloadedSegment>) {
        let mut table = self.segments.write();
        for s in segments {
            table.insert(s.number, Arc::new(s));
        }
    }

    /// Serves exactly `segments` from now on (a read-only log's refresh).
    pub fn replace(&self, segments: Vec<OffloadedSegment>) {
        *self.segments.write() = segments
            .into_iter()
            .map(|s| (s.number, Arc::new(s)))
            .collect();
    }

    pub fn get(&self, number: u64) -> Option<Arc<OffloadedSegment>> {
        self.segments.read().get(&number).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.read().is_empty()
    }

    /// Every offloaded segment, in log order.
    pub fn list(&self) -> Vec<Arc<OffloadedSegment>> {
        let mut all: Vec<_> = self.segments.read().values().cloned().collect();
        all.sort_by_key(|s| s.first_lsn);
        all
    }

    /// Whether a source to read offloaded segments through is set.
    pub fn has_source(&self) -> bool {
        self.source.read().is_some()
    }

    /// Forgets a segment that came back to the directory (a rehydration).
    fn remove(&self, number: u64) {
        self.segments.write().remove(&number);
    }

    fn insert(&self, segment: OffloadedSegment) {
        self.segments
            .write()
            .insert(segment.number, Arc::new(segment));
    }

    pub(crate) fn source(&self, segment: u64) -> Result<Arc<dyn SegmentSource>> {
        self.source.read().clone().ok_or(Error::Offloaded {
            segment,
            what: "a read (no segment source is set: Log::set_segment_source)",
        })
    }
}

impl<F: FileSystem> Log<F> {
    /// Installs where reads of offloaded segments get their bytes (replacing any earlier
    /// source). Until one is set, such reads fail with [`Error::Offloaded`].
    pub fn set_segment_source(&self, source: Arc<dyn SegmentSource>) {
        *self.shared.offloaded.source.write() = Some(source);
    }

    /// Every segment of the log, local and offloaded, in log order, each once: one
    /// consistent listing (taken again when a rehydration moved a segment meanwhile, which
    /// two separate listings could miss in both; an offload meanwhile lists its segment in
    /// both, and it is named once).
    pub fn all_segments(&self) -> Vec<SegmentInfo> {
        loop {
            let epoch = self
                .shared
                .layout_epoch
                .load(std::sync::atomic::Ordering::Acquire);
            let mut all = self.shared.segments.segments();
            all.extend(
                self.shared
                    .offloaded
                    .list()
                    .iter()
                    .map(|s| s.info(&self.shared.dir)),
            );
            if self
                .shared
                .layout_epoch
                .load(std::sync::atomic::Ordering::Acquire)
                != epoch
            {
                continue;
            }
            all.sort_by_key(|s| s.first_lsn);
            all.dedup_by(|a, b| a.number == b.number);
            return all;
        }
    }

    /// The offloaded segments, in log order: sealed segments whose file left the directory
    /// (their records are read through the [`SegmentSource`]).
    pub fn offloaded_segments(&self) -> Vec<OffloadedSegment> {
        self.shared
            .offloaded
            .list()
            .iter()
            .map(|s| (**s).clone())
            .collect()
    }

    /// Fails with [`Error::Offloaded`] when any segment is offloaded: for the operations that
    /// do not handle them yet (`what` names it).
    pub(crate) fn refuse_offloaded(&self, what: &'static str) -> Result<()> {
        match self.shared.offloaded.list().first() {
            Some(s) => Err(Error::Offloaded {
                segment: s.number,
                what,
            }),
            None => Ok(()),
        }
    }

    /// For a global-order read that read from `after_lsn` up to `reached` (inclusive; the
    /// end of the log when it did not stop at its limit): fails when an offloaded segment
    /// holds records in between, which the read (walking local segments) did not see.
    pub(crate) fn check_global_range(&self, after_lsn: u64, reached: u64) -> Result<()> {
        let skipped = self.shared.offloaded.list().into_iter().find(|s| {
            s.last_event_lsn >= s.first_lsn
                && s.last_event_lsn > after_lsn
                && s.first_lsn <= reached
        });
        match skipped {
            Some(s) => Err(Error::Offloaded {
                segment: s.number,
                what: "a read in global order",
            }),
            None => Ok(()),
        }
    }

    /// Of `executions`, those with a record in an offloaded segment, with one such segment.
    pub(crate) fn offloaded_records_of(
        &self,
        index: &seglog_index::ExecutionIndex,
        executions: &[String],
    ) -> Vec<(String, u64)> {
        if self.shared.offloaded.is_empty() {
            return Vec::new();
        }
        executions
            .iter()
            .filter_map(|id| {
                let e = index.get(id)?;
                e.records()
                    .iter()
                    .map(|l| u64::from(l.segment))
                    .find(|n| self.shared.offloaded.get(*n).is_some())
                    .map(|n| (id.clone(), n))
            })
            .collect()
    }

    /// The numbers of the local segments `local` and of the offloaded ones, in log order.
    pub(crate) fn order_with_offloaded(&self, local: &[SegmentInfo]) -> Vec<u64> {
        let mut all: Vec<(u64, u64)> = local.iter().map(|s| (s.first_lsn, s.number)).collect();
        all.extend(
            self.shared
                .offloaded
                .list()
                .iter()
                .map(|s| (s.first_lsn, s.number)),
        );
        all.sort_unstable();
        all.into_iter().map(|(_, n)| n).collect()
    }

    /// The greatest event LSN of the offloaded segments (0 when none).
    pub(crate) fn offloaded_last_event_lsn(&self) -> u64 {
        self.shared
            .offloaded
            .list()
            .iter()
            .filter(|s| s.last_event_lsn >= s.first_lsn)
            .map(|s| s.last_event_lsn)
            .max()
            .unwrap_or(0)
    }
}

/// Removes stub temp files a crash left (the caller holds the directory's lock). Best
/// effort: a leftover temp file is ignored by every reader.
pub(crate) fn remove_temps<F: FileSystem>(fs: &F, temps: &[std::path::PathBuf]) {
    for t in temps {
        if let Err(e) = fs.remove(t) {
            tracing::warn!(path = %t.display(), error = %e, "cannot remove a stale offload stub temp file");
        }
    }
}

impl<F: FileSystem + Clone> Log<F> {
    /// Finishes the offloads a crash interrupted after their stub was durable (the segment
    /// file is still there). A stub of what is now the last segment (a salvage cut the
    /// segments after it) is dropped instead: the segment stays local.
    pub(crate) fn finish_interrupted_offloads(&self, finishing: Finishing) -> Result<()> {
        for segment in finishing.segments {
            let local = self.segments();
            if local.last().map(|s| s.number) == Some(segment.number) {
                let fs = self.shared.segments.file_system();
                stub::remove(fs, &self.shared.dir, segment.first_lsn)?;
                fs.sync_dir(&self.shared.dir).map_err(|e| {
                    Error::Segment(seglog_segment::Error::Io {
                        op: "sync_dir",
                        path: self.shared.dir.clone(),
                        source: e,
                    })
                })?;
                continue;
            }
            tracing::info!(segment = segment.number, "finishing an interrupted offload");
            // IMPORTANT: step 2 again, while the segment is still here: once its file is
            // gone its checkpoint is the only record of its records in the directory.
            let info = local
                .into_iter()
                .find(|s| s.number == segment.number)
                .ok_or_else(|| {
                    Error::Corruption(format!(
                        "the interrupted offload of segment {} has no segment to finish",
                        segment.number
                    ))
                })?;
            let bytes = self.shared.segments.segment_bytes(segment.number)?;
            self.ensure_checkpoint(&info, &bytes)?;
            drop(bytes);
            self.finish_offload(segment)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use seglog_segment::format::SegmentHeader;
    use seglog_segment::io::StdFs;

    #[test]
    fn a_stub_built_from_a_header_is_written_durably_and_reads_back_and_bad_fields_are_refused() {
        let header = SegmentHeader::new(9, 500, 1_700_000_000).unwrap().encode();
        let make = |data_end, last, last_event, location: &str| {
            OffloadedSegment::from_header(
                header,
                data_end,
                last,
                last_event,
                0x1234_5678,
                location.into(),
            )
        };
        let s = make(4096, 540, 539, "p/segments/x.seg").unwrap();
        assert_eq!((s.number, s.first_lsn, s.data_end), (9, 500, 4096));
        // What the open reads is exactly what was written.
        let dir = tempfile::tempdir().unwrap();
        write_offload_stub(dir.path(), &s).unwrap();
        let (listed, temps) = stub::list(&StdFs, dir.path()).unwrap();
        assert_eq!(listed, vec![s]);
        assert!(temps.is_empty());
        // The stub's rules (format.md §7).
        assert!(make(63, 540, 539, "k").is_err(), "data_end below a header");
        assert!(make(1 << 32, 540, 539, "k").is_err(), "data_end above u32");
        assert!(
            make(4096, 540, 541, "k").is_err(),
            "last_event_lsn > last_lsn"
        );
        assert!(
            make(4096, 400, 400, "k").is_err(),
            "last_lsn before first_lsn - 1"
        );
        assert!(make(4096, 540, 539, "").is_err(), "empty location");
        assert!(
            make(4096, 540, 539, &"k".repeat(1025)).is_err(),
            "long location"
        );
        let mut bad = header;
        bad[20] ^= 1;
        assert!(OffloadedSegment::from_header(bad, 4096, 540, 539, 0, "k".into()).is_err());
    }
}
