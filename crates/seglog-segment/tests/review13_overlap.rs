//! Review 13: overlapping commit rounds (commit 437ab9f). Each test names what must hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::{Appended, SegmentLog, SegmentOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long round A's failing fsync takes: the test thread submits the next records while
/// it runs, and must not miss it on a loaded machine.
const A_SYNC: Duration = Duration::from_millis(1500);

/// Waits until round A, led on its own thread, has written (it is in its fsync then): no
/// fixed sleep, which a thread scheduled late outlasts.
fn a_in_its_round(fs: &SimFs, writes_before: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fs.op_count(Op::Write) == writes_before {
        assert!(
            std::time::Instant::now() < deadline,
            "setup: round A never wrote"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `R13_OVERLAP=0` runs every test with overlapping rounds off: the control (they pass).
fn overlap_min_records(default: usize) -> usize {
    std::env::var("R13_OVERLAP").map_or(default, |v| v.parse().unwrap())
}

fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 8192,
        max_record_size_bytes: 4096,
        overlap_min_records: overlap_min_records(2),
        ..SegmentOptions::default()
    }
}

fn record(log: &SegmentLog<SimFs>, i: u64, len: usize) -> seglog_segment::format::EncodedRecord {
    let payload = vec![b'a' + (i % 26) as u8; len];
    log.encode(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: 0,
        payloads: std::slice::from_ref(&payload),
    })
    .unwrap()
}

/// Sets up: round A (record r1) is in its fsync, which will fail with EIO after a while,
/// through the segment's *first* handle (A is the log's first commit round: ticket 0).
/// Meanwhile records r2..r4 (segment 1) and r5 (too big for segment 1: it rolls) are queued,
/// enough to overlap, and a second appender claims the writer's seat for them. Its round
/// must wait for A (it rolls), and A fails. Returns the log, r1, and what each appender got.
struct Scenario {
    fs: SimFs,
    log: Arc<SegmentLog<SimFs>>,
    r1: Appended,
    sealed_seen: Arc<Mutex<Vec<(u64, u64, u64)>>>,
    first: seglog_segment::Result<()>,
    second: seglog_segment::Result<()>,
}

fn failed_round_then_rolling_round() -> Scenario {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let log = Arc::new(log);
    let sealed_seen = Arc::new(Mutex::new(Vec::new()));
    {
        let seen = sealed_seen.clone();
        log.set_seal_listener(Box::new(move |info, bytes| {
            seen.lock()
                .unwrap()
                .push((info.number, info.last_lsn, bytes.len() as u64));
        }));
    }
    // The next fsync (round A's commit fsync) takes long and fails.
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    fs.set_sync_latency_cycle(&[A_SYNC, Duration::from_millis(1)]);
    let writes_before = fs.op_count(Op::Write);
    let r1 = log.submit(record(&log, 1, 100)).unwrap();
    let first = {
        let log = log.clone();
        std::thread::spawn(move || log.wait_durable(r1.lsn))
    };
    // A is in its fsync now.
    a_in_its_round(&fs, writes_before);
    let _r2 = log.submit(record(&log, 2, 100)).unwrap();
    let _r3 = log.submit(record(&log, 3, 3000)).unwrap();
    let _r4 = log.submit(record(&log, 4, 3000)).unwrap();
    let r4 = log.submit(record(&log, 5, 3000)).unwrap();
    assert_ne!(
        r4.position.segment, r1.position.segment,
        "test setup: r4 must roll"
    );
    let second = {
        let log = log.clone();
        std::thread::spawn(move || log.wait_durable(r4.lsn))
    };
    let first = first.join().unwrap();
    let second = second.join().unwrap();
    Scenario {
        fs,
        log,
        r1,
        sealed_seen,
        first,
        second,
    }
}

/// A round whose fsync failed must never become readable: the round that took the writer's
/// seat while it was in flight (and waited for it, because it rolls) must not seal the
/// segment with the failed round's records in it — the seal's fsync goes through the handle
/// that already reported the failure, so it returns Ok, and `seal_segment` publishes the
/// segment's end (and hands the bytes to the seal listener) although they are not on disk.
#[test]
fn records_of_a_failed_round_never_become_readable_through_a_later_seal() {
    let s = failed_round_then_rolling_round();
    assert!(s.first.is_err(), "round A's fsync failed: {:?}", s.first);
    assert!(s.second.is_err(), "after A failed: {:?}", s.second);
    assert!(s.log.poisoned().is_some());
    let readable = s.log.read(s.r1.position);
    let segments = s.log.segments();
    let sealed = s.sealed_seen.lock().unwrap().clone();
    assert!(
        readable.is_err() && sealed.is_empty(),
        "r1 (LSN {}) was never durable (its fsync failed), yet readers see it: read = {:?}, \
         segments = {segments:#?}, seal listener saw {sealed:?}",
        s.r1.lsn,
        readable.map(|r| r.view().lsn())
    );
}

/// The log survives a failed fsync: after a power cut it opens again (a failed round is at
/// worst a torn tail of the last segment), and everything a reader could read before the cut
/// is still there.
#[test]
fn a_failed_round_under_an_overlapping_roll_leaves_a_log_that_opens_with_what_readers_saw() {
    let s = failed_round_then_rolling_round();
    assert!(s.first.is_err());
    let seen: Vec<u64> = s
        .log
        .records()
        .unwrap()
        .filter_map(|r| r.ok().map(|r| r.view().lsn()))
        .collect();
    let survived = s.fs.crash(CrashMode::LoseUnsynced);
    let reopened = SegmentLog::open(survived, "/log", opts(), &mut ());
    let (log, _) = match reopened {
        Ok(x) => x,
        Err(e) => panic!(
            "the log no longer opens after one failed fsync: {e} (readers had seen LSNs {seen:?})"
        ),
    };
    let after: Vec<u64> = log
        .records()
        .unwrap()
        .map(|r| r.unwrap().view().lsn())
        .collect();
    let vanished: Vec<_> = seen.iter().filter(|l| !after.contains(l)).collect();
    assert!(
        vanished.is_empty(),
        "records readers saw vanished after the power cut: {vanished:?} (saw {seen:?}, now {after:?})"
    );
}

