//! Logs written by earlier format versions still open and read back exactly.
//!
//! The fixtures in `tests/fixtures/v<N>/` were written by the build of format version N.
//! To regenerate the current version's fixture (only when its writer changes):
//! `SEGLOG_WRITE_FIXTURES=1 cargo test -p seglog --test format_fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{CheckpointMode, Log, Options};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn fixture_options() -> Options {
    Options {
        segment_size_bytes: 4096,
        checkpoints: CheckpointMode::Inline,
        ..Options::default()
    }
}

/// The fixture's contents: three executions over two tenants, single events and batches,
/// enough to roll over several 4 KiB segments.
fn expected() -> Vec<(String, String, Vec<Vec<u8>>)> {
    (0..3)
        .map(|e| {
            let events = (1..=40)
                .map(|s| format!("exec-{e} event {s} {}", "x".repeat(s % 7)).into_bytes())
                .collect();
            (format!("exec-{e}"), format!("tenant-{}", e % 2), events)
        })
        .collect()
}

fn write_fixture(dir: &Path) -> seglog::Result<()> {
    let log = Log::open_blocking(dir, fixture_options())?;
    let executions = expected();
    for s in 0..40 {
        for (id, tenant, events) in &executions {
            // Every fifth step appends a batch of the next events, the rest one at a time.
            if s % 5 == 0 && s + 1 < 40 {
                log.append_batch_blocking(id, tenant, &[&events[s], &events[s + 1]])?;
            } else if s % 5 != 1 {
                log.append_blocking(id, tenant, &events[s])?;
            }
        }
    }
    log.close()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn version_1_log_opens_and_reads_back_exactly() {
    let fixture = fixtures_dir().join("v1");
    if std::env::var_os("SEGLOG_WRITE_FIXTURES").is_some() && !fixture.exists() {
        std::fs::create_dir_all(&fixture).unwrap();
        write_fixture(&fixture).unwrap();
        std::fs::remove_file(fixture.join("LOCK")).ok();
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let log = Log::open_blocking(dir.path(), fixture_options()).unwrap();
    assert!(
        log.segments().len() >= 3,
        "the fixture spans several segments"
    );
    for (id, tenant, events) in expected() {
        let read = log.read(&id).unwrap();
        let payloads: Vec<Vec<u8>> = read.iter().map(|e| e.payload.to_vec()).collect();
        assert_eq!(payloads, events, "{id}");
        assert_eq!(
            log.tenant_of(&id).unwrap().as_deref(),
            Some(tenant.as_str())
        );
    }
    // The old log stays appendable.
    assert_eq!(
        log.append_blocking("exec-0", "tenant-0", b"new").unwrap(),
        41
    );
    log.close().unwrap();
}
