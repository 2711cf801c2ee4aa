//! `seglog compact`: dry runs, erasure, and refusing a log in use.

use super::*;
use seglog::{Log, Options};

fn files_containing(dir: &Path, needle: &[u8]) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let bytes = std::fs::read(e.as_ref().unwrap().path()).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .count()
}

#[test]
fn compact_dry_run_reports_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    let before: Vec<Vec<u8>> = {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names.iter().map(|p| std::fs::read(p).unwrap()).collect()
    };
    let o = seglog(&["compact", d, "--drop-tenant", "tenant-1", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // tenant-1 is exec-1: 40 events.
    assert!(
        text(&o).contains("would reclaim: 1 executions, 40 events"),
        "{}",
        text(&o)
    );
    let o = seglog(&["events", d, "exec-1"]);
    assert_eq!(
        text(&o).matches("execution_paused").count(),
        40,
        "{}",
        text(&o)
    );
    let mut names: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let sealed_unchanged = names
        .iter()
        .zip(&before)
        .filter(|(p, _)| p.extension().is_some_and(|x| x == "seg"))
        .take(3)
        .all(|(p, b)| std::fs::read(p).unwrap() == *b);
    assert!(sealed_unchanged, "a dry run rewrote a sealed segment");
}

#[test]
fn compact_erases_a_tenant_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    assert!(files_containing(dir.path(), b"exec-1") > 0);
    let o = seglog(&[
        "compact",
        d,
        "--drop-tenant",
        "tenant-1",
        "--merge-small",
        "--segment-size",
        "65536",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        text(&o).contains("reclaimed: 1 executions, 40 events"),
        "{}",
        text(&o)
    );
    assert_eq!(files_containing(dir.path(), b"exec-1"), 0);
    let o = seglog(&["verify", d]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
    let o = seglog(&["events", d, "exec-0"]);
    assert_eq!(text(&o).matches("execution_paused").count(), 40);
    let o = seglog(&["events", d, "exec-1"]);
    assert_eq!(
        text(&o).matches("execution_paused").count(),
        0,
        "{}",
        text(&o)
    );
}

#[test]
fn compact_refuses_a_log_another_process_holds() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    let holder = Log::open_blocking(dir.path(), Options::default()).unwrap();
    let o = seglog(&["compact", d, "--older-than", "1s"]);
    assert_clean_failure(&o, 3);
    assert!(err(&o).contains("open in another process"), "{}", err(&o));
    holder.close().unwrap();
}

#[test]
fn compact_without_a_policy_or_with_a_bad_age_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    assert_eq!(seglog(&["compact", d]).status.code(), Some(64));
    assert_eq!(
        seglog(&["compact", d, "--older-than", "soon"])
            .status
            .code(),
        Some(64)
    );
}
