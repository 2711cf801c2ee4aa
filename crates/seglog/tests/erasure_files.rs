//! After `compact` erases a tenant, no file in the log directory may hold its id or its
//! executions' ids — not a segment, and not an index checkpoint, whatever the checkpoint
//! mode, and whatever checkpoints a background thread still had queued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::path::Path;

const GONE_TENANT: &str = "tenant-gone-5e1f";
const GONE_EXEC: &str = "exec-gone-77aa";

fn opts(checkpoints: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(checkpoints)
}

fn fill(log: &Log) {
    for i in 0..150u64 {
        let (exec, tenant) = if i % 3 == 0 {
            (format!("{GONE_EXEC}-{}", i % 2), GONE_TENANT)
        } else {
            (format!("exec-kept-{}", i % 4), "tenant-kept")
        };
        log.append_blocking(&exec, tenant, format!("payload {i}").as_bytes())
            .unwrap();
    }
}

/// Names of the files of `dir` that contain `needle`. A file that vanishes between the
/// listing and the read (a checkpoint's temporary file, renamed meanwhile) holds nothing.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| match std::fs::read(e.path()) {
            Ok(bytes) => bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
            Err(err) => panic!("cannot read {}: {err}", e.path().display()),
        })
        .map(|e| e.file_name().into_string().unwrap())
        .collect()
}

fn erase_and_check(log: &Log, dir: &Path, what: &str) {
    let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), GONE_TENANT);
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    for needle in [GONE_TENANT, GONE_EXEC] {
        let found = files_containing(dir, needle);
        assert!(found.is_empty(), "{what}: {needle:?} is still in {found:?}");
    }
}

#[test]
fn no_checkpoint_keeps_an_erased_id_when_checkpoints_are_off() {
    let dir = tempfile::tempdir().unwrap();
    // Checkpoints were written while the log ran with them on …
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Inline)).unwrap();
    fill(&log);
    log.close().unwrap();
    let checkpoints = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".idx")
        })
        .count();
    assert!(checkpoints > 1, "the first open wrote checkpoints");
    // … and it is reopened with them off.
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Off)).unwrap();
    erase_and_check(&log, dir.path(), "checkpoints off");
    log.close().unwrap();
}

#[test]
fn no_queued_background_checkpoint_brings_an_erased_id_back() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Background)).unwrap();
        // Right after the appends, checkpoints of the segments they sealed may still be
        // queued when compaction starts.
        fill(&log);
        erase_and_check(&log, dir.path(), &format!("round {round}"));
        log.close().unwrap();
        for needle in [GONE_TENANT, GONE_EXEC] {
            let found = files_containing(dir.path(), needle);
            assert!(
                found.is_empty(),
                "round {round}, after close: {needle:?} in {found:?}"
            );
        }
    }
}
