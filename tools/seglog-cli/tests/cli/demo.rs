//! `seglog demo`: the end-to-end run, and what it may clear.

use super::*;

#[test]
fn demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let o = seglog(&[
        "demo",
        dir.to_str().unwrap(),
        "--runs",
        "60",
        "--tasks",
        "8",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o), err(&o));
    let out = text(&o);
    for needle in [
        "durable append latency",
        "reopened in",
        "clean",
        "replayed through the EventStore trait",
    ] {
        assert!(out.contains(needle), "demo output lacks {needle:?}:\n{out}");
    }
    // It refuses to wipe a directory that is not a demo.
    let other = tmp.path().join("precious");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    assert_clean_failure(&seglog(&["demo", other.to_str().unwrap()]), 3);
    assert!(other.join("notes.txt").exists());
}
