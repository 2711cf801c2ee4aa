//! Review 15 (branch `cold-open`): the last segment's prefix checkpoint (format.md §5.1) and
//! index checkpoints version 2. Findings first (each fails on `cold-open`), then the
//! scenarios probed that held.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::compaction::{policy, Plan};
use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, CompactOptions, Health, Log, Options, RecoveryMode};
use std::path::{Path, PathBuf};

const TENANTS: [&str; 2] = ["t0", "t1"];

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

/// Appends that never name the execution the erasure probe drops.
fn append_some(log: &Log<SimFs>, from: u64, count: u64) {
    for i in from..from + count {
        let (exec, tenant) = if i % 2 == 0 {
            ("e0", "t0")
        } else {
            ("e2", "t1")
        };
        let payload = format!("{i}:{}", "a".repeat((i * 17 % 90) as usize)).into_bytes();
        log.append_batch_blocking(exec, tenant, &[payload]).unwrap();
    }
}

fn files(fs: &SimFs, suffix: &str) -> Vec<PathBuf> {
    let dir = Path::new("/log");
    let mut v: Vec<PathBuf> = fs
        .file_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| dir.join(n))
        .collect();
    v.sort();
    v
}

/// A log of several segments whose tenants are consistent per execution, closed cleanly:
/// sealed segments have (version-2) checkpoints, the last one a prefix checkpoint.
fn closed_log() -> (SimFs, common::Dump) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    // Executions keep one tenant: e0 → t0, secret → t1, e1/e2 → by first append.
    for i in 0..60u64 {
        let (exec, tenant) = match i % 4 {
            0 => ("e0", "t0"),
            1 => ("secret-exec-zq", "t1"),
            2 => ("e1", "t0"),
            _ => ("e2", "t1"),
        };
        let payload = format!("{i}:{}", "a".repeat((i * 17 % 90) as usize)).into_bytes();
        log.append_batch_blocking(exec, tenant, &[payload]).unwrap();
    }
    let d = common::dump(&log, &TENANTS);
    log.close().unwrap();
    (fs, d)
}

fn dump_of(fs: &SimFs, options: Options) -> (common::Dump, seglog::RecoveryStats) {
    let log = Log::open_with_fs(fs.clone(), "/log", options).unwrap();
    let d = common::dump(&log, &TENANTS);
    let r = log.stats().recovery;
    log.close().unwrap();
    (d, r)
}

// ---------------------------------------------------------------------------------------
// Finding: a checkpoint of a version the build does not read is "corruption" to `verify`.
//
// This branch bumps the checkpoint version (1 → 2) without bumping the segment format, and
// format.md's version table says "a build before this one ignores a version-2 checkpoint
// (unsupported version: it reads the segment instead)". Its open does; its `verify` (and
// `seglog verify`, and `repair`'s plan) does not: `decode` returns `UnsupportedVersion`,
// which is not `Stale`, so `check_checkpoint` calls it `Damaged` → `Health::Corrupt` (exit
// 2), and `repair` lists every such checkpoint as damage to remove. The older build's code
// is this build's code with `VERSION = 1`; this test shows the same path here with a
// checkpoint one version ahead of this build (version 3, header checksum valid).
// ---------------------------------------------------------------------------------------

/// CRC-32 (IEEE), as `crc32fast::hash` (not a dependency of this crate's tests).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_sealed_checkpoint_of_a_version_this_build_does_not_read_is_not_reported_as_corruption() {
    let (fs, expected) = closed_log();
    let sealed_idx = files(&fs, ".idx");
    assert!(sealed_idx.len() >= 2, "{sealed_idx:?}");
    // Clean before the change.
    assert_eq!(
        seglog::verify_dir_with_fs(&fs, Path::new("/log"))
            .unwrap()
            .health(),
        Health::Clean
    );
    // The first sealed segment's checkpoint, as a newer build would write it: version 3.
    let path = &sealed_idx[0];
    let mut bytes = fs.read_file(path).unwrap();
    assert_eq!(crc32(&bytes[..60]).to_le_bytes(), bytes[60..64]);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    bytes[8..10].copy_from_slice(&3u16.to_le_bytes());
    let crc = crc32(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    fs.replace_file(path, bytes).unwrap();
    let report = seglog::verify_dir_with_fs(&fs, Path::new("/log")).unwrap();
    let plan = seglog::plan_salvage(&fs, Path::new("/log")).unwrap();
    // The open ignores it (reads the segment instead) and answers what the records say.
    let (d, r) = dump_of(&fs, opts());
    assert_eq!(d, expected);
    assert!(r.segments_scanned >= 2, "{r:?}");
    // But verify calls the log corrupt (exit 2 in `seglog verify`), and repair plans to
    // remove the checkpoint as damage.
    assert_eq!(
        report.health(),
        Health::Clean,
        "a healthy log whose checkpoint has a version this build does not read is reported \
         {:?}; repair's plan removes {} checkpoint(s) as damaged: {:?}",
        report.health(),
        plan.damaged_checkpoints.len(),
        plan.damaged_checkpoints
    );
}

// ---------------------------------------------------------------------------------------
// Probes that held.
// ---------------------------------------------------------------------------------------

