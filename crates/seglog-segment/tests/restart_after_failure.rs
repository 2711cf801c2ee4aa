//! A failed write or fsync, then a restart of the process on the same machine (the page
//! cache still holds what the failed writeback did not write), then a power cut: nothing
//! acknowledged — before or after the restart — may be lost, and the log must open.
//!
//! Also the simulated file system's model of that kernel behaviour, and of directory
//! creation, which these tests rely on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::crash::opts;
use common::payload;
use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, Fault, FaultKind, Op, SimFs};
use seglog_segment::io::{FileSystem, SegmentFile};
use seglog_segment::SegmentLog;
use std::path::Path;

fn open(fs: &SimFs) -> SegmentLog<SimFs> {
    SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("open failed: {e}"))
        .0
}

fn append(log: &SegmentLog<SimFs>, i: u64) -> seglog_segment::Result<u64> {
    let p = payload(i);
    log.append(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: 0,
        payloads: &[&p[..]],
    })
    .map(|a| a.lsn)
}

/// Every record of the log: (LSN, first payload).
fn contents(fs: &SimFs) -> Vec<(u64, Vec<u8>)> {
    let log = open(fs);
    let got = log
        .records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            let first = r.view().events().next().unwrap().to_vec();
            (r.view().lsn(), first)
        })
        .collect();
    log.close().unwrap();
    got
}

fn assert_acked_present(got: &[(u64, Vec<u8>)], acked: &[(u64, u64)], what: &str) {
    for (lsn, i) in acked {
        assert!(
            got.iter().any(|(l, p)| l == lsn && *p == payload(*i)),
            "{what}: acknowledged LSN {lsn} (payload {i}) is missing; the log holds LSNs {:?}",
            got.iter().map(|(l, _)| *l).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_failed_sync_is_reported_once_and_its_bytes_stay_only_in_the_page_cache() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let file = fs.create_new(Path::new("/d/f")).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    file.write_all_at(b"durable", 0).unwrap();
    file.sync_data().unwrap();
    fs.inject(Fault {
        op: Some(Op::SyncData),
        nth: fs.op_count(Op::SyncData) + 1,
        kind: FaultKind::Eio,
        persistent: false,
    });
    file.write_all_at(b"LOST", 0).unwrap();
    assert!(
        file.sync_data().is_err(),
        "the injected failure is reported"
    );
    assert!(file.sync_data().is_ok(), "… but only once");
    // A restarted process reads the page cache …
    let reopened = fs.open(Path::new("/d/f")).unwrap();
    let mut buf = [0u8; 7];
    reopened.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"LOSTble");
    // … and its own fsync does not write the failed pages: they were marked clean.
    reopened.sync_data().unwrap();
    let after_cut = fs.crash(CrashMode::KeepUnsynced);
    assert_eq!(after_cut.read_file(Path::new("/d/f")).unwrap(), b"durable");
}

#[test]
fn a_new_directory_survives_a_power_cut_only_once_its_parent_is_synced() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/a/b")).unwrap();
    fs.create_new(Path::new("/a/b/f")).unwrap();
    fs.sync_dir(Path::new("/a/b")).unwrap();
    let cut = fs.crash(CrashMode::LoseUnsynced);
    assert!(
        cut.list(Path::new("/a/b")).is_err(),
        "/a/b was never linked durably"
    );
    assert!(cut.read_file(Path::new("/a/b/f")).is_none());

    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/a/b")).unwrap();
    fs.create_new(Path::new("/a/b/f")).unwrap();
    for d in ["/a/b", "/a", "/"] {
        fs.sync_dir(Path::new(d)).unwrap();
    }
    let cut = fs.crash(CrashMode::LoseUnsynced);
    assert!(cut.read_file(Path::new("/a/b/f")).is_some());
}

#[test]
fn a_new_log_directory_survives_a_power_cut() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/var/lib/app/log", opts(), &mut ()).unwrap();
    let lsn = append(&log, 1).unwrap();
    drop(log);
    let cut = fs.crash(CrashMode::LoseUnsynced);
    let (log, _) = SegmentLog::open(cut, "/var/lib/app/log", opts(), &mut ()).unwrap();
    let lsns: Vec<u64> = log
        .records()
        .unwrap()
        .map(|r| r.unwrap().view().lsn())
        .collect();
    assert_eq!(
        lsns,
        vec![lsn],
        "the acknowledged append lived in a directory a power cut took"
    );
}

