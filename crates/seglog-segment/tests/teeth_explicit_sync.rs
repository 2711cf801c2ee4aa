//! Teeth for `sync` under `SyncMode::Never` (`SyncPoint::ExplicitSyncFsync`): without its
//! own fdatasync, a power cut right after `sync` returned loses what it returned for
//! (`sync_under_never.rs` checks the same with every sync in place).
//!
//! Built only with `RUSTFLAGS="--cfg seglog_teeth"` (`.ci/run`). One test per binary: the
//! switch is process-wide.
#![cfg(seglog_teeth)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::teeth::{disable, SyncPoint};
use seglog_segment::{SegmentLog, SegmentOptions, SyncMode};

fn opts() -> SegmentOptions {
    SegmentOptions {
        sync_mode: SyncMode::Never,
        ..SegmentOptions::default()
    }
}

/// Records kept by a power cut right after `sync` returned for 10 buffered ones.
fn kept_after_sync() -> usize {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=10u64 {
        let payload = vec![i.to_le_bytes().to_vec()];
        let batch = EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: i,
            timestamp_unix_nanos: 0,
            payloads: &payload,
        };
        log.submit_buffered(log.encode(&batch).unwrap()).unwrap();
    }
    assert_eq!(log.sync().unwrap(), 10);
    let crashed = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(crashed, "/log", opts(), &mut ()).unwrap();
    log.records().unwrap().count()
}

#[test]
fn sync_under_never_needs_its_own_fsync() {
    disable(None);
    let with = kept_after_sync();
    disable(Some(SyncPoint::ExplicitSyncFsync));
    let without = kept_after_sync();
    disable(None);
    assert_eq!(with, 10, "records lost with every sync in place");
    assert!(
        without < 10,
        "removing ExplicitSyncFsync went unnoticed ({without} kept)"
    );
}
