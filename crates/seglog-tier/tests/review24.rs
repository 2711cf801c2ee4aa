//! Review 24 (hostile) of how a restore takes and commits its directory (`staging.rs`
//! `Restoring::begin` / `commit` / `abandon`, `restore.rs`): the directory's `LOCK`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use support::fault::FaultStore;
use support::restore_dirs::{count, names as listing, ship_log};

/// A restore whose future is dropped (a caller's `timeout`, `select!`, an aborted task) while
/// one of its `spawn_blocking` writes is queued leaves its marker (review 23's fix) — but
/// the drop also drops its `Restoring`, and with it the `LOCK` file, so the directory lock
/// is released while that write is still to come. The next restore into the directory takes
/// the lock, clears the "interrupted" restore's files, writes and commits its own log, opens
/// it and appends; then the first restore's queued write creates its segment (another
/// bucket's) in the committed, open log's directory. Nothing stops it: the lock that should
/// have kept everything else out of the directory was given up before the write it guarded
/// ended. The directory no longer opens as the second bucket's log.
#[test]
fn a_cancelled_restores_write_never_lands_in_the_next_restores_log() {
    let root = tempfile::tempdir().unwrap();
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    tokio::runtime::Builder::new_multi_thread()
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
    let (after_drop, second) = rt.block_on(async {
        // Paused at the GET of its second segment: the first is written, the marker is there.
        let gate = fault.pause_next_get(&m.segments[1].segment.key);
        let mut restore = Box::pin(support::restore_in_order(
            store.clone(),
            Path::from("p"),
            dest.clone(),
            support::options(),
        ));
        tokio::select! {
            r = &mut restore => panic!("the restore ended early: {:?}", r.map(|_| ())),
            () = gate.reached.notified() => {}
        }
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let blocker = tokio::task::spawn_blocking(move || {
            started.send(()).unwrap();
            held.recv().unwrap();
        });
        running.await.unwrap();
        gate.resume.notify_one();
        tokio::select! {
            r = &mut restore => panic!("the restore ended early: {:?}", r.map(|_| ())),
            () = async { for _ in 0..200 { tokio::task::yield_now().await } } => {}
        }
        // The caller gives up on it; its write of segment 2 is still queued.
        drop(restore);
        let after_drop = listing(&dest);

        // Another restore (another process, or this one: another runtime) into the same
        // directory, of another bucket's log; it opens its log and appends.
        let dest2 = dest.clone();
        let (ready, is_ready) = std::sync::mpsc::channel::<Result<(), String>>();
        let (go, wait_go) = std::sync::mpsc::channel::<()>();
        let second = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                let restored = match support::restore_in_order(
                    store,
                    Path::from("q"),
                    &dest2,
                    support::options(),
                )
                .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        ready.send(Err(e.to_string())).unwrap();
                        return None;
                    }
                };
                support::write_events(&restored.log, 0, 10).await;
                let written = support::events_of(&restored.log, u64::MAX);
                ready.send(Ok(())).unwrap();
                wait_go.recv().unwrap();
                restored.log.close().unwrap();
                Some(written)
            })
        });
        let second_ok = is_ready.recv().unwrap();
        // The first restore's queued write runs now (the second's log is open).
        release.send(()).unwrap();
        blocker.await.unwrap();
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        let _ = go.send(());
        let written = second.join().unwrap();
        (after_drop, second_ok.map(|()| written.unwrap()))
    });
    drop(rt);
    let written = match second {
        Ok(w) => w,
        // Fixed: the dropped restore runs on as a task of its own, holding the directory's
        // lock until its writes end, so the second is refused meanwhile; nothing it wrote
        // can land in another restore's log.
        Err(e) if e.contains("another restore is writing") => return,
        Err(e) => panic!("the second restore failed: {e} (after the drop: {after_drop:?})"),
    };
    let left = listing(&dest);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reopened = rt.block_on(async {
        match seglog::Log::open(&dest, support::options()).await {
            Ok(log) => {
                let events = support::events_of(&log, u64::MAX);
                log.close().unwrap();
                Ok(events)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    let stray = seglog_segment_name(m.segments[1].first_lsn);
    assert!(
        !left.contains(&stray) && reopened.as_ref().is_ok_and(|e| *e == written),
        "the cancelled restore's queued write landed in the next restore's committed, open log \
         (the cancelled restore's lock was released at the drop, before its write ended): the \
         directory holds {left:?} (after the drop: {after_drop:?}; {stray} is bucket p's); it \
         reopens as {} (the second restore's log acknowledged {} events)",
        match &reopened {
            Ok(e) => format!(
                "a log of {} events, equal to what was written: {}",
                count(e),
                *e == written
            ),
            Err(e) => format!("nothing: {e}"),
        },
        count(&written)
    );
}

fn seglog_segment_name(first_lsn: u64) -> String {
    // The engine's segment file name (`seglog_segment::format::segment_file_name`).
    format!("{first_lsn:020}.seg")
}

/// A restore that fails after creating the directory's `LOCK` removes `LOCK` (`abandon`,
/// `created_lock`) while it still holds the `flock` on it. `flock` locks the inode, not the
/// name: a process whose `Log::open` (or `restore`) opened `LOCK` just before the removal —
/// `lock_dir` is `open(O_CREAT)` then `flock(LOCK_EX|LOCK_NB)` — gets its `flock` on the
/// unlinked inode as soon as the restore releases it, and believes it holds the directory.
/// The next `Log::open` creates a new `LOCK`, locks that, and opens the same directory: two
/// writers of one log (or a restore clearing a directory a log is writing). Made
/// deterministic by doing `lock_dir`'s two steps by hand around the restore's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_never_lets_two_holders_lock_its_directory() {
    let root = tempfile::tempdir().unwrap();
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    ship_log(store.clone(), "p", &root.path().join("a")).await;
    let m = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    // The second segment's object is damaged: the restore fails on it.
    let key = Path::from(m.segments[1].segment.key.as_str());
    store.put(&key, vec![7u8; 100].into()).await.unwrap();
    let dest = root.path().join("dest");
    let gate = fault.pause_next_get(&m.segments[1].segment.key);
    let restore = tokio::spawn(support::restore_in_order(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        support::options(),
    ));
    gate.reached.notified().await;
    // Another process's `Log::open` of the directory: its first step, `open(LOCK, O_CREAT)`.
    let early = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dest.join("LOCK"))
        .unwrap();
    gate.resume.notify_one();
    let failed = restore.await.unwrap().map(|r| r.log.close().unwrap());
    assert!(
        failed.is_err(),
        "the restore of a damaged segment succeeded"
    );
    // Its second step, `flock(LOCK_EX|LOCK_NB)`: it holds "the directory lock".
    let first_holder = early.try_lock();
    // Now a second `Log::open` of the directory.
    let second = seglog::Log::open(&dest, support::options()).await;
    let both = first_holder.is_ok() && second.is_ok();
    if let Ok(log) = second {
        log.close().unwrap();
    }
    assert!(
        !both,
        "two holders of {dest:?}'s lock at once: the restore failed ({}) and removed LOCK while \
         holding it, so the process that had opened LOCK got its flock on the unlinked inode, \
         and Log::open then created a new LOCK, locked it and opened the directory (it holds \
         {:?})",
        failed.unwrap_err(),
        listing(&dest)
    );
}

/// `commit` releases the restore's lock by closing its `LOCK` file (`self.lock.take()`), not
/// with `flock(LOCK_UN)`. A `flock` belongs to the open file description, which a child that
/// another thread of the process forks shares until it `exec`s (`O_CLOEXEC` only closes it at
/// the `exec`): closing our descriptor then leaves the lock held by the child, and the
/// restore's own `Log::open` right after the commit fails with `Locked` — after the marker
/// is gone, so the restore returns an error for a directory it committed (and the claim it
/// took, which fenced the previous owner, is dropped). The engine's own lock
/// (`StdDirLock::drop`, std_fs.rs) unlocks explicitly for exactly this reason. The fork is
/// stood in for by a duplicate of the descriptor (`F_DUPFD_CLOEXEC`: the same open file
/// description, as the child's copy is) that the test holds across the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_is_not_refused_its_own_log_by_a_forked_childs_copy_of_its_lock() {
    let root = tempfile::tempdir().unwrap();
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = fault.clone();
    ship_log(store.clone(), "p", &root.path().join("a")).await;
    let m = seglog_tier::latest_manifest(store.as_ref(), &Path::from("p"))
        .await
        .unwrap()
        .unwrap();
    let dest = root.path().join("dest");
    let gate = fault.pause_next_get(&m.segments[0].segment.key);
    let restore = tokio::spawn(support::restore_in_order(
        store.clone(),
        Path::from("p"),
        dest.clone(),
        support::options(),
    ));
    gate.reached.notified().await;
    // The restore's LOCK descriptor (the only one open on it in this process).
    let lock_path = dest.join("LOCK");
    let fd: i32 = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            (target == lock_path).then(|| e.file_name().to_string_lossy().parse().ok())?
        })
        .next()
        .expect("the restore's LOCK descriptor");
    // A child forked now (by any thread) holds a copy until it execs.
    #[allow(unsafe_code)]
    // SAFETY: `fd` is open (the restore holds it until its commit); borrowed only to dup it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let child_copy = rustix::io::fcntl_dupfd_cloexec(borrowed, 0).unwrap();
    gate.resume.notify_one();
    let outcome = restore.await.unwrap().map(|r| r.log.close().unwrap());
    // The child execs: its copy is closed.
    drop(child_copy);
    let left = listing(&dest);
    let again =
        support::restore_in_order(store.clone(), Path::from("p"), &dest, support::options())
            .await
            .map(|r| r.log.close().unwrap());
    assert!(
        outcome.is_ok(),
        "the restore committed {dest:?} (it holds {left:?}, unmarked) but failed to open its \
         own log: {:?} — the lock it released by closing its descriptor was still held through \
         a forked child's copy; a restore again: {again:?}",
        outcome.unwrap_err()
    );
}