/// Appends until the next append must create a new segment; returns the acknowledged
/// (LSN, payload index) pairs and the next payload index.
fn fill_first_segment(log: &SegmentLog<SimFs>) -> (Vec<(u64, u64)>, u64) {
    let mut acked = Vec::new();
    let mut i = 1;
    loop {
        let before = log.segments().len();
        // Stop right before the record that would roll: `payload(i)` plus the header must
        // not fit in what is left of the first segment.
        let tail = log.segments().last().unwrap().data_end;
        if tail + 48 + 4 + 4 + 6 + payload(i).len() as u64 > opts().segment_size_bytes {
            return (acked, i);
        }
        acked.push((append(log, i).unwrap(), i));
        assert_eq!(log.segments().len(), before);
        i += 1;
    }
}

#[test]
fn a_segment_left_by_a_failed_roll_is_made_durable_before_anything_is_appended_to_it() {
    // The roll after the first segment fails at each of its steps in turn: the
    // preallocation (ENOSPC), the fsync of the new segment's header (EIO), the directory
    // fsync that makes its name durable (EIO).
    for (op, skip, kind) in [
        (Op::Allocate, 0, FaultKind::Enospc),
        (Op::SyncData, 1, FaultKind::Eio), // the seal's fsync comes first
        (Op::SyncDir, 0, FaultKind::Eio),
    ] {
        let what = format!("{op:?} failing with {kind:?}");
        let fs = SimFs::new();
        let log = open(&fs);
        let (mut acked, mut i) = fill_first_segment(&log);
        fs.inject(Fault {
            op: Some(op),
            nth: fs.op_count(op) + 1 + skip,
            kind,
            persistent: false,
        });
        assert!(append(&log, i).is_err(), "{what}: the roll must fail");
        i += 1;
        drop(log);
        fs.clear_faults();
        // The process restarts on the same machine and goes on appending.
        let log = open(&fs);
        for _ in 0..3 {
            acked.push((append(&log, i).unwrap(), i));
            i += 1;
        }
        drop(log);
        for mode in [CrashMode::LoseUnsynced, CrashMode::Reordered { seed: i }] {
            let got = contents(&fs.crash(mode));
            assert_acked_present(&got, &acked, &format!("{what}, then {mode:?}"));
        }
    }
}

#[test]
fn records_a_failed_fsync_left_in_the_page_cache_are_made_durable_before_they_are_vouched_for() {
    for group in [1u64, 3] {
        let fs = SimFs::new();
        let log = open(&fs);
        let mut acked = Vec::new();
        for i in 1..=3 {
            acked.push((append(&log, i).unwrap(), i));
        }
        fs.inject(Fault {
            op: Some(Op::SyncData),
            nth: fs.op_count(Op::SyncData) + 1,
            kind: FaultKind::Eio,
            persistent: false,
        });
        // One commit round of `group` records whose fsync fails: never acknowledged, still
        // in the page cache.
        let lsns: Vec<u64> = (0..group)
            .map(|k| {
                let p = payload(10 + k);
                log.submit(
                    log.encode(&EventBatch {
                        encoding: 0,
                        execution_id: b"exec",
                        tenant_id: b"tenant",
                        first_seq: 10 + k,
                        timestamp_unix_nanos: 0,
                        payloads: &[&p[..]],
                    })
                    .unwrap(),
                )
                .unwrap()
                .lsn
            })
            .collect();
        assert!(log.wait_durable(*lsns.last().unwrap()).is_err());
        assert!(log.poisoned().is_some());
        drop(log);
        // Restart without a power cut: recovery finds those records in the page cache.
        let log = open(&fs);
        let seen: Vec<u64> = log
            .records()
            .unwrap()
            .map(|r| r.unwrap().view().lsn())
            .collect();
        for i in 20..23 {
            acked.push((append(&log, i).unwrap(), i));
        }
        drop(log);
        let cut = fs.crash(CrashMode::LoseUnsynced);
        let got = contents(&cut);
        assert_acked_present(&got, &acked, &format!("group of {group}"));
        // What the restarted process served before the cut must not vanish either.
        for lsn in seen {
            assert!(
                got.iter().any(|(l, _)| *l == lsn),
                "group of {group}: LSN {lsn}, served after the restart, vanished in the power cut"
            );
        }
    }
}
