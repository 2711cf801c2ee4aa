//! The compaction crate's error type.

/// What can go wrong while compacting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the segment layer (I/O, corruption, a poisoned or closed log).
    #[error(transparent)]
    Segment(#[from] seglog_segment::Error),

    /// A segment to rewrite is not a sealed segment of the log.
    #[error("segment {0} cannot be compacted: it is not a sealed segment of this log")]
    NotSealed(u64),

    /// A record position past what the index can hold (4 GiB segments, 2^32 segments).
    #[error("compaction output exceeds the index's limits: {0}")]
    LimitExceeded(&'static str),
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
