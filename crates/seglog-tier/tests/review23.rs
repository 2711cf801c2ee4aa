//! Review 23 (hostile) of the in-place restore under a `RESTORE_IN_PROGRESS` marker
//! (`staging.rs` `Restoring::begin` / `commit` / `Drop`, `restore.rs`).
//!
//! The interleavings are made deterministic: a second restore runs in a child process under
//! strace, which stops it (SIGSTOP injected at the `close` of its directory listing, so the
//! listing is complete and nothing after it has run) until the test has done the other
//! side's steps and sends SIGCONT (`.ci/run` installs strace). A cancelled restore is held
//! with a blocking pool of one thread that the test keeps busy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::fault::FaultStore;
use support::restore_dirs::{count, data_names as listing, ship_log};

// ---- A second restore in a child process, stopped after its directory listing ----

const CHILD_DIR: &str = "SEGLOG_REVIEW23_CHILD_DIR";
const CHILD_ROOT: &str = "SEGLOG_REVIEW23_CHILD_ROOT";

/// The child's side: restores an empty log (its own in-memory bucket) into `dir`; writes
/// its pid first (`<root>/child.pid`) and its outcome last (`<root>/child.outcome`).
fn child_restore(dir: &FsPath, root: &FsPath) {
    std::fs::write(root.join("child.pid"), std::process::id().to_string()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        match support::restore_in_order(store, Path::from("q"), dir, support::options()).await {
            Ok(r) => {
                r.log.close().unwrap();
                "restored (an empty log of another bucket)".to_string()
            }
            Err(e) => format!("failed: {e}"),
        }
    });
    std::fs::write(root.join("child.outcome"), outcome).unwrap();
}

/// The second restore, running in a child process (this test binary, `test` alone) under
/// strace, stopped right after it listed `dir` (the `close` of the listing's descriptor).
struct StoppedRestore {
    strace: std::process::Child,
    pid: String,
    root: PathBuf,
}

impl StoppedRestore {
    /// Starts it and waits until it is stopped (its listing of `dir` done).
    async fn start(test: &str, dir: &FsPath, root: &FsPath) -> Self {
        let trace = root.join("child.trace");
        let strace = std::process::Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&trace)
            .args([
                "-e",
                "trace=close",
                "-e",
                "inject=close:signal=SIGSTOP:when=1",
                "-P",
            ])
            .arg(dir)
            .arg(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir)
            .env(CHILD_ROOT, root)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("this test needs strace (apt-get install strace)");
        let mut me = StoppedRestore {
            strace,
            pid: String::new(),
            root: root.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&trace).unwrap_or_default();
            if text.contains("stopped by SIGSTOP") {
                break;
            }
            // Refused before it listed (the directory's lock was held): it has ended.
            if me.strace.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the child restore never listed {dir:?}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        me.pid = std::fs::read_to_string(root.join("child.pid")).unwrap_or_default();
        me
    }

    /// Lets it go on, waits for it to end, and returns its outcome. (strace counts `when=1`
    /// per thread: another thread's first `close` of the directory stops the child again,
    /// later, after the step under test; it is sent SIGCONT until it ends.)
    async fn resume(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &self.pid])
                .stderr(std::process::Stdio::null())
                .status();
            if let Some(status) = self.strace.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the child restore never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "the child test failed: {status}");
        std::fs::read_to_string(self.root.join("child.outcome")).unwrap()
    }
}

