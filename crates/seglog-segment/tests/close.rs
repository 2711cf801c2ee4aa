//! Closing a log: what `close` promises (every submitted append drained, nothing written after
//! it, a commit marker that tells damage from a torn tail, the lock released for every copy of
//! its descriptor), `SyncMode::Never`'s honesty about what is durable, and a commit round that
//! panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{payload, small_opts as opts};
use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, SimFs};
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::{Error, SegmentLog, SegmentOptions, SyncMode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn append_at<F: FileSystem>(
    log: &SegmentLog<F>,
    i: u64,
) -> seglog_segment::Result<seglog_segment::Appended> {
    let p = payload(i);
    log.append(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: 0,
        payloads: &[&p[..]],
    })
}

fn append<F: FileSystem>(log: &SegmentLog<F>, i: u64) -> seglog_segment::Result<u64> {
    append_at(log, i).map(|a| a.lsn)
}

fn lsns(fs: &SimFs, opts: SegmentOptions) -> seglog_segment::Result<Vec<u64>> {
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts, &mut ())?;
    let got = log
        .records()?
        .map(|r| r.map(|r| r.view().lsn()))
        .collect::<seglog_segment::Result<Vec<u64>>>()?;
    log.close()?;
    Ok(got)
}

#[test]
fn nothing_is_written_after_close_returns_and_every_acknowledged_append_is_durable() {
    for round in 0..20u64 {
        let fs = SimFs::new();
        fs.set_sync_latency(Duration::from_micros(300));
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        let started = AtomicBool::new(false);
        let (ops_at_close, acked) = std::thread::scope(|s| {
            let writers: Vec<_> = (0..4u64)
                .map(|t| {
                    let log = log.clone();
                    let started = &started;
                    s.spawn(move || {
                        let mut acked = Vec::new();
                        for k in 0.. {
                            started.store(true, Ordering::Release);
                            match append(&log, t * 1000 + k) {
                                Ok(lsn) => acked.push(lsn),
                                Err(Error::Closed) => break,
                                Err(e) => panic!("round {round}: append failed with {e}"),
                            }
                        }
                        acked
                    })
                })
                .collect();
            while !started.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            log.close().unwrap();
            let ops_at_close = fs.mutating_ops();
            let acked: Vec<u64> = writers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect();
            (ops_at_close, acked)
        });
        assert_eq!(
            fs.mutating_ops(),
            ops_at_close,
            "round {round}: the log was written after close returned"
        );
        let got = lsns(&fs.crash(CrashMode::LoseUnsynced), opts()).unwrap();
        for lsn in acked {
            assert!(
                got.contains(&lsn),
                "round {round}: acknowledged LSN {lsn} lost"
            );
        }
    }
}

#[test]
fn damage_to_the_last_records_after_a_clean_close_is_corruption_not_a_torn_tail() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=5 {
        append(&log, i).unwrap();
    }
    let last = log.segments().last().unwrap().clone();
    log.close().unwrap();
    let mut bytes = fs.read_file(&last.path).unwrap();
    // A bit flips in the payload of the last record, acknowledged before the close.
    bytes[last.data_end as usize - 3] ^= 0x04;
    fs.replace_file(&last.path, bytes).unwrap();
    match lsns(&fs, opts()) {
        Err(Error::Corruption { offset, .. }) => assert!(offset < last.data_end),
        other => panic!("damage to an acknowledged record was accepted: {other:?}"),
    }
}

/// The same with the segment not preallocated, so that the file ends exactly at the commit
/// marker: the look-ahead for a later durable record must reach the last header-sized slot
/// of the file (it stopped one short, took the damaged acknowledged record for a torn tail
/// and dropped it).
#[test]
fn damage_before_a_commit_marker_that_ends_the_file_is_corruption_not_a_torn_tail() {
    let fs = SimFs::new();
    let opts = || SegmentOptions {
        preallocate: false,
        ..opts()
    };
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    for i in 1..=5 {
        append(&log, i).unwrap();
    }
    let last = log.segments().last().unwrap().clone();
    log.close().unwrap();
    let mut bytes = fs.read_file(&last.path).unwrap();
    assert_eq!(
        bytes.len() as u64,
        last.data_end + seglog_segment::format::COMMIT_MARKER_LEN as u64,
        "the file ends at the commit marker"
    );
    bytes[last.data_end as usize - 3] ^= 0x04;
    fs.replace_file(&last.path, bytes).unwrap();
    match lsns(&fs, opts()) {
        Err(Error::Corruption { offset, .. }) => assert!(offset < last.data_end),
        other => panic!("damage to an acknowledged record was accepted: {other:?}"),
    }
}

