//! Teeth for `sync` under `SyncMode::Never` (`SyncPoint::ExplicitSyncFsync`): without its
//! own fdatasync, a power cut right after `sync` returned loses what it returned for
//! (`sync_under_never.rs` checks the same with every sync in place).
//!
//! Built only with `RUSTFLAGS="--cfg seglog_teeth"` (`.ci/run`). One test per binary: the
//! switch is process-wide.
#![cfg(seglog_teeth)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::never::{batch, opts, payload, recovered};
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::teeth::{disable, SyncPoint};
use seglog_segment::SegmentLog;

/// Records kept by a power cut right after `sync` returned for 10 buffered ones.
fn kept_after_sync() -> usize {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=10u64 {
        let p = payload(i);
        log.submit_buffered(log.encode(&batch(i, &p)).unwrap())
            .unwrap();
    }
    assert_eq!(log.sync().unwrap(), 10);
    recovered(&fs.crash(CrashMode::LoseUnsynced)).len()
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
