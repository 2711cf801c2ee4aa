//! [`IndexView`]: what a policy may look at. Built by the engine from its index under a
//! read lock, then handed to pure policy functions.

use bytes::Bytes;

/// One execution as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSummary {
    /// Execution id.
    pub id: String,
    /// Its tenant.
    pub tenant: String,
    /// Number of events.
    pub events: u64,
    /// Of `events`, those durable and readable when the view was taken. The rest (buffered
    /// appends, appends on their way to disk) are not in the segments' `bytes` yet.
    pub durable_events: u64,
    /// Which incarnation of the id this is (its first record's LSN). An execution erased
    /// and created again under the same id is another incarnation.
    pub incarnation: Incarnation,
    /// Timestamp of its last event, nanoseconds since the Unix epoch.
    pub last_timestamp_unix_nanos: i64,
    /// Numbers of the segments holding its records, ascending, without repeats.
    pub segments: Vec<u64>,
    /// The bytes its durable records hold in the segments the view lists (exact: each
    /// record, framing included). What dropping it frees there; retention by size weighs
    /// executions by it, and never drops one at 0 (a view built by hand without it).
    pub bytes: u64,
    /// Its last event, when the view was built with them (for "finished" predicates).
    pub last_event: Option<LastEvent>,
}

/// One incarnation of an execution id: the execution created by the record at
/// `created_lsn`, as a view saw it.
///
/// An LSN names one record for good once that record is durable. Before that it does not:
/// a record lost in a crash or a failed write gives its LSN back, and after the log is
/// reopened the next append takes it again (review 108). So an incarnation whose first
/// record was not durable yet when the view was taken is only trusted on the open log
/// that view was of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Incarnation {
    /// The LSN of the execution's first record.
    pub created_lsn: u64,
    /// `None` when that record was durable when the view was taken; otherwise the open log
    /// whose view saw it (`seglog::Log::open_number`): on any other, this incarnation
    /// names nothing.
    pub unsettled_in: Option<u64>,
}

impl Incarnation {
    /// The incarnation of an execution whose first record, at `created_lsn`, is durable.
    pub fn settled(created_lsn: u64) -> Self {
        Incarnation {
            created_lsn,
            unsettled_in: None,
        }
    }

    /// True when an execution created at `created_lsn`, found on the open log numbered
    /// `open_number`, is this incarnation.
    pub fn is(&self, created_lsn: u64, open_number: u64) -> bool {
        self.created_lsn == created_lsn && self.unsettled_in.is_none_or(|o| o == open_number)
    }
}

/// The last event of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastEvent {
    /// The payload encoding tag stored with it.
    pub encoding: u8,
    /// The payload.
    pub payload: Bytes,
}

/// One segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Segment number.
    pub number: u64,
    /// LSN of its first record.
    pub first_lsn: u64,
    /// Its size in bytes (durable data, header included).
    pub bytes: u64,
    /// Only sealed segments are ever rewritten.
    pub sealed: bool,
    /// Its records are already grouped by execution (written by a clustering compaction).
    pub clustered: bool,
}

/// A snapshot of the index for policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexView {
    /// "Now" for age-based policies, nanoseconds since the Unix epoch (passed in, so that
    /// policies stay pure and testable).
    pub now_unix_nanos: i64,
    /// Every execution, in creation order.
    pub executions: Vec<ExecutionSummary>,
    /// Every segment, in log order; the last is the active one.
    pub segments: Vec<SegmentSummary>,
}
