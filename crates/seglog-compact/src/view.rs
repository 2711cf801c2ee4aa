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
    /// The LSN of its first record: which incarnation of the id this is. An execution
    /// erased and created again under the same id has a later one.
    pub created_lsn: u64,
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
