//! Engine settings. Every field documents its unit and default.

use seglog_segment::{RecoveryMode, SegmentOptions, SyncMode};

/// When index checkpoints are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointMode {
    /// Written by a background thread after each segment is sealed; loaded on open.
    #[default]
    Background,
    /// Written on the commit leader's thread as part of sealing (deterministic: for tests).
    Inline,
    /// Neither written nor loaded: open reads every segment.
    Off,
}

/// Settings of a [`crate::Log`]. `Options::default()` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Segment size in bytes at which the log rolls over. Default: 128 MiB; at most 4 GiB.
    pub segment_size_bytes: u64,
    /// Largest append (one record: a single event or a whole batch, with ~60 bytes of
    /// header and ids) in bytes. Default: `None`, meaning 64 MiB, or what fits in a segment
    /// when segments are smaller. An explicit value must fit in a segment.
    pub max_record_size_bytes: Option<u32>,
    /// Durability of acknowledged appends. Default: [`SyncMode::Always`].
    pub sync_mode: SyncMode,
    /// Handling of damage found on open. Default: [`RecoveryMode::TolerateTornTail`].
    pub recovery_mode: RecoveryMode,
    /// Index checkpoints. Default: [`CheckpointMode::Background`].
    pub checkpoints: CheckpointMode,
    /// Preallocate segments (`fallocate`). Default: true.
    pub preallocate: bool,
    /// Bytes kept written with zeros ahead of the tail by a background thread, so that
    /// commit fsyncs do not also write the file's block map (see
    /// [`SegmentOptions::zero_ahead_bytes`]). 0 turns it off. Default: 2 MiB.
    pub zero_ahead_bytes: u64,
    /// Bytes of buffered appends ([`crate::Log::append_batch_buffered`]) queued in memory
    /// before the appender writes them out (without fsync). Default: 1 MiB.
    pub buffered_write_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        let s = SegmentOptions::default();
        Options {
            segment_size_bytes: s.segment_size_bytes,
            max_record_size_bytes: None,
            sync_mode: s.sync_mode,
            recovery_mode: s.recovery_mode,
            checkpoints: CheckpointMode::default(),
            preallocate: s.preallocate,
            zero_ahead_bytes: s.zero_ahead_bytes,
            buffered_write_bytes: s.buffered_write_bytes,
        }
    }
}

impl Options {
    pub(crate) fn segment_options(&self) -> crate::Result<SegmentOptions> {
        if self.segment_size_bytes > u64::from(u32::MAX) {
            return Err(crate::Error::InvalidOptions(
                "segment_size_bytes must be at most 4 GiB".into(),
            ));
        }
        let fits = self
            .segment_size_bytes
            .saturating_sub(seglog_segment::format::SEGMENT_HEADER_LEN as u64);
        let max_record_size_bytes = self.max_record_size_bytes.unwrap_or_else(|| {
            u32::try_from(fits.min(u64::from(seglog_segment::format::DEFAULT_MAX_RECORD_SIZE)))
                .unwrap_or(u32::MAX)
        });
        Ok(SegmentOptions {
            segment_size_bytes: self.segment_size_bytes,
            max_record_size_bytes,
            sync_mode: self.sync_mode,
            recovery_mode: self.recovery_mode,
            preallocate: self.preallocate,
            zero_ahead_bytes: self.zero_ahead_bytes,
            buffered_write_bytes: self.buffered_write_bytes,
        })
    }
}
