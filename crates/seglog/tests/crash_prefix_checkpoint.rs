//! The checkpoint of the last segment's prefix, written at a clean close (format.md §5.1):
//! power cuts at every operation of a close that writes it and of the opens and appends after
//! it; and the files it must never be trusted for (cut shorter, cut and written again,
//! damaged, followed by a torn tail). Every open must answer what the records say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, Log, Options, RecoveryMode};
use std::path::{Path, PathBuf};

const TENANTS: [&str; 2] = ["t0", "t1"];

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

/// Per execution: the payloads submitted in order, and how many were acknowledged.
use common::Outcome;

/// Appends `count` records numbered from `from`; false when an append failed (power off).
fn append_some(log: &Log<SimFs>, out: &mut Outcome, from: u64, count: u64) -> bool {
    for i in from..from + count {
        let exec = format!("e{}", i % 3);
        let tenant = TENANTS[(i % 3 % 2) as usize];
        let payloads: Vec<Vec<u8>> = if i % 5 == 4 {
            (0..2)
                .map(|k| format!("{i}/{k}:{}", "b".repeat(40)).into_bytes())
                .collect()
        } else {
            vec![format!("{i}:{}", "a".repeat((i * 17 % 90) as usize)).into_bytes()]
        };
        let entry = out.entry(exec.clone()).or_default();
        entry.0.extend(payloads.iter().cloned());
        match log.append_batch_blocking(&exec, tenant, &payloads) {
            Ok(_) => entry.1 = entry.0.len(),
            Err(_) => return false,
        }
    }
    true
}

/// Three sessions: appends and a clean close (which writes the prefix checkpoint), a reopen
/// that takes it, more appends and another clean close, then a reopen, appends, and no close.
/// Stops at the first failure (the power went off).
fn workload(fs: &SimFs) -> Outcome {
    let mut out = Outcome::new();
    for (session, (from, count)) in [(0u64, 12u64), (12, 9), (21, 6)].into_iter().enumerate() {
        let Ok(log) = Log::open_with_fs(fs.clone(), "/log", opts()) else {
            return out;
        };
        if !append_some(&log, &mut out, from, count) {
            return out;
        }
        if session < 2 && log.close().is_err() {
            return out;
        }
    }
    out
}

fn state(fs: &SimFs, what: &str) -> (common::Dump, seglog::RecoveryStats) {
    let log = Log::open_with_fs(fs.clone(), "/log", opts())
        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let d = common::dump(&log, &TENANTS);
    let r = log.stats().recovery;
    drop(log);
    (d, r)
}

#[test]
fn a_power_cut_anywhere_around_a_prefix_checkpoint_loses_nothing_acknowledged() {
    let total_ops = {
        let fs = SimFs::new();
        let out = workload(&fs);
        assert!(out.values().all(|(s, a)| s.len() == *a));
        fs.mutating_ops()
    };
    let mut from_prefix = 0;
    for n in 1..=total_ops {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Reordered { seed: n ^ 0x5A5A },
        ] {
            let fs = SimFs::new();
            fs.power_off_after(n);
            let outcome = workload(&fs);
            let crashed = fs.crash(mode);
            let what = format!("cut after op {n} of {total_ops}, {mode:?}");
            let (first, r) = state(&crashed, &what);
            common::check_acknowledged(&outcome, &first, &what);
            from_prefix += usize::from(r.last_segment_prefix_bytes > 0);
            // The open consumed any prefix checkpoint: a second cut answers the same, whether
            // or not its removal reached the disk.
            let again = crashed.crash(CrashMode::Torn { seed: n + 1 });
            let (second, _) = state(&again, &what);
            assert_eq!(
                second, first,
                "{what}: a second cut after recovery changed the answers"
            );
        }
    }
    assert!(
        from_prefix > 0,
        "some cuts must come after a close wrote its prefix checkpoint"
    );
    eprintln!("prefix checkpoints: power cut after each of {total_ops} operations × 4 modes; {from_prefix} opens took the last segment's prefix from its checkpoint");
}

fn last_segment(fs: &SimFs) -> (PathBuf, PathBuf) {
    let dir = Path::new("/log");
    let seg = fs
        .file_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .max()
        .unwrap();
    let idx = seg.replace(".seg", ".idx");
    (dir.join(seg), dir.join(idx))
}

/// A log of a few segments, closed cleanly: its last segment has a prefix checkpoint.
fn closed_log() -> (SimFs, common::Dump) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    let mut out = Outcome::new();
    assert!(append_some(&log, &mut out, 0, 60));
    let d = common::dump(&log, &TENANTS);
    log.close().unwrap();
    assert!(fs.read_file(&last_segment(&fs).1).is_some());
    (fs, d)
}

