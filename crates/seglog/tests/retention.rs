//! Automatic retention (`Options::retention`): the background thread drops what the limits
//! say, reports it in `Stats`, and stops with the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{CheckpointMode, Log, Options, Retention};
use std::time::{Duration, Instant};

fn options(retention: Retention) -> Options {
    Options::default()
        .segment_size_bytes(64 << 10)
        .checkpoints(CheckpointMode::Inline)
        .retention(retention)
}

/// Waits (at most 20 s) until `done` holds for the log's stats.
fn wait_for(log: &Log, done: impl Fn(&seglog::Stats) -> bool) -> seglog::Stats {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = log.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "retention never got there: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn executions_idle_for_longer_than_max_age_are_dropped_and_recent_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    // The age is long enough that "recent" (stamped before its fdatasync) stays young from
    // its append to the close below on a loaded machine: at 400 ms a slow sync and a stalled
    // test thread could let a pass drop it.
    let max_age = Duration::from_secs(3);
    let retention = Retention::default()
        .max_age(max_age)
        .interval(Duration::from_millis(50));
    let log = Log::open_blocking(dir.path(), options(retention.clone())).unwrap();
    for i in 0..5 {
        log.append_blocking(&format!("old-{i}"), "t", b"x").unwrap();
    }
    std::thread::sleep(max_age + Duration::from_millis(100));
    let stats = wait_for(&log, |s| s.retention.executions_dropped >= 5);
    // "recent" is appended only now: it may not go in the same pass.
    log.append_blocking("recent", "t", b"y").unwrap();
    assert_eq!(stats.retention.events_dropped, 5);
    assert_eq!(stats.retention.failures, 0, "{stats:?}");
    assert!(stats.retention.passes >= 1);
    assert!(!log.exists("old-0").unwrap());
    assert!(log.exists("recent").unwrap());
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), options(Retention::default())).unwrap();
    assert_eq!(log.list_executions("t", 10, 0).unwrap(), vec!["recent"]);
}

#[test]
fn a_size_limit_drops_the_least_recently_active_executions_until_the_log_fits() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), options(Retention::default())).unwrap();
    let payload = vec![7u8; 1_000];
    // 40 executions of 20 KB, oldest first: ~800 KB in ~13 segments.
    for i in 0..40 {
        for _ in 0..20 {
            log.append_blocking(&format!("e{i:02}"), "t", &payload)
                .unwrap();
        }
    }
    log.close().unwrap();
    let limit = 300 << 10;
    let retention = Retention::default()
        .max_log_bytes(limit)
        .interval(Duration::from_millis(50));
    let log = Log::open_blocking(dir.path(), options(retention)).unwrap();
    let stats = wait_for(&log, |_| {
        log.segments().iter().map(|s| s.data_end).sum::<u64>() <= limit
    });
    assert_eq!(stats.retention.failures, 0, "{stats:?}");
    let kept = log.list_executions("t", 100, 0).unwrap();
    // What stays is the newest executions, whole; enough of them to fill most of the limit.
    assert!(kept.len() >= 8 && kept.len() < 40, "{kept:?}");
    let newest_first: Vec<String> = (0..40).rev().map(|i| format!("e{i:02}")).collect();
    assert_eq!(kept, newest_first[..kept.len()]);
    for id in &kept {
        assert_eq!(log.read(id).unwrap().len(), 20);
    }
}

#[test]
fn close_stops_the_thread_and_a_dropped_log_lets_go_of_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention::default()
        .max_age(Duration::from_secs(3600))
        .interval(Duration::from_secs(3600));
    let log = Log::open_blocking(dir.path(), options(retention.clone())).unwrap();
    log.append_blocking("e", "t", b"x").unwrap();
    let started = Instant::now();
    log.close().unwrap();
    // The thread sleeps for an hour between passes: close wakes it, never waits it out.
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = Log::open_blocking(dir.path(), options(retention.clone())).unwrap();
    drop(log);
    // Dropped without close: the lock goes with the log (the thread held it only weakly).
    let log = Log::open_blocking(dir.path(), options(retention)).unwrap();
    assert!(log.exists("e").unwrap());
    assert_eq!(log.stats().retention.executions_dropped, 0);
}

#[test]
fn a_zero_interval_is_refused_before_the_log_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention::default()
        .max_age(Duration::from_secs(1))
        .interval(Duration::ZERO);
    let err = Log::open_blocking(dir.path().join("log"), options(retention)).unwrap_err();
    assert!(matches!(err, seglog::Error::InvalidOptions(_)), "{err}");
    assert!(!dir.path().join("log").exists());
}