#[test]
fn a_clean_close_and_reopen_leaves_every_record_readable_and_appendable() {
    let fs = SimFs::new();
    for cycle in 0..3u64 {
        let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
        for i in 0..4 {
            append(&log, cycle * 10 + i).unwrap();
        }
        log.close().unwrap();
    }
    let got = lsns(&fs.crash(CrashMode::LoseUnsynced), opts()).unwrap();
    assert_eq!(got.len(), 12, "{got:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]));
}

fn never() -> SegmentOptions {
    SegmentOptions {
        sync_mode: SyncMode::Never,
        ..opts()
    }
}

#[test]
fn sync_mode_never_close_makes_every_append_durable() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", never(), &mut ()).unwrap();
    let acked: Vec<u64> = (1..=5).map(|i| append(&log, i).unwrap()).collect();
    log.close().unwrap();
    assert_eq!(
        lsns(&fs.crash(CrashMode::LoseUnsynced), never()).unwrap(),
        acked
    );
}

#[test]
fn sync_mode_never_does_not_vouch_for_records_it_never_synced() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", never(), &mut ()).unwrap();
    let mut offsets = Vec::new();
    for i in 1..=5 {
        offsets.push(append_at(&log, i).unwrap().position);
    }
    let path = log.segments().last().unwrap().path.clone();
    // The process dies (no close); then the power: the third record is torn, the later
    // ones happen to survive.
    drop(log);
    let cut = fs.crash(CrashMode::KeepUnsynced);
    let mut bytes = cut.read_file(&path).unwrap();
    let torn = offsets[2].offset as usize;
    bytes[torn..torn + 16].fill(0);
    cut.replace_file(&path, bytes).unwrap();
    let got = lsns(&cut, never()).unwrap_or_else(|e| {
        panic!("unsynced records vouched for each other and a torn write failed the open: {e}")
    });
    assert_eq!(got.len(), 2, "the log is cut at the torn record: {got:?}");
}

#[test]
fn a_commit_round_that_panics_poisons_the_log_instead_of_hanging_its_waiters() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    log.set_seal_listener(Box::new(|_, _| panic!("seal listener fails")));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..4u64 {
        let log = log.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Enough to fill the first segment and need a roll, which seals.
                (0..40)
                    .map(|k| append(&log, t * 100 + k))
                    .find(Result::is_err)
            }));
            let _ = done_tx.send(outcome.is_err() || matches!(outcome, Ok(Some(_))));
        });
    }
    for _ in 0..4 {
        let stopped = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("an appender hangs after a commit round panicked");
        assert!(stopped, "appends went on after a commit round panicked");
    }
    assert!(log.poisoned().is_some());
    assert!(matches!(append(&log, 999), Err(Error::Poisoned { .. })));
}

#[test]
fn reopening_right_after_close_succeeds_while_a_forked_child_shares_the_lock_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = SegmentLog::open(StdFs, dir.path(), opts(), &mut ()).unwrap();
    append(&log, 1).unwrap();
    // Another thread of the application forks a child that has not called exec yet: it
    // holds copies of every descriptor, the log's lock among them.
    // SAFETY: the child only sleeps and exits, both async-signal-safe.
    #[allow(unsafe_code)]
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        #[allow(unsafe_code)]
        unsafe {
            libc::sleep(5);
            libc::_exit(0);
        }
    }
    log.close().unwrap();
    let reopened = SegmentLog::open(StdFs, dir.path(), opts(), &mut ());
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    let (log, _) = reopened.expect("the lock outlived close in a forked child");
    assert_eq!(log.records().unwrap().count(), 1);
    log.close().unwrap();
}
