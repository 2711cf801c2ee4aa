//! The `seglog` binary, run as users run it, on logs made here: every command's output,
//! exit codes, and hostile input (random, truncated, lying length fields, bad checkpoints).
//! One test binary; one module per concern, the shared helpers here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup;
mod compact;
mod demo;
mod escapes;
mod exit_codes;
mod inspect;
mod json;
mod offloaded;
mod options;
mod pipe;
mod remote;
mod repair;
mod review10_tail_clustered;
mod review130_leftovers;
mod review134_torn_tail_before_a_far_stray;
mod review140_tail_headerless;
mod review142_tail_header_of_another_lsn;
mod review34_offloaded;
mod review43_remote_events;
mod review48;
mod tail;

use seglog::{CheckpointMode, Options};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// (first LSN, path) of each segment file in `dir`, in log order.
pub fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let lsn = seglog_segment::format::parse_segment_file_name(name)?.ok()?;
            Some((lsn, p))
        })
        .collect();
    v.sort();
    v
}

/// Runs the `seglog` binary with `args`, colour off.
pub fn seglog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seglog"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Its stdout, as text.
pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Its stderr, as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure is a clean one: the expected code, one line on stderr, no panic.
pub fn assert_clean_failure(o: &Output, code: i32) {
    let e = err(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {e}");
    assert!(!e.contains("panicked"), "panic: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e:?}");
}

/// A log of 3 executions × 40 events over several 4 KiB segments, payloads as MessagePack
/// enact events, plus one execution with a hostile id.
pub fn make_log(dir: &Path) -> Vec<PathBuf> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use enact_core::kernel::persistence::{EventStore, ExecutionEventData, StorageBackend};
        use enact_core::kernel::{ExecutionId, TenantId};
        let opts = Options::default()
            .segment_size_bytes(4096)
            .checkpoints(CheckpointMode::Inline);
        let store = seglog_eventstore::SeglogEventStore::open_with(dir, opts)
            .await
            .unwrap();
        for i in 0..120u64 {
            let exec = ExecutionId::from_string(format!("exec-{}", i % 3));
            let tenant = TenantId::from_string(format!("tenant-{}", i % 3 % 2));
            let ev = ExecutionEventData::ExecutionPaused {
                reason: format!("reason {i}"),
            };
            store.append(&exec, &tenant, ev).await.unwrap();
        }
        let evil = ExecutionId::from_string("evil\x1b[31m\nid");
        store
            .append(
                &evil,
                &TenantId::from_string("tenant-0"),
                ExecutionEventData::ExecutionResumed,
            )
            .await
            .unwrap();
        let segs = store
            .log()
            .segments()
            .iter()
            .map(|s| s.path.clone())
            .collect();
        store.shutdown().await.unwrap();
        segs
    })
}

/// Every file of `dir` (recursively), by path relative to it: name, length and bytes.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A [`snapshot`] of a log another handle has open, once its background writes (zeros ahead
/// of the tail, and the tail bound they move) have settled: two snapshots 200 ms apart agree.
pub fn settled_snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last = snapshot(dir);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = snapshot(dir);
        if now == last {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log's files never settled"
        );
        last = now;
    }
}

/// Asserts two snapshots hold the same files with the same bytes, naming the first that
/// differs.
pub fn assert_same_files(
    before: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
    after: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
) {
    let names =
        |s: &std::collections::BTreeMap<PathBuf, Vec<u8>>| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(before), names(after), "files added or removed");
    for (name, bytes) in before {
        let now = &after[name];
        assert_eq!(
            bytes.len(),
            now.len(),
            "{} changed length: {} -> {}",
            name.display(),
            bytes.len(),
            now.len()
        );
        assert!(bytes == now, "{} changed content", name.display());
    }
}
