//! Engine settings. Every field documents its unit and default.

use seglog_segment::{RecoveryMode, SegmentOptions, SyncMode};
use std::time::Duration;

/// When index checkpoints are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CheckpointMode {
    /// Written by a background thread after each segment is sealed; loaded on open.
    #[default]
    Background,
    /// Written on the commit leader's thread as part of sealing (deterministic: for tests).
    Inline,
    /// Neither written nor loaded: open reads every segment.
    Off,
}

/// Automatic retention: a background thread of the log that runs compaction's retention
/// policies every [`Retention::interval`] (see `Options::retention`). Off by default (no
/// limit set). Its passes show in [`crate::Stats`] (`retention_*`) and in `tracing`.
///
/// ```
/// use seglog::{Options, Retention};
/// use std::time::Duration;
///
/// let options = Options::default().retention(
///     Retention::default()
///         .max_age(Duration::from_secs(30 * 86_400))
///         .max_log_bytes(50 << 30),
/// );
/// assert!(options.retention.is_enabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct Retention {
    /// Drop every execution whose last event is older than this (whole executions: their
    /// sequences stay dense). Default: `None`, no age limit.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_age: Option<Duration>,
    /// Keep the log's segments under this many bytes by dropping the executions whose last
    /// event is oldest (`compaction::policy::keep_log_under`: an estimate, corrected by the
    /// next pass). Default: `None`, no size limit.
    #[cfg_attr(feature = "serde", serde(with = "crate::readable_size::optional_u64"))]
    pub max_log_bytes: Option<u64>,
    /// Time between passes (the first runs one interval after open). Default: 60 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: None,
            max_log_bytes: None,
            interval: Duration::from_secs(60),
        }
    }
}

/// Builder methods: each sets the field of the same name.
impl Retention {
    /// Sets [`Retention::max_age`].
    #[must_use]
    pub fn max_age(mut self, age: impl Into<Option<Duration>>) -> Self {
        self.max_age = age.into();
        self
    }

    /// Sets [`Retention::max_log_bytes`].
    #[must_use]
    pub fn max_log_bytes(mut self, bytes: impl Into<Option<u64>>) -> Self {
        self.max_log_bytes = bytes.into();
        self
    }

    /// Sets [`Retention::interval`].
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// True when a limit is set (then a writable log runs the background thread).
    pub fn is_enabled(&self) -> bool {
        self.max_age.is_some() || self.max_log_bytes.is_some()
    }
}

/// Settings of a [`crate::Log`]. `Options::default()` gives the documented defaults; set
/// the rest with the builder methods of the same names (new settings may be added in any
/// release, so the struct cannot be written as a literal outside this crate):
///
/// ```
/// use seglog::{CheckpointMode, Options};
///
/// let options = Options::default()
///     .segment_size_bytes(64 << 20)
///     .checkpoints(CheckpointMode::Inline);
/// assert_eq!(options.segment_size_bytes, 64 << 20);
/// ```
///
/// With the `serde` feature the options load from an application's configuration file:
/// every field is optional (missing ones take their defaults), unknown ones are refused,
/// and sizes may be written as numbers of bytes or as readable strings (`"128 MiB"`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct Options {
    /// Segment size in bytes at which the log rolls over. Default: 128 MiB; at most 4 GiB.
    #[cfg_attr(feature = "serde", serde(with = "crate::readable_size"))]
    pub segment_size_bytes: u64,
    /// Largest append (one record: a single event or a whole batch, with ~60 bytes of
    /// header and ids) in bytes. Default: `None`, meaning 64 MiB, or what fits in a segment
    /// when segments are smaller. An explicit value must fit in a segment.
    #[cfg_attr(feature = "serde", serde(with = "crate::readable_size::optional_u32"))]
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
    #[cfg_attr(feature = "serde", serde(with = "crate::readable_size"))]
    pub zero_ahead_bytes: u64,
    /// Prepare the next segment in the background (a `NEXT_SEGMENT` file beside the log,
    /// preallocated and zeroed ahead, renamed into place at the roll), so that commit fsyncs
    /// never also flush zeros or the block map and a roll is cheap (see
    /// [`SegmentOptions::prepare_next_segment`]). Costs up to one segment of disk space.
    /// Default: true.
    pub prepare_next_segment: bool,
    /// Bytes of buffered appends ([`crate::Log::append_batch_buffered`]) queued in memory
    /// before the appender writes them out (without fsync). Default: 1 MiB.
    #[cfg_attr(feature = "serde", serde(with = "crate::readable_size"))]
    pub buffered_write_bytes: u64,
    /// Records that must be queued before a commit round starts while the previous round's
    /// fsync is still in flight (at most two in flight, acknowledged in order; see
    /// [`SegmentOptions::overlap_min_records`]). 0 turns overlapping rounds off. Default: 32.
    pub overlap_min_records: usize,
    /// How many of the newest sealed segments stay in the page cache; older segments this
    /// log sealed are dropped from it in the background, so that streaming writes hold a
    /// bounded share of memory and reuse it (see
    /// [`SegmentOptions::cached_sealed_segments`]). `None` leaves every page to the kernel
    /// (in a configuration file: `"all"`, which formats without a null, such as TOML, can
    /// write too). Default: 2.
    #[cfg_attr(feature = "serde", serde(with = "cached_segments_written"))]
    pub cached_sealed_segments: Option<usize>,
    /// Automatic retention in the background. Default: off.
    pub retention: Retention,
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
            prepare_next_segment: s.prepare_next_segment,
            buffered_write_bytes: s.buffered_write_bytes,
            overlap_min_records: s.overlap_min_records,
            cached_sealed_segments: s.cached_sealed_segments,
            retention: Retention::default(),
        }
    }
}

