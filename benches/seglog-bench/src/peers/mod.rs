//! The systems under test, behind one small trait.

mod floor;
pub mod raft_engine_peer;
mod seglog_log;
mod seglog_segment_peer;
pub mod seglog_trait;
mod sqlite;

use anyhow::Result;
use std::path::Path;

pub use floor::{
    appending_bandwidth as appending_floor, bandwidth as bandwidth_floor, BANDWIDTH_WRITE_BYTES,
};

/// Name of the per-append floor peer: the reference of "vs floor".
pub const FLOOR: &str = "floor (write+fdatasync)";
/// Name of the durable-bandwidth floor: the reference of "vs floor" where it runs (W9).
pub const BANDWIDTH_FLOOR: &str = "bandwidth floor (1 MiB write+fdatasync)";
/// Name of the appending floor, W9's second reference (new data, dropped behind).
pub const APPENDING_FLOOR: &str = "appending floor (1 MiB append+fdatasync, dropped behind)";
/// Name of the raft-engine peer: the reference of "vs raft-engine".
pub const RAFT_ENGINE: &str = "raft-engine";

/// One system that can make an append durable.
pub trait Peer: Send + Sync {
    /// Appends `payload` to `execution` and returns once it is durable.
    fn append(&self, execution: u64, payload: &[u8]) -> Result<()>;

    /// Appends `payloads` to `execution` atomically, with one durability wait, in the peer's
    /// native way (one transaction, one log batch, one record).
    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()>;
}

/// How to make a fresh instance of a peer in a directory.
pub struct PeerKind {
    /// Name in reports.
    pub name: &'static str,
    /// Opens a fresh instance in an empty directory.
    pub open: fn(&Path) -> Result<Box<dyn Peer>>,
}

/// Every peer, in the order of the first round.
pub fn all() -> Vec<PeerKind> {
    vec![
        PeerKind {
            name: FLOOR,
            open: floor::open,
        },
        PeerKind {
            name: "SQLite (WAL, synchronous=FULL)",
            open: sqlite::open,
        },
        PeerKind {
            name: RAFT_ENGINE,
            open: raft_engine_peer::open,
        },
        PeerKind {
            name: "seglog-segment",
            open: seglog_segment_peer::open,
        },
        PeerKind {
            name: "seglog (Log)",
            open: seglog_log::open,
        },
        PeerKind {
            name: "seglog via EventStore",
            open: seglog_trait::open,
        },
    ]
}

/// Settings of the seglog peers (and of the streaming store's log, `streaming`) taken from
/// the environment, for A/B runs (docs/benchmarks.md): each is `None` when its variable is
/// unset. (`SEGLOG_BENCH_STATS`, set to anything, makes `streaming` print each seglog
/// append workload's commit rounds, group sizes and fdatasync time to stderr.)
/// - `SEGLOG_BENCH_ZERO_AHEAD`: `zero_ahead_bytes` (0 turns the zeroed window off);
/// - `SEGLOG_BENCH_OVERLAP`: `overlap_min_records` (0 turns overlapping rounds off);
/// - `SEGLOG_BENCH_PREPARE`: `prepare_next_segment` (0 turns the prepared segment off);
/// - `SEGLOG_BENCH_SEGMENT_BYTES`: `segment_size_bytes`;
/// - `SEGLOG_BENCH_PREALLOCATE`: `preallocate` (0 lets segments grow with their records);
/// - `SEGLOG_BENCH_CACHED_SEALED`: `cached_sealed_segments` (a number, or `all`: sealed
///   segments stay in the page cache).
#[derive(Debug, Default)]
pub struct EngineKnobs {
    pub zero_ahead_bytes: Option<u64>,
    pub overlap_min_records: Option<usize>,
    pub prepare_next_segment: Option<bool>,
    pub segment_size_bytes: Option<u64>,
    pub preallocate: Option<bool>,
    pub cached_sealed_segments: Option<Option<usize>>,
}

/// Applies the knobs that are set to `$options` (a `seglog::Options` or a
/// `seglog_segment::SegmentOptions`: the fields share their names).
macro_rules! apply_engine_knobs {
    ($knobs:expr, $options:expr) => {{
        let (knobs, options) = (&$knobs, &mut $options);
        if let Some(v) = knobs.segment_size_bytes {
            options.segment_size_bytes = v;
        }
        if let Some(v) = knobs.zero_ahead_bytes {
            options.zero_ahead_bytes = v;
        }
        if let Some(v) = knobs.overlap_min_records {
            options.overlap_min_records = v;
        }
        if let Some(v) = knobs.prepare_next_segment {
            options.prepare_next_segment = v;
        }
        if let Some(v) = knobs.preallocate {
            options.preallocate = v;
        }
        if let Some(v) = knobs.cached_sealed_segments {
            options.cached_sealed_segments = v;
        }
    }};
}
pub(crate) use apply_engine_knobs;

impl EngineKnobs {
    pub fn from_env() -> Result<Self> {
        fn var<T: std::str::FromStr>(name: &str) -> Result<Option<T>>
        where
            T::Err: std::error::Error + Send + Sync + 'static,
        {
            match std::env::var(name) {
                Ok(v) => Ok(Some(v.parse()?)),
                Err(_) => Ok(None),
            }
        }
        Ok(EngineKnobs {
            zero_ahead_bytes: var("SEGLOG_BENCH_ZERO_AHEAD")?,
            overlap_min_records: var("SEGLOG_BENCH_OVERLAP")?,
            prepare_next_segment: var::<u8>("SEGLOG_BENCH_PREPARE")?.map(|v| v != 0),
            segment_size_bytes: var("SEGLOG_BENCH_SEGMENT_BYTES")?,
            preallocate: var::<u8>("SEGLOG_BENCH_PREALLOCATE")?.map(|v| v != 0),
            cached_sealed_segments: match std::env::var("SEGLOG_BENCH_CACHED_SEALED") {
                Ok(v) if v == "all" => Some(None),
                Ok(v) => Some(Some(v.parse()?)),
                Err(_) => None,
            },
        })
    }
}
