//! Review 53: the record check compaction runs before it commits (dd532b7,
//! `check_every_survivor_moved`) and the LSN check of a global read's checkpoint sample
//! (ff964b8).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::path::{Path, PathBuf};

const DIR: &str = "/log";

fn options() -> Options {
    Options::default()
        .segment_size_bytes(2048)
        .zero_ahead_bytes(0)
        .prepare_next_segment(false)
        .checkpoints(CheckpointMode::Inline)
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Changes byte `field` of the first record of `segment` to `value` and makes the record's
/// checksum match again (as fuzz_findings.rs does for its u64 fields).
fn forge_first_record_byte(fs: &SimFs, segment: &Path, field: usize, value: u8) {
    let mut bytes = fs.read_file(segment).unwrap();
    let salt = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
    let at = 64;
    let len = u32_at(&bytes, at);
    bytes[at + field] = value;
    let mut h = crc32fast::Hasher::new();
    h.update(&salt.to_le_bytes());
    h.update(&bytes[at..at + 4]);
    h.update(&bytes[at + 8..at + len]);
    bytes[at + 4..at + 8].copy_from_slice(&h.finalize().to_le_bytes());
    fs.replace_file(segment, bytes).unwrap();
}

/// A closed log: `first` (tenant "t") appended first, then e0..e2 (tenant "t") and one
/// execution of tenant "u", over several segments.
fn closed_log(first: &str) -> (SimFs, Vec<PathBuf>) {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    log.append_blocking(first, "t", b"secret of tenant t")
        .unwrap();
    for i in 0..120u64 {
        log.append_blocking(
            &format!("e{}", i % 3),
            "t",
            format!("payload {i}").as_bytes(),
        )
        .unwrap();
    }
    log.append_blocking("x", "u", b"tenant u's own").unwrap();
    let segments: Vec<PathBuf> = log.segments().iter().map(|s| s.path.clone()).collect();
    assert!(segments.len() >= 3);
    log.close().unwrap();
    (fs, segments)
}

/// Record layout (format.md §3.1): 48-byte header, then execution id, then tenant id.
const TENANT_OF_A_TWO_BYTE_EXECUTION: usize = 48 + 2;

/// The same defect dd532b7 fixed (a record contradicting the index, in a segment the open
/// took from its checkpoint, copied into the outputs so that the log does not open again),
/// with the contradiction in the record's tenant instead of its first sequence: the new
/// check compares execution and first sequence only.
#[test]
fn a_compaction_copies_a_record_whose_tenant_contradicts_the_index_and_the_log_does_not_reopen() {
    let (fs, segments) = closed_log("e9");
    // The first record of the first segment: execution "e9", tenant "t" -> "u".
    forge_first_record_byte(&fs, &segments[0], TENANT_OF_A_TWO_BYTE_EXECUTION, b'u');
    // e9 gets more records under tenant "t" (acknowledged, after the open).
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    assert_eq!(log.tenant_of("e9").unwrap().as_deref(), Some("t"));
    let view = log.compaction_view(true).unwrap();
    let outcome = log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    );
    eprintln!("compaction: {outcome:?}");
    let acknowledged = log.append_blocking("e9", "t", b"after").unwrap();
    log.close().unwrap();
    let log = Log::open_with_fs(fs.clone(), DIR, options());
    let log = match log {
        Ok(log) => log,
        Err(e) => panic!(
            "compaction returned {:?}; the log that acknowledged seq {acknowledged} after it \
             does not open again: {e}",
            outcome.map(|r| r.rewrite.output_segments)
        ),
    };
    assert_eq!(
        log.read("e9").unwrap().last().unwrap().payload.as_ref(),
        b"after"
    );
    log.close().unwrap();
}

/// The same, for an execution with one record: the compaction succeeds and, after the
/// reopen, the execution (and its data) belongs to the other tenant.
#[test]
fn a_compaction_moves_an_execution_to_another_tenant_when_its_record_contradicts_the_index() {
    let (fs, segments) = closed_log("s1");
    forge_first_record_byte(&fs, &segments[0], TENANT_OF_A_TWO_BYTE_EXECUTION, b'u');
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    let before_tenant = log.tenant_of("s1").unwrap();
    let before_u = log.list_executions("u", 100, 0).unwrap();
    assert_eq!(before_tenant.as_deref(), Some("t"));
    assert!(!before_u.contains(&"s1".to_owned()), "{before_u:?}");
    let view = log.compaction_view(true).unwrap();
    let outcome = log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    );
    eprintln!("compaction: {outcome:?}");
    log.close().unwrap();
    let log = Log::open_with_fs(fs.clone(), DIR, options()).unwrap();
    let after_u = log.list_executions("u", 100, 0).unwrap();
    let after_tenant = log.tenant_of("s1").unwrap();
    assert_eq!(
        (after_tenant.as_deref(), after_u.contains(&"s1".to_owned())),
        (Some("t"), false),
        "compaction returned {:?}: s1 (tenant t before it) now lists under tenant u: {after_u:?}",
        outcome.map(|r| r.rewrite.output_segments)
    );
    log.close().unwrap();
}