/// Restore A commits (removes its marker, opens its log, and the new owner appends) while
/// restore B — the same directory, B's listing taken while A still held the marker — is
/// between that listing and opening the marker. B's `open(O_CREAT)` makes a *new* marker
/// file (A unlinked its own), its `flock` succeeds (nobody holds that inode: flock protects
/// the inode, not the name), `is_still_at` agrees (it is B's own file), and because the
/// stale listing had a marker (`had_marker`), `clear_all_but_marker` removes every file of
/// A's committed, open log — segments, checkpoints, its `LOCK` — and B restores its own log
/// in their place. A's restored events and the appends it acknowledged after the restore
/// returned are gone. B should have been refused (`DestinationNotEmpty`: a log is there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_begun_while_another_commits_never_deletes_the_committed_log() {
    if let (Ok(dir), Ok(root)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROOT)) {
        return tokio::task::spawn_blocking(move || {
            child_restore(FsPath::new(&dir), FsPath::new(&root));
        })
        .await
        .unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let shipped = ship_log(store.clone(), "p", &root.join("a")).await;
    let m = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    let dest = root.join("dest");

    // Restore A holds its marker, paused at the GET of its last segment.
    let gate = fault.pause_next_get(&m.segments.last().unwrap().segment.key);
    let a = tokio::spawn(support::restore_in_order(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        support::options(),
    ));
    gate.reached.notified().await;
    // Restore B lists the directory (A's marker in it) and is stopped there.
    let b = StoppedRestore::start(
        "a_restore_begun_while_another_commits_never_deletes_the_committed_log",
        &dest,
        &root,
    )
    .await;
    // A ends: its marker is removed, its log opened; the new owner appends.
    gate.resume.notify_one();
    let a = a.await.unwrap().unwrap();
    support::write_events(&a.log, 200, 230).await;
    let mut expected = support::events_of(&a.log, u64::MAX);
    let a_files = listing(&dest);
    assert_eq!(count(&expected), 230);
    // B goes on.
    let b_outcome = b.resume().await;
    let missing: Vec<&String> = a_files.iter().filter(|n| !dest.join(n).exists()).collect();
    let _ = a.log.close();
    let reopened = match seglog::Log::open(&dest, support::options()).await {
        Ok(log) => {
            let events = support::events_of(&log, u64::MAX);
            log.close().unwrap();
            events
        }
        Err(e) => panic!("A's log does not open after restore B ({b_outcome}): {e}"),
    };
    expected.retain(|_, v| !v.is_empty());
    assert!(
        missing.is_empty() && reopened == expected,
        "restore B (begun while A held its marker; {b_outcome}) deleted the log restore A had \
         committed and opened: {missing:?} of A's files are gone (the directory now holds \
         {:?}); it reopens with {} of the {} events A served ({} restored, 30 appended after \
         the restore returned)",
        listing(&dest),
        count(&reopened),
        count(&expected),
        count(&shipped)
    );
}

/// `begin` on an empty directory: listing (empty, so no `had_marker`), marker created and
/// locked, the `Restoring` built, then a second listing refuses anything else that appeared
/// meanwhile — "a log another process is writing there without a marker" — with
/// `DestinationNotEmpty`. But the early return drops the `Restoring`, and its `Drop` (meant
/// for a failed restore) runs `clear_all_but_marker`: it deletes that other log's files
/// (here a log a user opened in the empty directory between the two listings: its segment,
/// checkpoints and `LOCK`, the appends it acknowledged), then the marker. The check that
/// recognises the other log destroys it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_refuses_a_directory_deletes_nothing_in_it() {
    if let (Ok(dir), Ok(root)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROOT)) {
        return tokio::task::spawn_blocking(move || {
            child_restore(FsPath::new(&dir), FsPath::new(&root));
        })
        .await
        .unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    let dest = root.join("dest");
    std::fs::create_dir(&dest).unwrap();
    // The restore lists the (empty) directory and is stopped there.
    let b = StoppedRestore::start(
        "a_restore_that_refuses_a_directory_deletes_nothing_in_it",
        &dest,
        &root,
    )
    .await;
    // Meanwhile a user opens a log in it and appends (acknowledged). (Fixed: the restore
    // holds the directory's `LOCK` from before its listing, so the open is refused, and the
    // restore goes on into the directory it found empty.)
    let options = support::options().checkpoints(seglog::CheckpointMode::Inline);
    let log = match seglog::Log::open(&dest, options.clone()).await {
        Ok(log) => log,
        Err(e) => {
            let b_outcome = b.resume().await;
            assert!(
                b_outcome.starts_with("restored"),
                "{b_outcome} (the open: {e})"
            );
            return;
        }
    };
    support::write_events(&log, 0, 120).await;
    let written = support::events_of(&log, u64::MAX);
    let user_files = listing(&dest);
    // The restore goes on.
    let b_outcome = b.resume().await;
    let missing: Vec<&String> = user_files
        .iter()
        .filter(|n| !dest.join(n).exists())
        .collect();
    let _ = log.close();
    let reopened = seglog::Log::open(&dest, options).await.unwrap();
    let events = support::events_of(&reopened, u64::MAX);
    reopened.close().unwrap();
    assert!(
        missing.is_empty() && events == written,
        "the restore ({b_outcome}) deleted the files of the log a user had opened in the \
         directory: {missing:?} of {user_files:?} are gone; the log reopens with {} of the {} \
         events it acknowledged",
        count(&events),
        count(&written)
    );
}

// ---- A restore that is cancelled ----

