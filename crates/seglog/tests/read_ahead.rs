//! Reads with read-ahead hints (a cold page cache) return exactly what reads without them
//! (a warm cache) returned, over many segments, records longer than one hint, batches, and a
//! compaction in between; and the hints' file handles never keep a removed segment alive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use seglog::io::{FileSystem, SegmentFile, StdFs};
use seglog::{CheckpointMode, Log, Options, SyncMode};
use std::path::Path;

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(64 << 10)
        .max_record_size_bytes(Some(32 << 10))
        .checkpoints(CheckpointMode::Inline)
        .sync_mode(SyncMode::Never)
}

/// Payload of event `seq` of execution `e`: mostly small, every 7th longer than the 4 KiB
/// first hint (up to ~20 KiB), every byte depending on both.
fn payload(e: usize, seq: u64) -> Vec<u8> {
    let len = if seq.is_multiple_of(7) {
        4000 + (seq as usize * 997 + e * 131) % 16_000
    } else {
        10 + (seq as usize * 31 + e * 17) % 600
    };
    (0..len)
        .map(|i| (i as u64 ^ seq.wrapping_mul(2_654_435_761) ^ e as u64) as u8)
        .collect()
}

const EXECUTIONS: usize = 12;
const ROUNDS: u64 = 60;

fn fill(log: &Log<StdFs>) {
    for round in 1..=ROUNDS {
        for e in 0..EXECUTIONS {
            let exec = format!("exec-{e}");
            if round.is_multiple_of(10) && e.is_multiple_of(3) {
                // A batch of three: one record, three events.
                let p: Vec<Vec<u8>> = (0..3).map(|k| payload(e, round * 10 + k)).collect();
                log.append_encoded_blocking(&exec, "t", None, 0, &p)
                    .unwrap();
            } else {
                log.append_blocking(&exec, "t", &payload(e, round)).unwrap();
            }
        }
    }
}

/// Everything a reader can see of every execution, through each read call.
fn snapshot(log: &Log<StdFs>) -> Vec<Vec<(u64, i64, Vec<u8>)>> {
    let mut out = Vec::new();
    for e in 0..EXECUTIONS {
        let exec = format!("exec-{e}");
        let all: Vec<_> = log
            .read(&exec)
            .unwrap()
            .into_iter()
            .map(|ev| (ev.seq, ev.timestamp_unix_nanos, ev.payload.to_vec()))
            .collect();
        let range: Vec<_> = log
            .read_range(&exec, 17, 23)
            .unwrap()
            .into_iter()
            .map(|ev| (ev.seq, ev.timestamp_unix_nanos, ev.payload.to_vec()))
            .collect();
        assert_eq!(
            range,
            all.iter().skip(16).take(23).cloned().collect::<Vec<_>>()
        );
        out.push(all);
    }
    out
}

/// Fsyncs every file of the log and drops it from the page cache.
fn evict(dir: &Path) {
    for name in StdFs.list(dir).unwrap() {
        let file = StdFs.open_read_only(&dir.join(name)).unwrap();
        file.sync_data().unwrap();
        file.evict(0, file.len().unwrap()).unwrap();
    }
}

#[test]
fn reads_from_a_cold_cache_return_what_warm_reads_returned() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    fill(&log);
    assert!(log.segments().len() > 10, "the log spans many segments");
    let warm = snapshot(&log);
    log.close().unwrap();
    drop(log);

    evict(dir.path());
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    let cold = snapshot(&log);
    assert_eq!(cold, warm);
    // Where the file system drops pages (ext4, xfs: not tmpfs), the cold read used hints.
    eprintln!("cold reads: {}", log.stats().cold_reads);

    // Subscribe's catch-up reads the same.
    evict(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let caught_up: Vec<(u64, Vec<u8>)> = runtime.block_on(async {
        log.subscribe("exec-4", 0)
            .take(warm[4].len())
            .map(|e| {
                let e = e.unwrap();
                (e.seq, e.payload.to_vec())
            })
            .collect()
            .await
    });
    let expected: Vec<(u64, Vec<u8>)> = warm[4].iter().map(|(s, _, p)| (*s, p.clone())).collect();
    assert_eq!(caught_up, expected);
    log.close().unwrap();
}

/// The read-only descriptors the engine holds on files of `dir` that were removed.
fn removed_files_held_open(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|t| t.starts_with(&*dir.to_string_lossy()) && t.ends_with("(deleted)"))
        .collect()
}

#[test]
fn read_ahead_handles_do_not_outlive_a_compaction_and_reads_stay_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    fill(&log);
    let before = snapshot(&log);
    log.close().unwrap();
    drop(log);

    evict(dir.path());
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    assert_eq!(snapshot(&log), before); // cold: the hints open their handles
    let plan = seglog::compaction::policy::drop_executions(
        &log.compaction_view(false).unwrap(),
        ["exec-0"],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(log.compact(plan, seglog::CompactOptions::default()))
        .unwrap();
    assert_eq!(removed_files_held_open(dir.path()), Vec::<String>::new());
    evict(dir.path());
    let after = snapshot(&log);
    assert!(after[0].is_empty());
    assert_eq!(after[1..], before[1..]);
    log.close().unwrap();
}
