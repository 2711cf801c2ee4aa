//! Writer and recovery settings, each with the guarantee it gives written on it.

use crate::format::{
    DEFAULT_MAX_RECORD_SIZE, DEFAULT_SEGMENT_SIZE, MAX_RECORD_SIZE_LIMIT, SEGMENT_HEADER_LEN,
};
use crate::{Error, Result};

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum SyncMode {
    /// Every commit group is `fdatasync`ed before its appends return Ok: an acknowledged
    /// append survives a crash or power cut. Concurrent appends share one sync (group commit).
    #[default]
    Always,
    /// Appends return once their bytes are handed to the OS; nothing is synced until the
    /// segment is sealed, the log is closed, or `sync` is called (which still makes what it
    /// returns for stable). A process crash loses nothing, a power cut may lose any unsealed
    /// append that no `sync` covered. For bulk loads and tests that say so.
    Never,
}

/// What opening a log does with damage it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum RecoveryMode {
    /// A torn write at the end of the last segment (bytes of appends that were never
    /// acknowledged) is cut off and the log opens. Anything else that is damaged —
    /// a bad record in a sealed segment, or one that a later durable record proves was
    /// acknowledged — fails the open with [`Error::Corruption`]. Never drops acknowledged data.
    #[default]
    TolerateTornTail,
    /// Any bad or partial byte the open reads, even a torn tail, fails the open. For logs
    /// that were closed cleanly, or to inspect damage before deciding. Bytes an index
    /// checkpoint covers (sealed segments, and the last segment's prefix after a clean
    /// close) are not read by the open: damage there fails the read of that record with a
    /// checksum error, never returns wrong bytes; `verify` reads everything.
    AbsoluteConsistency,
    /// Repair, point in time: the log keeps its longest undamaged prefix. Every segment is
    /// read (checkpoints are not trusted); the first bad record cuts its segment there, every
    /// later segment is removed, the loss is logged and reported
    /// ([`crate::RecoveryReport::salvaged`], [`crate::RecoveryReport::salvage_removed`]), and
    /// the log opens — and opens again later in the default mode. May drop acknowledged data;
    /// the price of opening a damaged log at all. The cut is made by copy and rename, never
    /// in place: other names of the segment (a backup's hard links) keep their bytes.
    Salvage,
}

/// Default of [`SegmentOptions::zero_ahead_bytes`].
pub const DEFAULT_ZERO_AHEAD: u64 = 2 << 20;

/// Default of [`SegmentOptions::buffered_write_bytes`].
pub const DEFAULT_BUFFERED_WRITE_BYTES: u64 = 1 << 20;

/// Default of [`SegmentOptions::overlap_min_records`].
pub const DEFAULT_OVERLAP_MIN_RECORDS: usize = 32;

/// Default [`SegmentOptions::cached_sealed_segments`]: the two newest sealed segments stay
/// in the page cache (256 MiB with default segments).
pub const DEFAULT_CACHED_SEALED_SEGMENTS: usize = 2;

