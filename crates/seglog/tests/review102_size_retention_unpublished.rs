//! Review 102: `keep_log_under` sizes executions by `durable_events`, which is the index's
//! *published* sequence (`visible_seq`), and skips executions with none. Automatic
//! retention plans at the compaction's step 1 from the index as it is, without publishing
//! what has become durable since (only readers, `sync`, buffered appends and
//! `compaction_view` publish). Buffered appends made durable by a later durable append
//! (buffered.rs: "until a commit round syncs it — `Log::sync`, any durable append, or
//! `close`") stay unpublished in a process that only appends: retention by size then
//! counts none of those bytes' events, never drops those (oldest) executions, and drops the
//! newest acknowledged executions instead — while the log stays over its limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options, Retention};
use std::time::{Duration, Instant};

#[test]
fn size_retention_drops_the_newest_acknowledged_execution_and_keeps_the_oldest_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1u64 << 20;
    let retention = Retention::default()
        .max_log_bytes(limit)
        .interval(Duration::from_millis(300));
    let options = Options::default()
        .segment_size_bytes(16 << 20)
        .retention(retention);
    let log = Log::open_blocking(dir.path(), options).unwrap();
    // A historical import: 40 executions of 50 KB, buffered (2 MB, twice the limit).
    let payload = vec![7u8; 1_000];
    for i in 0..40 {
        for _ in 0..50 {
            log.append_batch_buffered(&format!("old-{i:02}"), "t", &[payload.as_slice()])
                .unwrap();
        }
    }
    // Live traffic: a durable append, whose commit round makes the import durable too.
    log.append_blocking("live-0", "t", b"acknowledged just now")
        .unwrap();
    let on_disk: u64 = log.segments().iter().map(|s| s.data_end).sum();
    assert!(on_disk > 2_000_000, "the import is on disk: {on_disk}");
    // Retention by size runs (no read, no sync in between: a write-only service).
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.stats().retention.passes < 2 {
        assert!(Instant::now() < deadline, "no retention pass");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = log.stats().retention;
    let on_disk: u64 = log.segments().iter().map(|s| s.data_end).sum();
    let old_kept = (0..40)
        .filter(|i| log.exists(&format!("old-{i:02}")).unwrap())
        .count();
    let live_kept = log.exists("live-0").unwrap();
    assert!(
        live_kept && old_kept < 40,
        "retention by size (limit {limit}) kept all {old_kept} oldest executions and \
         dropped the newest acknowledged one (live-0 kept: {live_kept}); the log holds \
         {on_disk} bytes; {stats:?}"
    );
    log.close().unwrap();
}