fn open_dump(fs: &SimFs, mode: RecoveryMode) -> (common::Dump, seglog::RecoveryStats) {
    let log = Log::open_with_fs(fs.clone(), "/log", opts().recovery_mode(mode)).unwrap();
    let d = common::dump(&log, &TENANTS);
    let r = log.stats().recovery;
    log.close().unwrap();
    (d, r)
}

#[test]
fn an_open_after_a_clean_close_reads_only_the_bytes_after_the_prefix_and_consumes_it() {
    let (fs, expected) = closed_log();
    let (seg, idx) = last_segment(&fs);
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    let r = log.stats().recovery;
    assert!(r.last_segment_prefix_bytes > 0);
    assert_eq!(r.records_scanned, 0);
    assert_eq!(common::dump(&log, &TENANTS), expected);
    // Consumed: gone once the open returns, durably (before any append could be made).
    assert!(fs.read_file(&idx).is_none());
    assert!(fs
        .crash(CrashMode::Reordered { seed: 7 })
        .read_file(&idx)
        .is_none());
    drop(log);
    assert!(fs.read_file(&seg).is_some());
}

#[test]
fn a_prefix_checkpoint_is_ignored_when_the_segment_was_cut_shorter() {
    let (fs, expected) = closed_log();
    let (seg, idx) = last_segment(&fs);
    let checkpoint = fs.read_file(&idx).unwrap();
    // A cut inside the prefix (as `repair` or a salvage makes): the checkpoint is stale.
    let mut bytes = fs.read_file(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.truncate(end - 100);
    fs.replace_file(&seg, bytes).unwrap();
    fs.replace_file(&idx, checkpoint).unwrap();
    let (got, r) = open_dump(&fs, RecoveryMode::TolerateTornTail);
    assert_eq!(r.last_segment_prefix_bytes, 0);
    assert!(r.torn_tail.is_some());
    // What is left is a prefix of what was there, read from the records.
    for (tenant, rows) in &got {
        for (exec, _, events) in rows {
            let all = &expected[tenant]
                .iter()
                .find(|(e, _, _)| e == exec)
                .unwrap()
                .2;
            assert_eq!(events[..], all[..events.len()]);
        }
    }
}

#[test]
fn a_prefix_checkpoint_is_ignored_when_the_segment_was_cut_and_written_again() {
    let (fs, _) = closed_log();
    let (seg, idx) = last_segment(&fs);
    let stale = fs.read_file(&idx).unwrap();
    // Cut inside the prefix, then the file grows past the old prefix with other records.
    let mut bytes = fs.read_file(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.truncate(end / 2);
    fs.replace_file(&seg, bytes).unwrap();
    let log = Log::open_with_fs(
        fs.clone(),
        "/log",
        opts().recovery_mode(RecoveryMode::Salvage),
    )
    .unwrap();
    let segments = log.segments().len();
    let mut i = 0u64;
    while log.segments().last().unwrap().data_end < end as u64 + 100 {
        let payload = format!("new {i} {}", "z".repeat((i % 7) as usize));
        log.append_blocking(&format!("n{}", i % 2), "t0", payload.as_bytes())
            .unwrap();
        i += 1;
    }
    assert_eq!(log.segments().len(), segments, "the segment must not roll");
    let truth = common::dump(&log, &TENANTS);
    log.close().unwrap();
    // The old checkpoint comes back (a removal that never reached the disk, an older build
    // that did not know it): it names the same segment, salt and all, but not these bytes.
    assert_eq!(last_segment(&fs).0, seg);
    fs.replace_file(&idx, stale).unwrap();
    let (got, r) = open_dump(&fs, RecoveryMode::TolerateTornTail);
    assert_eq!(
        r.last_segment_prefix_bytes, 0,
        "the stale prefix was trusted"
    );
    assert_eq!(got, truth);
}

#[test]
fn damage_to_a_prefix_checkpoint_at_any_byte_gives_the_same_answers() {
    let (fs, expected) = closed_log();
    let (_, idx) = last_segment(&fs);
    let good = fs.read_file(&idx).unwrap();
    let step = (good.len() / 97).max(1);
    for at in (0..good.len()).step_by(step) {
        let fork = fs.fork();
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        fork.replace_file(&idx, bad).unwrap();
        let (got, r) = open_dump(&fork, RecoveryMode::TolerateTornTail);
        assert_eq!(got, expected, "flip at {at}");
        assert_eq!(r.last_segment_prefix_bytes, 0, "flip at {at} was trusted");
    }
    // Truncated at any length: ignored too.
    for len in [0, 10, 64, good.len() / 2, good.len() - 1] {
        let fork = fs.fork();
        fork.replace_file(&idx, good[..len].to_vec()).unwrap();
        let (got, r) = open_dump(&fork, RecoveryMode::TolerateTornTail);
        assert_eq!(got, expected, "truncated to {len}");
        assert_eq!(r.last_segment_prefix_bytes, 0);
    }
}

#[test]
fn a_torn_write_after_the_prefix_is_cut_there_and_the_prefix_kept() {
    let (fs, expected) = closed_log();
    let (seg, idx) = last_segment(&fs);
    let checkpoint = fs.read_file(&idx).unwrap();
    let mut bytes = fs.read_file(&seg).unwrap();
    // Where the prefix ends: the checkpoint's `segment_data_end` (format.md §5.1).
    let end = u64::from_le_bytes(checkpoint[32..40].try_into().unwrap()) as usize;
    // Half a record header after the closing marker, vouched for by nothing: a torn write.
    if bytes.len() < end + 24 {
        bytes.resize(end + 24, 0);
    }
    bytes[end..end + 24].copy_from_slice(&[0xEE; 24]);
    fs.replace_file(&seg, bytes).unwrap();
    fs.replace_file(&idx, checkpoint).unwrap();
    let (got, r) = open_dump(&fs, RecoveryMode::TolerateTornTail);
    assert_eq!(got, expected);
    assert_eq!(r.last_segment_prefix_bytes, end as u64);
    assert_eq!(r.torn_tail.map(|t| t.offset), Some(end as u64));
}

#[test]
fn appends_after_an_open_that_took_the_prefix_survive_the_next_opens() {
    let (fs, _) = closed_log();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    assert!(log.stats().recovery.last_segment_prefix_bytes > 0);
    for i in 0..30u64 {
        log.append_blocking(
            &format!("e{}", i % 3),
            TENANTS[(i % 3 % 2) as usize],
            b"more",
        )
        .unwrap();
    }
    let truth = common::dump(&log, &TENANTS);
    drop(log); // no close: no new prefix checkpoint
    let crashed = fs.crash(CrashMode::LoseUnsynced);
    let (got, r) = open_dump(&crashed, RecoveryMode::TolerateTornTail);
    assert_eq!(got, truth);
    assert_eq!(r.last_segment_prefix_bytes, 0);
    // And after a clean close, the next open takes the new, longer prefix.
    let (got, r) = open_dump(&crashed, RecoveryMode::TolerateTornTail);
    assert_eq!(got, truth);
    assert!(r.last_segment_prefix_bytes > 0);
    let off = Log::open_with_fs(
        crashed.clone(),
        "/log",
        opts().checkpoints(CheckpointMode::Off),
    )
    .unwrap();
    assert_eq!(common::dump(&off, &TENANTS), truth, "the full scan agrees");
    off.close().unwrap();
}

#[test]
fn a_close_extends_the_prefix_checkpoint_its_open_took_and_the_next_open_takes_it_whole() {
    let (fs, _) = closed_log();
    for round in 0..3u64 {
        let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
        let r = log.stats().recovery;
        assert!(r.last_segment_prefix_bytes > 0, "round {round}: {r:?}");
        assert_eq!(r.records_scanned, 0, "round {round}: {r:?}");
        // New ids and old ones, so the extended checkpoint's string table grows.
        for i in 0..5 {
            log.append_blocking(
                &format!("e{}", i % 3),
                TENANTS[(i % 3 % 2) as usize],
                b"old id",
            )
            .unwrap();
            log.append_blocking(&format!("r{round}-{i}"), "t1", b"new id")
                .unwrap();
        }
        let truth = common::dump(&log, &TENANTS);
        let same_segment = log.segments().len();
        log.close().unwrap();
        let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
        let r = log.stats().recovery;
        assert_eq!(common::dump(&log, &TENANTS), truth, "round {round}");
        if log.segments().len() == same_segment {
            assert!(r.last_segment_prefix_bytes > 0, "round {round}: {r:?}");
            assert_eq!(r.records_scanned, 0, "round {round}: {r:?}");
        }
        // Closed again with nothing appended: the checkpoint is extended by the marker alone.
        log.close().unwrap();
        // The full scan agrees.
        let (full, _) = {
            let log = Log::open_with_fs(fs.fork(), "/log", opts().checkpoints(CheckpointMode::Off))
                .unwrap();
            (common::dump(&log, &TENANTS), ())
        };
        assert_eq!(full, truth, "round {round}");
    }
}