/// Erasure after an open that took the prefix: the open's consumed checkpoint (held by the
/// log for the close to extend) names the erased execution; the close must not write it back.
#[test]
fn an_execution_erased_after_an_open_that_took_the_prefix_is_named_by_no_checkpoint() {
    let (fs, _) = closed_log();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    assert!(log.stats().recovery.last_segment_prefix_bytes > 0);
    let view = log.compaction_view(false).unwrap();
    let plan: Plan = policy::drop_executions(&view, ["secret-exec-zq"]);
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    append_some(&log, 100, 5);
    log.close().unwrap();
    for idx in files(&fs, ".idx") {
        let b = fs.read_file(&idx).unwrap();
        assert!(
            !b.windows(14).any(|w| w == b"secret-exec-zq"),
            "{} names the erased execution",
            idx.display()
        );
    }
    let (d, _) = dump_of(&fs, opts());
    assert!(!format!("{d:?}").contains("secret-exec-zq"));
}

/// A salvage open never takes the prefix; the checkpoint goes; answers are the records'.
#[test]
fn a_salvage_open_after_a_clean_close_answers_as_a_full_scan() {
    let (fs, expected) = closed_log();
    let (d, r) = dump_of(&fs, opts().recovery_mode(RecoveryMode::Salvage));
    assert_eq!(r.last_segment_prefix_bytes, 0);
    assert_eq!(d, expected);
    let (d, _) = dump_of(&fs, opts());
    assert_eq!(d, expected);
}

/// Opens and closes without appends: each close extends the consumed checkpoint by a marker.
#[test]
fn many_open_close_rounds_without_appends_keep_the_answers() {
    let (fs, expected) = closed_log();
    for round in 0..40 {
        let (d, r) = dump_of(&fs, opts());
        assert!(r.last_segment_prefix_bytes > 0, "round {round}");
        assert_eq!(d, expected, "round {round}");
    }
    let (d, _) = dump_of(&fs, opts().checkpoints(CheckpointMode::Off));
    assert_eq!(d, expected);
}

/// Read-only opens neither take nor remove the prefix checkpoint; verify is clean.
#[test]
fn read_only_opens_and_verify_leave_the_prefix_checkpoint_alone() {
    let (fs, expected) = closed_log();
    let before = files(&fs, ".idx");
    let ro = Log::open_read_only_with_fs(fs.clone(), "/log").unwrap();
    assert_eq!(common::dump(&ro, &TENANTS), expected);
    drop(ro);
    assert_eq!(files(&fs, ".idx"), before);
    let report = seglog::verify_dir_with_fs(&fs, Path::new("/log")).unwrap();
    assert_eq!(report.health(), Health::Clean);
    let (d, r) = dump_of(&fs, opts());
    assert!(r.last_segment_prefix_bytes > 0);
    assert_eq!(d, expected);
}

/// A last segment holding no record (a roll just before the close): its prefix checkpoint
/// lists none, and the LSNs after it continue.
#[test]
fn a_prefix_checkpoint_of_a_segment_without_records_is_taken_and_the_log_goes_on() {
    let (fs, _) = closed_log();
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    log.roll_blocking().unwrap();
    let expected = common::dump(&log, &TENANTS);
    log.close().unwrap();
    let (d, r) = dump_of(&fs, opts());
    assert!(r.last_segment_prefix_bytes > 0, "{r:?}");
    assert_eq!(d, expected);
    let log = Log::open_with_fs(fs.clone(), "/log", opts()).unwrap();
    append_some(&log, 200, 30);
    let expected = common::dump(&log, &TENANTS);
    drop(log); // no close
    let (d, _) = dump_of(&fs, opts());
    assert_eq!(d, expected);
    let (d, _) = dump_of(&fs, opts().checkpoints(CheckpointMode::Off));
    assert_eq!(d, expected);
}

/// Observation (by design, as for sealed segments with checkpoints): damage inside the prefix
/// is not seen by an open that takes it — an `AbsoluteConsistency` open that refused before
/// the branch now opens, and the damaged record fails its read (never wrong bytes).
#[test]
fn damage_inside_the_prefix_is_found_by_the_read_not_the_open() {
    let (fs, _) = closed_log();
    let seg = files(&fs, ".seg").pop().unwrap();
    let mut bytes = fs.read_file(&seg).unwrap();
    bytes[64 + 60] ^= 0x40; // inside the first record of the last segment
    fs.replace_file(&seg, bytes).unwrap();
    let before = fs.fork();
    let log = Log::open_with_fs(
        fs.clone(),
        "/log",
        opts().recovery_mode(RecoveryMode::AbsoluteConsistency),
    )
    .unwrap();
    assert!(log.stats().recovery.last_segment_prefix_bytes > 0);
    let failed = ["e0", "secret-exec-zq", "e1", "e2"]
        .iter()
        .filter(|e| log.read(e).is_err())
        .count();
    assert_eq!(failed, 1);
    drop(log);
    // Without the checkpoint (what the build before did), the open refuses.
    assert!(Log::open_with_fs(
        before,
        "/log",
        opts()
            .recovery_mode(RecoveryMode::AbsoluteConsistency)
            .checkpoints(CheckpointMode::Off)
    )
    .is_err());
}
