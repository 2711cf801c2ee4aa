//! Review 69: `Log::sync` under `SyncMode::Never`.
//!
//! `Log::sync` (and `sync_blocking`) promise: "Makes every append submitted before the call
//! durable — buffered ones included — ... one commit round (one write of what is queued and
//! one fdatasync)". `SyncMode::Never` says appends are acknowledged once written and
//! "nothing is synced until the segment is sealed or the log is closed" — for the appends;
//! `sync` is the explicit request for durability (RocksDB's `SyncWAL` after unsynced writes,
//! raft-engine's `sync`), and neither doc carves it out. Under `Never` the segment layer
//! counts a record durable once written, so `sync` finds nothing to wait for and returns Ok
//! without any fdatasync: a power cut after it loses what it returned Ok for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, Log, Options, SyncMode};

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(1 << 20)
        .checkpoints(CheckpointMode::Inline)
        .sync_mode(SyncMode::Never)
}

#[test]
fn what_sync_returned_ok_for_survives_a_power_cut_in_sync_mode_never() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    for i in 0..10u64 {
        log.append_batch_buffered("e", "t", &[i.to_le_bytes()])
            .unwrap();
    }
    log.append_blocking("e", "t", b"durable?").unwrap();
    let syncs_before = fs.op_count(seglog::io::sim::Op::SyncData);
    log.sync_blocking().unwrap();
    let syncs = fs.op_count(seglog::io::sim::Op::SyncData) - syncs_before;
    // The power goes off right after `sync` returned Ok.
    let after = fs.crash(CrashMode::LoseUnsynced);
    drop(log);
    let log = Log::open_with_fs(after, "/log", opts()).unwrap();
    let kept = log.read("e").unwrap().len();
    assert_eq!(
        kept, 11,
        "sync returned Ok for 11 events ({syncs} fdatasync in the call); a power cut kept {kept}"
    );
}