/// `restore` is a future: a caller's `timeout`, a `select!`, an aborted task drop it at an
/// `.await`. Dropped while one of its `spawn_blocking` writes is queued or running, its
/// `Restoring` is dropped at once: `Drop` clears the directory and removes the marker — and
/// the blocking write, which a dropped `JoinHandle` does not stop, then creates its segment
/// in the directory, unmarked. The directory now opens (`Log::open`, the CLI, and
/// `open_from_bucket`, which "continues" any unmarked directory holding files) as a log of
/// that one segment, not the bucket's; every later restore into it is refused
/// (`DestinationNotEmpty`). Made deterministic with a blocking pool of one thread, kept busy
/// while the restore queues its write.
#[test]
fn a_cancelled_restore_leaves_no_unmarked_part_of_a_log() {
    let root = tempfile::tempdir().unwrap();
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let shipped = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(ship_log(store.clone(), "p", &root.path().join("a")));
    let m = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(seglog_tier::latest_manifest(
            store.as_ref(),
            &Path::from("p"),
        ))
        .unwrap()
        .unwrap();
    let dest = root.path().join("dest");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let after_drop = rt.block_on(async {
        let gate = fault.pause_next_get(&m.segments.first().unwrap().segment.key);
        let mut restore = Box::pin(support::restore_in_order(
            store.clone(),
            Path::from("p"),
            dest.clone(),
            support::options(),
        ));
        // Run the restore up to the GET of its first segment (its marker is held).
        tokio::select! {
            r = &mut restore => panic!("the restore ended early: {:?}", r.map(|_| ())),
            () = gate.reached.notified() => {}
        }
        // The one blocking thread is taken.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let blocker = tokio::task::spawn_blocking(move || {
            started.send(()).unwrap();
            held.recv().unwrap();
        });
        running.await.unwrap();
        // The restore gets its segment and queues the write of it (no other thread runs it:
        // polled until it waits on the blocking pool).
        gate.resume.notify_one();
        tokio::select! {
            r = &mut restore => panic!("the restore ended early: {:?}", r.map(|_| ())),
            () = async { for _ in 0..200 { tokio::task::yield_now().await } } => {}
        }
        // The caller gives up on it (a timeout).
        drop(restore);
        let after_drop = listing(&dest);
        // The blocking thread is free again: the queued write runs, then this.
        release.send(()).unwrap();
        blocker.await.unwrap();
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        after_drop
    });
    drop(rt);
    let left = listing(&dest);
    let marked = left
        .iter()
        .any(|n| n == seglog_tier::RESTORE_MARKER_FILE_NAME);
    let opens = if left.is_empty() || marked {
        None
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Some(rt.block_on(async {
            match seglog::Log::open(&dest, support::options()).await {
                Ok(log) => {
                    let events = support::events_of(&log, u64::MAX);
                    log.close().unwrap();
                    format!("opens as a log of {} events", count(&events))
                }
                Err(e) => format!("does not open ({e})"),
            }
        }))
    };
    assert!(
        left.is_empty() || marked,
        "a cancelled restore left {left:?} in its directory, unmarked (just after the drop it \
         held {after_drop:?}): it {} (the bucket's log has {} events), and a restore into it is \
         refused as not empty",
        opens.unwrap_or_default(),
        count(&shipped)
    );
}

// ---- The restore's own checks after its commit point ----

/// `restore`'s last checks (the opened log's sealed segments against the manifest: number,
/// first LSN, salt, `data_end == len`) run after the commit point: when they fail, the
/// restore returns `Corruption` — whose documentation says "nothing is opened then, and the
/// directory is left empty: what was downloaded is removed" — but the marker is gone and the
/// log it refused stays, unmarked: the next `open_from_bucket` "continues" it, and every
/// later restore into the directory is refused (`DestinationNotEmpty`) instead of failing
/// with the same `Corruption`. Here a manifest names a segment object with 64 zero bytes
/// after its records (its length and CRC-32 as the manifest says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_fails_its_checks_leaves_the_directory_empty() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    ship_log(store.clone(), "p", &root.path().join("a")).await;
    let mut m = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    let entry = &mut m.segments[1];
    let key = Path::from(entry.segment.key.as_str());
    let mut bytes = store
        .get(&key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes.extend([0u8; 64]);
    entry.segment.len = bytes.len() as u64;
    entry.segment.crc32 = crc32fast::hash(&bytes);
    store.put(&key, bytes.into()).await.unwrap();
    m.manifest_id += 1;
    store
        .put(
            &seglog_tier::manifest_key(&Path::from("p"), m.manifest_id),
            serde_json::to_vec(&m).unwrap().into(),
        )
        .await
        .unwrap();
    let dest = root.path().join("dest");
    let outcome =
        support::restore_in_order(store.clone(), Path::from("p"), &dest, support::options())
            .await
            .map(|r| r.log.close().unwrap());
    let err = match outcome {
        Ok(()) => return, // accepted: nothing to check here
        Err(e) => e,
    };
    let left = listing(&dest);
    let again = support::restore_in_order(store, Path::from("p"), &dest, support::options())
        .await
        .map(|r| r.log.close().unwrap());
    assert!(
        left.is_empty()
            || left
                .iter()
                .any(|n| n == seglog_tier::RESTORE_MARKER_FILE_NAME),
        "the restore failed ({err}) but left the log it refused in its directory, unmarked: \
         {left:?}; a second restore: {again:?}"
    );
}
