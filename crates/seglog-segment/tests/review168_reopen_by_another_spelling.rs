//! Review 168: the departure registry only helps an open that spells the directory exactly
//! as the departing log did; through a symlink, or a path with `..`, the same directory is
//! reported `Locked` at once while its departing log's round still runs.
//!
//! A program drops its log (the last handle goes while a cancelled async append's round
//! still runs on the round runner) and reopens the directory (commit 7bbea4e: "a program
//! that drops its log can reopen the directory at once"). On real files, with the same
//! path, the open waits for the departure and succeeds. With another name of the same
//! directory (a symlinked data directory, `/srv/app/../app/log`, a config that names the
//! real path where the code used the link), the `flock` conflicts (it is one `LOCK` file)
//! but `departing::wait_for` finds no departure under that spelling and the open fails with
//! `Error::Locked` at once. Here the round is kept running by a seal listener that takes
//! 1.5 s (standing in for a slow fdatasync on `StdFs`).
//!
//! Root cause: departures are keyed by `std::path::absolute` of the path the log was opened
//! with, which neither resolves symlinks nor `..`; the lock itself is keyed by the file.
//!
//! Expected (fails on the current code): each spelling reopens the directory, as the
//! original spelling does.
//!
//! Fixed (2026-12-08): departures are keyed by the directory's identity (device and inode),
//! not its path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 3000,
        ..SegmentOptions::default()
    }
}

fn batch<'a>(payload: &'a [&'a [u8]; 1]) -> EventBatch<'a, &'a [u8]> {
    EventBatch {
        encoding: 0,
        execution_id: b"x",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: payload,
    }
}

/// Opens `dir`, and leaves it departing: the last handle dropped while a cancelled async
/// append's round, whose seal listener takes 1.5 s, runs on the round runner.
fn depart(dir: &Path) {
    let (log, _) = SegmentLog::open(StdFs, dir, opts(), &mut ()).unwrap();
    let first = [b'a'; 2100];
    log.append(&batch(&[&first[..]])).unwrap();
    let entered = Arc::new(AtomicBool::new(false));
    {
        let entered = entered.clone();
        log.set_seal_listener(Box::new(move |_, _| {
            entered.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
        }));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let in_task = log.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let second = [b'b'; 2100];
            let payload = [&second[..]];
            let second = batch(&payload);
            let mut append = std::pin::pin!(in_task.append_async(&second));
            std::future::poll_fn(|cx| {
                let _ = std::future::Future::poll(append.as_mut(), cx);
                std::task::Poll::Ready(())
            })
            .await;
        })
        .await
        .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !entered.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "setup: the round never sealed");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(log);
    drop(rt);
}

fn reopen(dir: &Path, what: &str) {
    match SegmentLog::open(StdFs, dir, opts(), &mut ()) {
        Ok((log, _)) => log.close().unwrap(),
        Err(e) => panic!("{what}: the reopen of the departing log's directory failed: {e}"),
    }
}

#[test]
fn the_same_spelling_waits_for_the_departure() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    depart(&real);
    reopen(&real, "same path");
}

#[test]
fn another_spelling_of_the_same_directory_is_locked_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    let link = tmp.path().join("link");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let dotdot: PathBuf = tmp.path().join("real").join("..").join("real");
    let mut failures = Vec::new();
    for (spelling, what) in [(&link, "through a symlink"), (&dotdot, "with ..")] {
        depart(&real);
        if let Err(e) = SegmentLog::open(StdFs, spelling, opts(), &mut ()).map(|(l, _)| l.close()) {
            failures.push(format!("{what} ({}): {e}", spelling.display()));
        }
        // Let the departure end before the next round of the test.
        reopen(&real, "same path, after");
    }
    assert!(failures.is_empty(), "reopens refused: {failures:#?}");
}
