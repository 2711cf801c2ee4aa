//! The systems under test, behind one small trait.

mod floor;
pub mod raft_engine_peer;
mod seglog_log;
mod seglog_segment_peer;
pub mod seglog_trait;
mod sqlite;

use anyhow::Result;
use std::path::Path;

pub use floor::{bandwidth as bandwidth_floor, BANDWIDTH_WRITE_BYTES};

/// Name of the per-append floor peer: the reference of "vs floor".
pub const FLOOR: &str = "floor (write+fdatasync)";
/// Name of the durable-bandwidth floor: the reference of "vs floor" where it runs (W9).
pub const BANDWIDTH_FLOOR: &str = "bandwidth floor (1 MiB write+fdatasync)";
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

/// `SEGLOG_BENCH_OVERLAP`: the seglog peers' `overlap_min_records`, for A/B runs (0 turns
/// overlapping commit rounds off).
pub fn overlap_override() -> Result<Option<usize>> {
    match std::env::var("SEGLOG_BENCH_OVERLAP") {
        Ok(v) => Ok(Some(v.parse()?)),
        Err(_) => Ok(None),
    }
}