/// The durable log is a prefix of the submitted one: a record whose fsync failed is never
/// followed, after a power cut, by later records that survived. Here round A (r1, segment 1)
/// fails while the seat holder's round starts with a roll (r2 does not fit segment 1): it
/// waits for A, then — the log already poisoned — seals segment 1 at its last *published* end
/// (cutting r1 off), creates segment 2 and writes and fsyncs r2 and r3 there (through
/// segment 2's own handles, which never saw A's error): LSN 1 is gone, LSNs 2 and 3 are
/// durable.
#[test]
fn records_after_a_failed_round_never_survive_it() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let log = Arc::new(log);
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    fs.set_sync_latency_cycle(&[A_SYNC, Duration::from_millis(1)]);
    let writes_before = fs.op_count(Op::Write);
    let r1 = log.submit(record(&log, 1, 4020)).unwrap();
    let first = {
        let log = log.clone();
        std::thread::spawn(move || log.wait_durable(r1.lsn))
    };
    a_in_its_round(&fs, writes_before);
    let r2 = log.submit(record(&log, 2, 4020)).unwrap();
    let r3 = log.submit(record(&log, 3, 3000)).unwrap();
    assert_ne!(
        r2.position.segment, r1.position.segment,
        "test setup: r2 must roll"
    );
    let second = {
        let log = log.clone();
        std::thread::spawn(move || log.wait_durable(r3.lsn))
    };
    assert!(first.join().unwrap().is_err());
    assert!(second.join().unwrap().is_err());
    drop(log);
    let survived = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(survived, "/log", opts(), &mut ()).unwrap();
    let lsns: Vec<u64> = log
        .records()
        .unwrap()
        .map(|r| r.unwrap().view().lsn())
        .collect();
    let prefix: Vec<u64> = (1..=lsns.len() as u64).collect();
    assert_eq!(
        lsns, prefix,
        "the surviving log is not a prefix of what was submitted (r1 failed, later records survived)"
    );
}

/// `durable_watch()`'s value never moves back. `publish` stores the watermark under the
/// commit lock but sends it on the channel after releasing it: round A publishes (LSN a),
/// drops the lock; round B, done with its fsync and spinning in `wait_for_turn`, publishes
/// and sends b > a; then A sends a — the channel now says a, and stays there until the next
/// round. With one round at a time this needed a whole round inside A's window; with
/// overlapping rounds the next publisher is already waiting for the lock.
#[test]
fn the_durable_watch_never_moves_back_under_overlapping_rounds() {
    // The window is narrow: a few runs.
    for _ in 0..8 {
        durable_watch_run();
    }
}

fn durable_watch_run() {
    let fs = SimFs::new();
    fs.set_sync_latency_cycle(&[Duration::from_micros(900), Duration::from_micros(100)]);
    let opts = SegmentOptions {
        segment_size_bytes: 1 << 20,
        overlap_min_records: overlap_min_records(1),
        ..opts()
    };
    let (log, _) = SegmentLog::open(fs, "/log", opts, &mut ()).unwrap();
    let log = Arc::new(log);
    let rx = log.durable_watch();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut last = 0u64;
            let mut regressions = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = rx.current();
                if now < last {
                    regressions.push((last, now));
                }
                last = last.max(now);
            }
            regressions
        })
    };
    let writers: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let r = log.submit(record(&log, t * 1000 + i, 50)).unwrap();
                    log.wait_durable(r.lsn).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let regressions = watcher.join().unwrap();
    if std::env::var("R13_OVERLAP").is_err() {
        assert!(
            log.stats().overlapped_rounds > 0,
            "no overlap: the test exercised nothing"
        );
    }
    assert!(
        regressions.is_empty(),
        "durable_watch() moved back {} times, e.g. {:?}",
        regressions.len(),
        &regressions[..regressions.len().min(5)]
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The second handle is for the *active* segment (`SegmentEntry::overlap_file`: "a second
/// handle of the active segment"), but a sealed segment keeps it for as long as the log is
/// open: every segment rolled in this process holds two descriptors, so a log that rolls
/// often reaches the descriptor limit twice as early — and then `create_segment`, which now
/// fails the round when that second `open` fails, poisons the log. `create_segment` opens it
/// even with `overlap_min_records: 0` (overlap off), so turning the feature off does not help.
#[test]
fn sealed_segments_do_not_keep_the_second_handle() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SegmentOptions {
        preallocate: false,
        ..opts()
    };
    let (log, _) = SegmentLog::open(seglog_segment::io::StdFs, dir.path(), opts, &mut ()).unwrap();
    let before = open_fds();
    let rolls = 40;
    for i in 0..rolls {
        let payload = vec![b'x'; 100];
        log.append(&EventBatch {
            encoding: 0,
            execution_id: b"exec",
            tenant_id: b"tenant",
            first_seq: i + 1,
            timestamp_unix_nanos: 0,
            payloads: std::slice::from_ref(&payload),
        })
        .unwrap();
        log.roll().unwrap();
    }
    let added = open_fds().saturating_sub(before);
    // One descriptor per new segment (reads of sealed segments), one more for the active
    // segment's second handle, and a little slack for the test harness.
    assert!(
        added <= rolls as usize + 4,
        "{rolls} rolls added {added} open descriptors: sealed segments keep their second handle"
    );
}
