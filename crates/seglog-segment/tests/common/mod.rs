//! Shared helpers of the segment layer's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod crash;
pub mod growth;
pub mod never;
pub mod page_cache;
pub mod prepared;
pub mod stray;
pub mod tail_bound;
pub mod tenant_logs;
pub mod trap_fs;
pub mod waiting;

use seglog_segment::format::EventBatch;
use seglog_segment::io::sim::SimFs;
use seglog_segment::io::{FileSystem, StdFs};
use seglog_segment::{Record, SegmentLog, SegmentOptions};
use std::path::PathBuf;

/// Small segments so a short test rolls over several times.
pub fn small_opts() -> SegmentOptions {
    SegmentOptions {
        segment_size_bytes: 4096,
        max_record_size_bytes: 2048,
        preallocate: true,
        ..SegmentOptions::default()
    }
}

pub fn payload(i: u64) -> Vec<u8> {
    let len = 20 + (i * 37 % 200) as usize;
    let mut p = format!("event-{i}-").into_bytes();
    p.resize(len, b'a' + (i % 26) as u8);
    p
}

pub fn append_one<F: FileSystem>(log: &SegmentLog<F>, i: u64) -> seglog_segment::Result<u64> {
    let p = payload(i);
    log.append(&EventBatch {
        encoding: 0,
        execution_id: format!("exec-{}", i % 7).as_bytes(),
        tenant_id: b"tenant",
        first_seq: i,
        timestamp_unix_nanos: i as i64,
        payloads: &[&p[..]],
    })
    .map(|a| a.lsn)
}

/// Appends one event of `payload` (execution "exec", tenant "tenant"); returns its LSN.
pub fn append_payload<F: FileSystem>(log: &SegmentLog<F>, payload: &[u8]) -> u64 {
    log.append(&EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: b"tenant",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[payload],
    })
    .unwrap()
    .lsn
}

/// (lsn, first payload) of every record, in log order.
pub fn contents<F: FileSystem>(log: &SegmentLog<F>) -> Vec<(u64, Vec<u8>)> {
    log.records()
        .unwrap()
        .map(|r: seglog_segment::Result<Record>| {
            let r = r.unwrap();
            (r.view().lsn(), r.event(0).unwrap().to_vec())
        })
        .collect()
}

/// Fails the next `sync_data` on `fs` (once) with EIO.
pub fn fail_next_sync(fs: &SimFs) {
    fs.inject(seglog_segment::io::sim::Fault {
        op: Some(seglog_segment::io::sim::Op::SyncData),
        nth: fs.op_count(seglog_segment::io::sim::Op::SyncData) + 1,
        kind: seglog_segment::io::sim::FaultKind::Eio,
        persistent: false,
    });
}

/// A fresh directory on a file system: real files in a temp dir, or the simulated one.
pub trait Backend {
    type Fs: FileSystem + Clone;
    fn new() -> Self;
    fn fs(&self) -> Self::Fs;
    fn dir(&self) -> PathBuf;
}

pub struct RealFiles(tempfile::TempDir);

impl Backend for RealFiles {
    type Fs = StdFs;
    fn new() -> Self {
        RealFiles(tempfile::tempdir().unwrap())
    }
    fn fs(&self) -> StdFs {
        StdFs
    }
    fn dir(&self) -> PathBuf {
        self.0.path().join("log")
    }
}

pub struct Simulated(SimFs);

impl Backend for Simulated {
    type Fs = SimFs;
    fn new() -> Self {
        Simulated(SimFs::new())
    }
    fn fs(&self) -> SimFs {
        self.0.clone()
    }
    fn dir(&self) -> PathBuf {
        PathBuf::from("/log")
    }
}

/// Runs a scenario written once against both back ends.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[test]
            fn real_files() {
                super::$name::<super::common::RealFiles>();
            }
            #[test]
            fn simulated() {
                super::$name::<super::common::Simulated>();
            }
        }
    };
}

/// The segment files of `dir`, by name, oldest first.
pub fn segment_names(dir: &std::path::Path) -> Vec<String> {
    let mut names = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(seglog_segment::format::SEGMENT_SUFFIX))
        .collect::<Vec<_>>();
    names.sort();
    names
}

/// The file name of the second segment of a fresh log (`opts`, real files in `dir`) that
/// appends `payloads` again and again: where any log of these records rolls first.
pub fn first_roll_name(
    dir: &std::path::Path,
    opts: SegmentOptions,
    payloads: &[Vec<u8>],
) -> String {
    let (log, _) = SegmentLog::open(StdFs, dir, opts, &mut ()).unwrap();
    for _ in 0..10_000 {
        if segment_names(dir).len() > 1 {
            break;
        }
        log.append(&EventBatch {
            encoding: 0,
            execution_id: b"probe",
            tenant_id: b"probe",
            first_seq: 1,
            timestamp_unix_nanos: 0,
            payloads,
        })
        .unwrap();
    }
    log.close().unwrap();
    let names = segment_names(dir);
    assert_eq!(names.len(), 2, "{names:?}");
    names[1].clone()
}

/// One record of `payloads` for `tenant`, in execution `exec` (sequence 1: the writer
/// does not check sequences).
pub fn tenant_batch<'a>(tenant: &'a [u8], payloads: &'a [Vec<u8>]) -> EventBatch<'a, Vec<u8>> {
    EventBatch {
        encoding: 0,
        execution_id: b"exec",
        tenant_id: tenant,
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads,
    }
}
