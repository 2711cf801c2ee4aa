//! Review 44: what a log whose directory was renamed while it was open can still do, by
//! path, to the log opened at its old path since (commit adaf15f's `DirGuard`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{CheckpointMode, Log, Options};
use std::path::Path;
use std::sync::mpsc;

fn options() -> Options {
    Options::default()
        .segment_size_bytes(64 << 10)
        .checkpoints(CheckpointMode::Inline)
}

/// 200 records of 1000 bytes, two tenants alternating: several sealed segments, each holding
/// records of both.
fn fill(log: &Log, keep: &str, doomed: &str) {
    let payload = vec![5u8; 1000];
    for i in 0..200 {
        let (exec, tenant) = if i % 2 == 0 {
            (keep, "x")
        } else {
            (doomed, "y")
        };
        log.append_blocking(exec, tenant, &payload).unwrap();
    }
    assert!(log.segments().len() > 2);
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A compaction of the first log that started before its directory was renamed: its output
/// (`…0001.seg` + temp suffix) was created in the first log's directory, and the builder
/// writes through its handle. At the replacement the guard refuses, and the outputs are
/// abandoned: `BuiltSegment::abandon` removes the temp file **by path**, unguarded, i.e. from
/// the directory now at the old path. If the second log opened there is compacting at that
/// moment (its first output has the same name: every log's first segment starts at LSN 1),
/// its output file is removed; its own replacement then commits a manifest naming a file
/// that is gone, the second log is poisoned, and it no longer opens.
#[test]
fn an_abandoned_compaction_of_the_moved_log_does_not_remove_the_other_logs_output() {
    let root = tempfile::tempdir().unwrap();
    let old = root.path().join("log");
    let moved = root.path().join("moved");
    let first = Log::open_blocking(&old, options()).unwrap();
    fill(&first, "a", "b");

    let view = first.compaction_view(false).unwrap();
    let plan = seglog_compact::policy::drop_tenant(&view, "y");
    let big = seglog::CompactOptions::default().target_segment_bytes(1 << 30);

    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(Some(go_rx));
    let mut second_thread = None;
    let mut second_log = None;
    let mut moved_once = false;
    let refused = first
        .compact_blocking(&plan, big, &mut |_, _| {
            if moved_once {
                return;
            }
            moved_once = true;
            // The first log's output exists (as `old/…0001.seg.<temp>`); now the move.
            std::fs::rename(&old, &moved).unwrap();
            let second = Log::open_blocking(&old, options()).unwrap();
            fill(&second, "c", "d");
            let view = second.compaction_view(false).unwrap();
            let plan = seglog_compact::policy::drop_tenant(&view, "y");
            let log = second.clone();
            let ready = ready_tx.clone();
            let go = go_rx.lock().unwrap().take().unwrap();
            let opts = big;
            second_thread = Some(std::thread::spawn(move || {
                let mut signalled = false;
                log.compact_blocking(&plan, opts, &mut |_, _| {
                    if !signalled {
                        signalled = true;
                        // The second log's first output exists now: let the first go on.
                        ready.send(()).unwrap();
                        go.recv().unwrap();
                    }
                })
            }));
            ready_rx.recv().unwrap();
            eprintln!("old dir while both compact: {:?}", names(&old));
            second_log = Some(second);
        })
        .expect_err("the first log's replacement was refused");
    assert!(refused.to_string().contains("moved"), "{refused}");
    eprintln!("old dir after the first log gave up: {:?}", names(&old));
    go_tx.send(()).unwrap();
    let second_result = second_thread.unwrap().join().unwrap();
    let second = second_log.unwrap();
    let second_result = second_result.map(|_| ()).map_err(|e| e.to_string());
    let poisoned = second.is_poisoned();
    let _ = second.close();
    drop(second);
    drop(first);
    let reopened = Log::open_blocking(&old, options()).map_err(|e| e.to_string());
    eprintln!(
        "second log's compaction: {second_result:?}; poisoned: {poisoned}; reopen: {:?}",
        reopened.as_ref().map(|_| ())
    );
    assert!(
        second_result.is_ok() && !poisoned,
        "the second log's own compaction failed: {second_result:?} (reopen: {:?})",
        reopened.as_ref().map(|_| ())
    );
    let second = reopened.expect("the second log opens");
    assert_eq!(second.read("c").unwrap().len(), 100);
    second.close().unwrap();
}

/// `Log::backup` of the moved log: its segments are copied from its handles (a link made by
/// path is checked against the header), but its index checkpoints are hard-linked by path,
/// unchecked, from whatever the old path names now: the other log's checkpoints (its
/// execution and tenant ids) land in this log's backup.
#[test]
fn a_backup_of_the_moved_log_takes_nothing_from_the_other_log() {
    let root = tempfile::tempdir().unwrap();
    let old = root.path().join("log");
    let moved = root.path().join("moved");
    let first = Log::open_blocking(&old, options()).unwrap();
    fill(&first, "a", "b");
    std::fs::rename(&old, &moved).unwrap();
    let second = Log::open_blocking(&old, options()).unwrap();
    fill(&second, "secret-execution-of-the-other-log", "d");
    second.close().unwrap();

    let dest = root.path().join("backup");
    let result = first.backup_blocking(&dest);
    eprintln!("backup: {result:?}");
    if !dest.exists() {
        return;
    }
    let leaked: Vec<String> = names(&dest)
        .into_iter()
        .filter(|n| {
            let bytes = std::fs::read(dest.join(n)).unwrap();
            bytes
                .windows(b"secret-execution".len())
                .any(|w| w == b"secret-execution")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "the first log's backup holds the other log's ids in {leaked:?} (backup result: {:?})",
        result.map(|r| r.checkpoints)
    );
}

/// The log's parent directory renamed and a regular file put at its old path: the guard's
/// `stat` fails with ENOTDIR, not ENOENT, and the refused roll is reported as a bare I/O
/// error ("stat …: Not a directory") instead of `DirectoryMoved` and its advice. (The roll is
/// refused either way; only the error differs.)
#[test]
fn a_parent_replaced_by_a_file_is_reported_as_a_moved_directory() {
    let root = tempfile::tempdir().unwrap();
    let parent = root.path().join("parent");
    let dir = parent.join("log");
    let log = Log::open_blocking(&dir, options()).unwrap();
    let payload = vec![3u8; 1000];
    for _ in 0..10 {
        log.append_blocking("a", "t", &payload).unwrap();
    }
    std::fs::rename(&parent, root.path().join("elsewhere")).unwrap();
    std::fs::write(&parent, b"a file now").unwrap();
    let mut refused = None;
    for _ in 0..400 {
        if let Err(e) = log.append_blocking("a", "t", &payload) {
            refused = Some(e.to_string());
            break;
        }
    }
    let refused = refused.expect("the roll was refused");
    let _ = log.close();
    assert!(refused.contains("moved"), "the error says why: {refused}");
}