/// Builder methods: each sets the field of the same name (see its documentation).
impl Options {
    /// Sets [`Options::segment_size_bytes`].
    #[must_use]
    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets [`Options::max_record_size_bytes`] (`None`: the default).
    #[must_use]
    pub fn max_record_size_bytes(mut self, bytes: impl Into<Option<u32>>) -> Self {
        self.max_record_size_bytes = bytes.into();
        self
    }

    /// Sets [`Options::sync_mode`].
    #[must_use]
    pub fn sync_mode(mut self, mode: SyncMode) -> Self {
        self.sync_mode = mode;
        self
    }

    /// Sets [`Options::recovery_mode`].
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Sets [`Options::checkpoints`].
    #[must_use]
    pub fn checkpoints(mut self, mode: CheckpointMode) -> Self {
        self.checkpoints = mode;
        self
    }

    /// Sets [`Options::preallocate`].
    #[must_use]
    pub fn preallocate(mut self, preallocate: bool) -> Self {
        self.preallocate = preallocate;
        self
    }

    /// Sets [`Options::zero_ahead_bytes`].
    #[must_use]
    pub fn zero_ahead_bytes(mut self, bytes: u64) -> Self {
        self.zero_ahead_bytes = bytes;
        self
    }

    /// Sets [`Options::cached_sealed_segments`].
    #[must_use]
    pub fn cached_sealed_segments(mut self, segments: Option<usize>) -> Self {
        self.cached_sealed_segments = segments;
        self
    }

    /// Sets [`Options::prepare_next_segment`].
    #[must_use]
    pub fn prepare_next_segment(mut self, prepare: bool) -> Self {
        self.prepare_next_segment = prepare;
        self
    }

    /// Sets [`Options::buffered_write_bytes`].
    #[must_use]
    pub fn buffered_write_bytes(mut self, bytes: u64) -> Self {
        self.buffered_write_bytes = bytes;
        self
    }

    /// Sets [`Options::overlap_min_records`].
    #[must_use]
    pub fn overlap_min_records(mut self, records: usize) -> Self {
        self.overlap_min_records = records;
        self
    }

    /// Sets [`Options::retention`].
    #[must_use]
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
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
            prepare_next_segment: self.prepare_next_segment,
            buffered_write_bytes: self.buffered_write_bytes,
            overlap_min_records: self.overlap_min_records,
            cached_sealed_segments: self.cached_sealed_segments,
        })
    }
}

/// [`Options::cached_sealed_segments`] in a configuration file: a number of segments, or
/// `"all"` for `None` (every page stays cached). `None` is written as `"all"`, not as a
/// null: a format without one (TOML) would leave the field out, and it would read back as
/// the default.
#[cfg(feature = "serde")]
mod cached_segments_written {
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

    const EVERY_PAGE: &str = "all";

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Count(usize),
        Word(String),
    }

    pub(super) fn serialize<S: Serializer>(
        segments: &Option<usize>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match segments {
            Some(n) => n.serialize(serializer),
            None => serializer.serialize_str(EVERY_PAGE),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<usize>, D::Error> {
        match Option::<Written>::deserialize(deserializer)? {
            Some(Written::Count(n)) => Ok(Some(n)),
            Some(Written::Word(w)) if w == EVERY_PAGE => Ok(None),
            Some(Written::Word(w)) => Err(de::Error::custom(format!(
                "cached_sealed_segments: {w:?} is neither a number of segments nor \"{EVERY_PAGE}\""
            ))),
            // A null, where the format has one.
            None => Ok(None),
        }
    }
}