/// Settings of the segment layer. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Size in bytes at which the writer rolls to a new segment. Default: 128 MiB.
    pub segment_size_bytes: u64,
    /// Largest record (one append or batch, header included) in bytes. Default: 64 MiB;
    /// at most 1 GiB and at most `segment_size_bytes - 64`.
    pub max_record_size_bytes: u32,
    /// Durability of acknowledged appends. Default: [`SyncMode::Always`].
    pub sync_mode: SyncMode,
    /// Handling of damage found when opening. Default: [`RecoveryMode::TolerateTornTail`].
    pub recovery_mode: RecoveryMode,
    /// Reserve each new segment's full size up front (`fallocate`), so appends do not grow
    /// the file. Default: true.
    pub preallocate: bool,
    /// Bytes of the active segment a background thread keeps written with zeros ahead of
    /// the tail, with preallocation and [`SyncMode::Always`] only. Appends then write into
    /// space whose blocks are already mapped, so their fdatasync is a pure data flush instead
    /// of also writing the file's block map (measured on ext4: about half the latency).
    /// Zeros read as the end of data, so the format does not change; recovery reads at most
    /// this many zeros more. 0 turns it off; less than a page means a page; more than a
    /// segment means up to the segment's end. Default: 2 MiB.
    pub zero_ahead_bytes: u64,
    /// Prepare the next segment in the background: a file beside the log
    /// (`NEXT_SEGMENT`), preallocated and written with zeros a little ahead of how far the
    /// active segment is filled, that the roll renames into place. Commit rounds then never
    /// sync zeros or a block-map change, and a roll costs a header write and two syncs. Costs
    /// up to one segment of extra disk space and writes each segment's bytes twice (once as
    /// zeros), as zeros ahead do. With preallocation and [`SyncMode::Always`] only.
    /// Default: true.
    pub prepare_next_segment: bool,
    /// Bytes of buffered appends ([`crate::SegmentLog::submit_buffered`]) queued in memory
    /// before the appender writes them to the file itself (without fsync). Bounds what a
    /// bulk import holds in memory; larger values mean fewer, bigger writes. Default: 1 MiB.
    pub buffered_write_bytes: u64,
    /// Records that must be queued before a commit round starts while the previous round's
    /// fsync is still in flight (two rounds in flight at most, acknowledged in order); fewer
    /// do, down to a quarter of it, when they are at least as many as that round carries.
    /// Many devices complete two overlapping flushes in much less than twice the time of
    /// one; a lone appender never waits for this. With [`SyncMode::Always`] only. 0 turns
    /// overlapping rounds off (one round in flight, as rounds were before). Default: 32.
    pub overlap_min_records: usize,
    /// How many of the newest sealed segments this writer keeps in the page cache. Older
    /// segments that it sealed (whole and synced by then, never written again) are dropped
    /// from the page cache (`POSIX_FADV_DONTNEED`) by the background thread soon after a
    /// roll: a log that streams writes then holds a bounded share of memory, and the pages
    /// of its new segments reuse the memory of the old instead of taking fresh memory
    /// (measured in a microVM that hands freed memory back to its host: writing into fresh
    /// memory cost ~3 s of system time per GiB, into reused memory ~0.3 s). Reads of a
    /// dropped segment come from the disk. Segments this writer did not seal (those found
    /// at open) are left to the kernel, as are pages a reader's map holds. `None` leaves
    /// every page to the kernel. Only where the background thread runs: real files,
    /// preallocated segments and [`SyncMode::Always`]. Default: 2.
    pub cached_sealed_segments: Option<usize>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE,
            max_record_size_bytes: DEFAULT_MAX_RECORD_SIZE,
            sync_mode: SyncMode::Always,
            recovery_mode: RecoveryMode::TolerateTornTail,
            preallocate: true,
            zero_ahead_bytes: DEFAULT_ZERO_AHEAD,
            prepare_next_segment: true,
            buffered_write_bytes: DEFAULT_BUFFERED_WRITE_BYTES,
            overlap_min_records: DEFAULT_OVERLAP_MIN_RECORDS,
            cached_sealed_segments: Some(DEFAULT_CACHED_SEALED_SEGMENTS),
        }
    }
}

impl SegmentOptions {
    /// Checks that the options can work together.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] naming the first problem.
    pub fn validate(&self) -> Result<()> {
        if self.max_record_size_bytes > MAX_RECORD_SIZE_LIMIT {
            return Err(Error::InvalidOptions(format!(
                "max_record_size_bytes {} exceeds the limit of {MAX_RECORD_SIZE_LIMIT}",
                self.max_record_size_bytes
            )));
        }
        let capacity = self
            .segment_size_bytes
            .saturating_sub(SEGMENT_HEADER_LEN as u64);
        if u64::from(self.max_record_size_bytes) > capacity {
            return Err(Error::InvalidOptions(format!(
                "max_record_size_bytes {} does not fit in a segment of {} bytes",
                self.max_record_size_bytes, self.segment_size_bytes
            )));
        }
        if self.max_record_size_bytes < 64 {
            return Err(Error::InvalidOptions(
                "max_record_size_bytes must be at least 64".into(),
            ));
        }
        Ok(())
    }
}
