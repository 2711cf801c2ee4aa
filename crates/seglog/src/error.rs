//! The engine's error type.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `seglog`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the segment layer: I/O, corruption, poisoning, size limits, locking.
    #[error(transparent)]
    Segment(seglog_segment::Error),

    /// The log was opened with [`crate::Log::open_read_only`]: appends, syncs and
    /// compactions are refused. Nothing was written.
    #[error("the log is open read-only")]
    ReadOnly,

    /// From the index layer: inconsistent records, limits.
    #[error(transparent)]
    Index(seglog_index::Error),

    /// An append names another tenant than the one the execution belongs to. Nothing was
    /// written. (Neither tenant is named, so the error leaks no other tenant's data.)
    #[error("execution {execution:?} belongs to another tenant")]
    TenantMismatch {
        /// The execution.
        execution: String,
    },

    /// `append_expecting`: the execution's last sequence is not the expected one.
    #[error("conflict: expected last sequence {expected}, found {actual}")]
    Conflict {
        /// The caller's expectation (0 = must not exist).
        expected: u64,
        /// The execution's last sequence.
        actual: u64,
    },

    /// A batch with no events. Nothing was written and no execution was created.
    #[error("empty batch: an append needs at least one event")]
    EmptyBatch,

    /// An id that is empty or longer than 255 bytes.
    #[error("invalid {what} id: must be 1..=255 bytes")]
    InvalidId {
        /// "execution" or "tenant".
        what: &'static str,
    },

    /// The log was closed.
    #[error("the log is closed")]
    Closed,

    /// The options cannot work together.
    #[error("invalid options: {0}")]
    InvalidOptions(String),

    /// A stored record does not say what the index expects of it.
    #[error("corruption: {0}")]
    Corruption(String),

    /// A compaction is erasing this execution: appends to it fail until the compaction
    /// ends. Afterwards the id is free again (a new execution starts at sequence 1).
    #[error("execution {execution:?} is being erased by a compaction; retry once it ends")]
    Erasing {
        /// The execution.
        execution: String,
    },

    /// A chunked read ([`crate::Log::events`]) found that the execution it was reading had
    /// been erased by a compaction between two chunks (and maybe created again since).
    #[error("execution {execution:?} was erased while it was being read")]
    Erased {
        /// The execution.
        execution: String,
    },

    /// From compaction.
    #[error(transparent)]
    Compaction(seglog_compact::Error),

    /// Segment `segment` is offloaded (its file left the directory, its bytes are in object
    /// storage) and `what` cannot be done with it: a read without a segment source, a
    /// global-order read, a backup, an erasure of records in it.
    #[error("segment {segment} is offloaded to object storage: {what} cannot use it")]
    Offloaded {
        /// The offloaded segment.
        segment: u64,
        /// What was refused.
        what: &'static str,
    },

    /// Reading an offloaded segment's bytes through its source failed (nothing was
    /// returned: never other bytes).
    #[error("reading offloaded segment {segment} from {location}: {source}")]
    ColdRead {
        /// The offloaded segment.
        segment: u64,
        /// Where its bytes are.
        location: String,
        /// The source's error.
        #[source]
        source: crate::offloaded::SourceError,
    },

    /// [`crate::repair_dir`] refused before changing anything: the directory holds no log, or
    /// a compaction's switch is pending (the next open finishes it).
    #[error("cannot repair: {0}")]
    Unrepairable(String),
}

impl From<seglog_segment::Error> for Error {
    fn from(e: seglog_segment::Error) -> Self {
        // One `Closed`, one `ReadOnly` and one `Corruption` for callers to match, whichever
        // layer noticed (the segment layer's message, with its segment and offset, is kept).
        match e {
            seglog_segment::Error::ReadOnly => Error::ReadOnly,
            seglog_segment::Error::Closed => Error::Closed,
            e @ (seglog_segment::Error::Corruption { .. }
            | seglog_segment::Error::ChecksumMismatch { .. }
            | seglog_segment::Error::DamagedFile { .. }) => Error::Corruption(e.to_string()),
            other => Error::Segment(other),
        }
    }
}

impl From<seglog_compact::Error> for Error {
    fn from(e: seglog_compact::Error) -> Self {
        match e {
            seglog_compact::Error::Segment(s) => Error::from(s),
            other => Error::Compaction(other),
        }
    }
}

impl From<seglog_index::Error> for Error {
    fn from(e: seglog_index::Error) -> Self {
        match e {
            seglog_index::Error::Segment(s) => Error::from(s),
            seglog_index::Error::Conflict { expected, actual } => {
                Error::Conflict { expected, actual }
            }
            other => Error::Index(other),
        }
    }
}

impl Error {
    /// An I/O error of `op` on `path`, as the segment layer reports one.
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Segment(seglog_segment::Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }

    /// True when the log is poisoned by an I/O failure and must be reopened.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Error::Segment(seglog_segment::Error::Poisoned { .. }))
    }

    /// What poisoned the log (for a poisoned log's errors): its message and the operating
    /// system's error, so that a full disk (`ENOSPC`) is told apart from a failing one.
    pub fn poison_cause(&self) -> Option<&seglog_segment::PoisonCause> {
        match self {
            Error::Segment(e) => e.poison_cause(),
            _ => None,
        }
    }

    /// True when another writer holds the log directory: [`crate::Log::open`] found it
    /// locked (open it with [`crate::Log::open_read_only`] to read it meanwhile).
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Segment(e) if e.is_locked())
    }

    /// True when the bytes on disk are damaged (a checksum mismatch, a record or checkpoint
    /// that a correct writer cannot have produced), as opposed to the OS failing an
    /// operation or the caller asking for something invalid.
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Segment(e) => e.is_corruption(),
            Error::Corruption(_) => true,
            Error::Index(seglog_index::Error::Inconsistent { .. }) => true,
            _ => false,
        }
    }

    /// True when the log is open read-only and the call would have written.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Error::ReadOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn every_layer_s_closed_read_only_and_corruption_are_the_engine_s_own() {
        assert!(matches!(
            Error::from(seglog_segment::Error::Closed),
            Error::Closed
        ));
        assert!(matches!(
            Error::from(seglog_segment::Error::ReadOnly),
            Error::ReadOnly
        ));
        let via_index = seglog_index::Error::Segment(seglog_segment::Error::Closed);
        assert!(matches!(Error::from(via_index), Error::Closed));
        let damaged = seglog_segment::Error::ChecksumMismatch {
            segment: 7,
            offset: 4096,
        };
        match Error::from(damaged) {
            Error::Corruption(m) => assert!(m.contains("segment 7") && m.contains("4096"), "{m}"),
            other => panic!("{other}"),
        }
    }
}
