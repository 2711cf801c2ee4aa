//! The index layer's error type.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the index layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the segment layer below.
    #[error(transparent)]
    Segment(#[from] seglog_segment::Error),

    /// The log's records contradict each other (a sequence gap, a tenant change).
    #[error("inconsistent log at LSN {lsn}: {reason}")]
    Inconsistent {
        /// LSN of the record that does not fit.
        lsn: u64,
        /// What does not fit.
        reason: String,
    },

    /// An append names another tenant than the one the execution belongs to.
    #[error("execution belongs to another tenant")]
    TenantMismatch,

    /// Optimistic concurrency: the execution's last sequence is not the expected one.
    #[error("conflict: expected last sequence {expected}, found {actual}")]
    Conflict {
        /// What the caller expected.
        expected: u64,
        /// What the execution has.
        actual: u64,
    },

    /// An index limit was reached (more than 2^32 executions, tenants or events in one
    /// execution, or a segment over 4 GiB).
    #[error("index limit exceeded: {0}")]
    LimitExceeded(&'static str),
}
