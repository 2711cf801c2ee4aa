//! Review 167: `lock_dir` checks the lock, then the registry, with nothing tying the two
//! together: a departure that ends between them turns a free directory into `Locked`.
//!
//! `writer::lock_dir` tries `fs.lock_dir`; on `WouldBlock` it calls `departing::wait_for`,
//! which returns false at once when no departure of the path is registered *now*. If the
//! departing log's round ends, and its `Inner` drops the lock and then the `Departure`,
//! after the failed try and before `wait_for` takes the registry's mutex (the opening
//! thread is descheduled, or the lock call itself is slow: a busy machine, a file system
//! whose `flock` round-trips), the open reports `Error::Locked` for a directory that is
//! free, and that no writer holds any more. Which is exactly the case the departure
//! registry exists for (a program drops its log and reopens the directory at once).
//!
//! Here the window is widened deterministically: a file system wrapping `SimFs` whose
//! refused `lock_dir` takes 800 ms to report the refusal (as if the thread were
//! descheduled right after the failed `flock`); the departing round is a 300 ms fsync.
//!
//! Root cause: the registry is consulted after the lock attempt and only about departures
//! still registered; a departure that ended since the attempt is not noticed (no
//! generation count, no retry of the lock after a `false`).
//!
//! Expected (fails on the current code): the reopen succeeds.
//!
//! Fixed (2026-12-08): an open that finds no departure after a refusal tries the lock once
//! more (a departure ends only after its lock is gone).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::io::{FileIdentity, FileSystem};
use seglog_segment::{SegmentLog, SegmentOptions};
use std::io;
use std::path::{Path, PathBuf};
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

/// `SimFs` whose refused directory lock is reported late.
#[derive(Clone)]
struct SlowRefusal(SimFs);

impl FileSystem for SlowRefusal {
    type File = <SimFs as FileSystem>::File;
    type DirLock = <SimFs as FileSystem>::DirLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Self::File> {
        self.0.create_new(path)
    }
    fn open(&self, path: &Path) -> io::Result<Self::File> {
        self.0.open(path)
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Self::File> {
        self.0.open_read_only(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn rename_no_replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename_no_replace(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Self::DirLock> {
        let tried = self.0.lock_dir(dir);
        if matches!(&tried, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            // The opening thread is descheduled right after the failed flock.
            std::thread::sleep(Duration::from_millis(800));
        }
        tried
    }
    fn identity(&self, path: &Path) -> io::Result<FileIdentity> {
        self.0.identity(path)
    }
    fn absolute(&self, path: &Path) -> io::Result<PathBuf> {
        self.0.absolute(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.hard_link(from, to)
    }
    fn link_count(&self, path: &Path) -> io::Result<u64> {
        self.0.link_count(path)
    }
    fn zeroes_ahead(&self) -> bool {
        self.0.zeroes_ahead()
    }
}

#[test]
fn a_departure_that_ends_between_the_lock_attempt_and_the_registry_check_is_missed() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let acked = log.append(&batch(&[b"acked".as_slice()])).unwrap();
    fs.set_sync_latency(Duration::from_millis(300));
    let before = fs.syncs_started();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let in_task = log.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let payload = [b"cancelled".as_slice()];
            let b = batch(&payload);
            let mut append = std::pin::pin!(in_task.append_async(&b));
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
    while fs.syncs_started() == before {
        assert!(
            Instant::now() < deadline,
            "setup: the round's fsync never began"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    fs.set_sync_latency(Duration::ZERO);
    drop(log); // departing: its round's fsync sleeps for 300 ms
    drop(rt);

    let opened = SegmentLog::open(SlowRefusal(fs.clone()), "/log", opts(), &mut ());
    let (log, _) = opened.unwrap_or_else(|e| {
        panic!("the directory was free by the time the open looked at the registry, yet: {e}")
    });
    let rec = log.read(acked.position).unwrap();
    assert_eq!(
        rec.view().events().collect::<Vec<_>>(),
        vec![b"acked".as_slice()]
    );
    log.close().unwrap();
}
