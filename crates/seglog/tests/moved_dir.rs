//! A log's directory renamed (or removed) while the log is open.
//!
//! The log names its files by path, so after a rename its path may name nothing, or another
//! log that was opened there since. Like SQLite (`SQLITE_READONLY_DBMOVED`), the log then
//! refuses every change to its directory instead of making it in the wrong place: a roll,
//! the prepared next segment, the tail bound, a checkpoint, a compaction's removals. The
//! appends that needed the change fail (nothing is acknowledged that is not durable in the
//! log's own directory); everything acknowledged before stays in the moved directory, and the
//! other log never sees a file of the first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::collections::BTreeSet;
use std::path::Path;

fn options() -> Options {
    Options::default().segment_size_bytes(64 << 10)
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Appends to `log` until an append fails or `limit` succeed; returns how many succeeded and
/// the error's text.
fn append_until_refused(log: &Log, exec: &str, limit: usize) -> (usize, Option<String>) {
    let payload = vec![3u8; 1000];
    for i in 0..limit {
        if let Err(e) = log.append_blocking(exec, "t", &payload) {
            return (i, Some(e.to_string()));
        }
    }
    (limit, None)
}

#[test]
fn a_log_whose_directory_was_renamed_never_writes_into_the_log_opened_at_its_old_path() {
    let root = tempfile::tempdir().unwrap();
    let old = root.path().join("log");
    let moved = root.path().join("moved");
    let first = Log::open_blocking(&old, options()).unwrap();
    let (before, refused) = append_until_refused(&first, "a", 20);
    assert_eq!((before, refused), (20, None));

    std::fs::rename(&old, &moved).unwrap();
    let second = Log::open_blocking(&old, options()).unwrap();
    let (theirs, refused) = append_until_refused(&second, "b", 10);
    assert_eq!((theirs, refused), (10, None));
    let second_files = names(&old);

    // Enough for several rolls: the first roll after the move must be refused.
    let (after, refused) = append_until_refused(&first, "a", 400);
    let refused = refused.expect("a roll into the moved directory's old path was refused");
    assert!(
        refused.contains("moved") || refused.contains("no longer"),
        "the error says why: {refused}"
    );
    assert!(first.close().is_err() || first.is_poisoned() || first.is_closed());
    drop(first);

    assert_eq!(
        names(&old),
        second_files,
        "the first log changed the second log's directory"
    );
    let (more, refused) = append_until_refused(&second, "b", 10);
    assert_eq!((more, refused), (10, None));
    second.close().unwrap();
    drop(second);

    let second = Log::open_blocking(&old, options()).unwrap();
    assert_eq!(second.read("b").unwrap().len(), 20);
    assert!(second.read("a").unwrap().is_empty());
    second.close().unwrap();

    let first = Log::open_blocking(&moved, options()).unwrap();
    assert_eq!(
        first.read("a").unwrap().len(),
        before + after,
        "every acknowledged append is in the moved directory"
    );
    first.close().unwrap();
}

#[test]
fn a_log_whose_directory_was_removed_refuses_the_next_roll() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    let log = Log::open_blocking(&dir, options()).unwrap();
    append_until_refused(&log, "a", 10);
    std::fs::remove_dir_all(&dir).unwrap();
    let (_, refused) = append_until_refused(&log, "a", 400);
    let refused = refused.expect("a roll into a removed directory was refused");
    assert!(
        refused.contains("moved") || refused.contains("no longer"),
        "the error says why: {refused}"
    );
    let _ = log.close();
    drop(log);
    assert!(!dir.exists(), "the log recreated its removed directory");
}

/// A compaction after the move (it rolls, writes outputs by path, removes inputs by path)
/// is refused before it touches the other log's directory.
#[test]
fn a_compaction_after_the_move_is_refused_and_leaves_the_other_log_alone() {
    let root = tempfile::tempdir().unwrap();
    let old = root.path().join("log");
    let moved = root.path().join("moved");
    let first = Log::open_blocking(&old, options()).unwrap();
    // Several sealed segments, two tenants: erasing one rewrites them all.
    let payload = vec![5u8; 1000];
    for i in 0..200 {
        let (exec, tenant) = if i % 2 == 0 { ("a", "x") } else { ("b", "y") };
        first.append_blocking(exec, tenant, &payload).unwrap();
    }
    assert!(first.segments().len() > 2);
    std::fs::rename(&old, &moved).unwrap();
    let second = Log::open_blocking(&old, options()).unwrap();
    append_until_refused(&second, "c", 10);
    let second_files = names(&old);

    let view = first.compaction_view(false).unwrap();
    let plan = seglog_compact::policy::drop_tenant(&view, "y");
    let refused = first
        .compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {})
        .expect_err("a compaction by the old path was refused");
    assert!(refused.to_string().contains("moved"), "{refused}");
    drop(first);
    assert_eq!(names(&old), second_files);
    second.close().unwrap();
    drop(second);
    let second = Log::open_blocking(&old, options()).unwrap();
    assert_eq!(second.read("c").unwrap().len(), 10);
    second.close().unwrap();
    let first = Log::open_blocking(&moved, options()).unwrap();
    assert_eq!(first.read("a").unwrap().len(), 100);
    assert_eq!(first.read("b").unwrap().len(), 100);
    first.close().unwrap();
}

/// A reader whose log's path names another log now refuses to refresh instead of serving
/// the other log's records as its own.
#[test]
fn a_read_only_log_refuses_to_refresh_from_a_path_that_names_another_log() {
    let root = tempfile::tempdir().unwrap();
    let old = root.path().join("log");
    let moved = root.path().join("moved");
    let first = Log::open_blocking(&old, options()).unwrap();
    append_until_refused(&first, "a", 5);
    first.close().unwrap();
    drop(first);
    let reader = Log::open_read_only_blocking(&old).unwrap();
    assert_eq!(reader.read("a").unwrap().len(), 5);
    std::fs::rename(&old, &moved).unwrap();
    let second = Log::open_blocking(&old, options()).unwrap();
    append_until_refused(&second, "b", 7);
    second.close().unwrap();
    let refused = reader
        .refresh()
        .expect_err("a refresh from the other log was refused");
    assert!(refused.to_string().contains("moved"), "{refused}");
    assert_eq!(reader.read("a").unwrap().len(), 5, "the old view is kept");
    assert!(reader.read("b").unwrap().is_empty());
}
