//! Buffered appends (`submit_buffered`) and `sync`: a bulk import that writes without an
//! fsync per record, then makes everything durable with one call.
//!
//! What must hold:
//! - a buffered record is neither readable nor acknowledged (`durable_lsn`) before a commit
//!   round syncs it, even once a full queue has been written to the file;
//! - a power cut at any point keeps every record a returned `sync` (or durable append)
//!   covered, and what survives is a whole prefix of what was submitted: no record vouches
//!   for bytes that were never synced, so a lost unsynced write reads as a torn tail, never
//!   as corruption;
//! - durable appenders waiting while a buffered round runs are acknowledged by a commit round
//!   of their own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::crash::{check, Outcome};
use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::{CrashMode, Op, SimFs};
use seglog_segment::{SegmentLog, SegmentOptions};

const BUFFERED_WRITE_BYTES: u64 = seglog_segment::DEFAULT_BUFFERED_WRITE_BYTES;

/// Segments of 1.5 MiB: a 2.4 MiB import rolls over while buffered.
/// No prepared segments, so no tail bound (format.md §3.6): its file is synced before the
/// first write of a session, and these tests count every sync as one of the segment's.
/// `tail_bound.rs` covers buffered rounds with a bound.
fn opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 1536 * 1024,
        max_record_size_bytes: 64 * 1024,
        prepare_next_segment: false,
        ..SegmentOptions::default()
    }
}

const RECORD_BYTES: usize = 60 * 1024;

fn payload(i: u64) -> Vec<u8> {
    let mut p = format!("record-{i}-").into_bytes();
    p.resize(RECORD_BYTES, b'a' + (i % 26) as u8);
    p
}

fn batch(i: u64, payload: &Vec<u8>) -> EventBatch<'_, Vec<u8>> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: 0,
        payloads: std::slice::from_ref(payload),
    }
}

/// Buffered appends with a `sync` every `sync_every` records and a durable append every 25th
/// (records of 60 KiB: a buffered round writes the queue after every ~18);
/// stops at the first error (the power went off). `acked` holds what a returned `sync` or
/// durable append covered.
fn import(fs: &SimFs, records: u64, sync_every: u64) -> Outcome {
    let mut out = Outcome::default();
    let Ok((log, _)) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()) else {
        return out;
    };
    for i in 1..=records {
        let p = payload(i);
        let Ok(record) = log.encode(&batch(i, &p)) else {
            return out;
        };
        let durable = i % 25 == 0;
        let submitted = if durable {
            log.submit(record)
        } else {
            log.submit_buffered(record)
        };
        let Ok(appended) = submitted else {
            return out;
        };
        out.submitted.insert(appended.lsn, vec![p]);
        if durable {
            if log.wait_durable(appended.lsn).is_err() {
                return out;
            }
            out.acked.extend(1..=appended.lsn);
        }
        if i % sync_every == 0 {
            let Ok(through) = log.sync() else {
                return out;
            };
            out.acked.extend(1..=through);
        }
    }
    if let Ok(through) = log.sync() {
        out.acked.extend(1..=through);
    }
    out
}

fn recovered(fs: &SimFs) -> Vec<(u64, Vec<Vec<u8>>)> {
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ())
        .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    log.records()
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.view().lsn(),
                r.view().events().map(<[u8]>::to_vec).collect(),
            )
        })
        .collect()
}

#[test]
fn buffered_records_are_neither_readable_nor_acknowledged_before_sync() {
    let fs = SimFs::new();
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let syncs_after_open = fs.op_count(Op::SyncData);
    // More than the buffered threshold, less than a segment: the queue is written out, and
    // nothing is synced.
    let records = BUFFERED_WRITE_BYTES / RECORD_BYTES as u64 + 4;
    let mut last = 0;
    for i in 1..=records {
        let p = payload(i);
        last = log
            .submit_buffered(log.encode(&batch(i, &p)).unwrap())
            .unwrap()
            .lsn;
    }
    let file = fs.file_names(std::path::Path::new("/log"));
    let written: usize = file
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .filter_map(|n| fs.read_file(&std::path::Path::new("/log").join(n)))
        .map(|bytes| bytes.iter().filter(|b| **b != 0).count())
        .sum();
    assert!(
        written as u64 > BUFFERED_WRITE_BYTES,
        "a full queue was not written to the file ({written} non-zero bytes)"
    );
    assert_eq!(
        fs.op_count(Op::SyncData),
        syncs_after_open,
        "a buffered append synced"
    );
    assert_eq!(
        log.durable_lsn(),
        0,
        "buffered records acknowledged before a sync"
    );
    assert_eq!(
        log.records().unwrap().count(),
        0,
        "unsynced records readable"
    );
    // A power cut now may take every one of them (none was promised).
    assert!(recovered(&fs.fork().crash(CrashMode::LoseUnsynced)).is_empty());

    assert_eq!(log.sync().unwrap(), last);
    assert_eq!(log.durable_lsn(), last);
    assert_eq!(log.records().unwrap().count() as u64, records);
    let after_cut = recovered(&fs.crash(CrashMode::LoseUnsynced));
    assert_eq!(after_cut.len() as u64, records, "synced records lost");
}

#[test]
fn a_power_cut_anywhere_in_a_buffered_import_keeps_what_sync_returned_for() {
    const RECORDS: u64 = 60;
    let total_ops = {
        let fs = SimFs::new();
        let out = import(&fs, RECORDS, 37);
        assert_eq!(out.acked.iter().max(), Some(&RECORDS));
        fs.mutating_ops()
    };
    for n in 1..=total_ops {
        let fs = SimFs::new();
        fs.power_off_after(n);
        let mut outcome = import(&fs, RECORDS, 37);
        outcome.acked.sort_unstable();
        outcome.acked.dedup();
        let torn = (0..5).map(|k| CrashMode::Torn { seed: n * 5 + k });
        let modes = [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Reordered { seed: n },
        ];
        for mode in modes.into_iter().chain(torn) {
            let what = format!("power off after op {n}, {mode:?}");
            check(&outcome, &recovered(&fs.fork().crash(mode)), &what);
        }
    }
}

#[test]
fn durable_appends_waiting_on_a_buffered_round_are_acknowledged() {
    let fs = SimFs::new();
    fs.set_sync_latency(std::time::Duration::from_millis(2));
    let (log, _) = SegmentLog::open(fs.clone(), "/log", opts(), &mut ()).unwrap();
    let durable: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..10u64)
                    .map(|i| {
                        let p = vec![b'd'; 100 + t];
                        let a = log.submit(log.encode(&batch(i, &p)).unwrap()).unwrap();
                        log.wait_durable(a.lsn).unwrap();
                        a.lsn
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for i in 1..=60 {
        let p = payload(i);
        log.submit_buffered(log.encode(&batch(i, &p)).unwrap())
            .unwrap();
    }
    let acked: Vec<u64> = durable
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let survived = recovered(&fs.crash(CrashMode::LoseUnsynced));
    let last = survived.last().map_or(0, |(l, _)| *l);
    for lsn in acked {
        assert!(lsn <= last, "acknowledged LSN {lsn} lost (through {last})");
    }
}
