//! `Durability::Remote` (`RemoteDurable`): an append is acknowledged only once its bytes
//! are in the bucket. Each test checks a clause of docs/scale-out.md, "Remote durability":
//! every acknowledged append is in a restore made right after it (on a copy of the bucket,
//! as another node would find it if this one were lost then); waiters share rounds, one PUT
//! in flight at a time; a failed round fails every waiter it took and acknowledges nothing;
//! an ambiguous PUT is settled; a fenced writer acknowledges nothing more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use seglog_tier::{Error, RemoteDurable};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::fault::{Fault, FaultStore};
use support::remote::{prefix, remote_writer, restored_events, snapshot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_append_is_in_a_restore_made_right_after_it() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    // 8 KiB segments and ~150-byte events: the appends cross several seals, so some are
    // acknowledged by a manifest naming a freshly sealed segment, most by a chunk.
    let mut acked = support::Events::new();
    for i in 0..140 {
        let exec = format!("exec-{}", i % support::EXECUTIONS);
        let payload = support::payload_of(i);
        let seq = remote.append(&exec, "tenant-a", &payload).await.unwrap();
        acked.entry(exec).or_default().push((seq, payload));
        // This node is lost now: another one restores the bucket as it is.
        let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
        assert_eq!(
            restored, acked,
            "after acknowledged append {i}: every acknowledged event, same sequence and bytes"
        );
    }
    let sealed = log.segments().iter().filter(|s| s.sealed).count();
    assert!(sealed >= 2, "the appends crossed seals: {sealed} sealed");
    let stats = remote.stats();
    assert_eq!(stats.confirmed, 140, "{stats:?}");
    assert_eq!(stats.failed_rounds, 0, "{stats:?}");

    // The check has teeth: an append on the log directly (locally durable only) is not in
    // a restore made right after it; `wait_in_bucket` puts it there.
    let seq = log
        .append("exec-0", "tenant-a", b"local only")
        .await
        .unwrap();
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert!(
        !restored["exec-0"].iter().any(|(s, _)| *s == seq),
        "a local append is not in the bucket before a round"
    );
    remote.wait_in_bucket().await.unwrap();
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert!(restored["exec-0"].contains(&(seq, b"local only".to_vec())));
    remote.stop().await.unwrap();
    let err = remote
        .append("exec-0", "tenant-a", b"late")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RemoteStopped), "{err}");
    assert_eq!(
        log.latest_seq("exec-0").unwrap(),
        Some(seq),
        "a stopped handle appends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_rounds_with_one_chunk_put_in_flight() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    // A slow bucket: each chunk PUT takes 20 ms, so appends pile up behind a round.
    faults.delay_puts("/chunks/", Duration::from_millis(20));
    let (tasks, per_task) = (32usize, 5usize);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let remote = remote.clone();
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for k in 0..per_task {
                let i = t * per_task + k;
                let exec = format!("exec-{}", i % support::EXECUTIONS);
                let payload = support::payload_of(i);
                let seq = remote.append(&exec, "tenant-a", &payload).await.unwrap();
                acked.push((exec, seq, payload));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for h in handles {
        acked.extend(h.await.unwrap());
    }
    let stats = remote.stats();
    let appends = (tasks * per_task) as u64;
    assert_eq!(stats.confirmed, appends, "{stats:?}");
    assert!(
        stats.rounds * 4 <= appends,
        "rounds are shared: {} rounds for {appends} appends ({stats:?})",
        stats.rounds
    );
    assert!(stats.largest_round >= 4, "{stats:?}");
    assert_eq!(
        faults
            .delayed_max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one chunk PUT in flight at a time"
    );
    // Every acknowledged append restores, with its sequence and bytes.
    drop(remote);
    let expected = support::events_of(&log, u64::MAX);
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert_eq!(restored, expected);
    for (exec, seq, payload) in acked {
        assert!(restored[&exec].contains(&(seq, payload)), "{exec} {seq}");
    }
}

fn total_events(log: &seglog::Log) -> u64 {
    (0..support::EXECUTIONS)
        .map(|e| log.count(&format!("exec-{e}")).unwrap())
        .sum()
}

/// Starts `n` appends (events `from..from + n`) through `remote`, each in its own task.
fn spawn_appends(
    remote: &RemoteDurable,
    from: usize,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(usize, Result<u64, Error>)>> {
    (from..from + n)
        .map(|i| {
            let remote = remote.clone();
            tokio::spawn(async move {
                let exec = format!("exec-{}", i % support::EXECUTIONS);
                (
                    i,
                    remote
                        .append(&exec, "tenant-a", &support::payload_of(i))
                        .await,
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_chunk_put_fails_every_waiter_of_its_round_and_the_next_round_confirms() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"first").await.unwrap();
    // Round 1 (one waiter) is held at its chunk PUT while ten more appends queue behind
    // it; their round's chunk PUT (the second from now) fails before reaching the store.
    let gate = faults.pause_next_put("/chunks/");
    let first = spawn_appends(&remote, 0, 1);
    gate.reached.notified().await;
    let queued = spawn_appends(&remote, 1, 10);
    // Every queued append is durable locally (then it queues its waiter at once).
    while total_events(&log) < 12 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ... and has queued its waiter behind the held round (a loaded machine may lag).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while remote.stats().queued < 10 {
        assert!(std::time::Instant::now() < deadline, "{:?}", remote.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    faults.fail_put("/chunks/", 2, Fault::Before);
    gate.resume.notify_one();
    for h in first {
        let (i, r) = h.await.unwrap();
        assert!(r.is_ok(), "event {i}: its round succeeded: {r:?}");
    }
    let mut failed = 0;
    for h in queued {
        let (i, r) = h.await.unwrap();
        match r {
            Err(Error::RemoteUnconfirmed { .. }) => failed += 1,
            other => panic!("event {i}: its round's chunk PUT failed, yet {other:?}"),
        }
    }
    assert_eq!(failed, 10);
    let stats = remote.stats();
    assert_eq!(stats.failed_rounds, 1, "{stats:?}");
    assert!(!log.is_poisoned(), "a failed PUT does not poison the log");
    // The next round ships everything the log holds, the unacknowledged events included.
    remote.append("exec-0", "tenant-a", b"after").await.unwrap();
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert_eq!(restored, support::events_of(&log, u64::MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_put_that_reports_failure_after_success_is_settled_and_acknowledged() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"first").await.unwrap();
    // The chunk lands, then the store says it failed (a timeout after success): the chunk
    // code reads the key back, finds its own chunk, and the append is acknowledged.
    faults.fail_put("/chunks/", 1, Fault::AfterSuccess);
    let seq = remote
        .append("exec-1", "tenant-a", b"ambiguous")
        .await
        .unwrap();
    assert_eq!(remote.stats().failed_rounds, 0);
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert!(restored["exec-1"].contains(&(seq, b"ambiguous".to_vec())));
    // The same before the store: not acknowledged, and then shipped by the next round.
    faults.fail_put("/chunks/", 1, Fault::Before);
    let err = remote
        .append("exec-2", "tenant-a", b"unconfirmed")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RemoteUnconfirmed { .. }), "{err}");
    assert!(!err.is_fenced());
    remote.append("exec-3", "tenant-a", b"next").await.unwrap();
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert_eq!(restored, support::events_of(&log, u64::MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_fenced_mid_round_fails_every_waiter_and_its_log_refuses_appends() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    for i in 0..20 {
        let exec = format!("exec-{}", i % support::EXECUTIONS);
        remote
            .append(&exec, "tenant-a", &support::payload_of(i))
            .await
            .unwrap();
    }
    let acked = support::events_of(&log, u64::MAX);
    // A's round is held at its chunk PUT (after its manifest check), more appends queue,
    // and node B restores meanwhile: its end marker takes the index A's chunk was to use.
    let gate = faults.pause_next_put("/chunks/");
    let held = spawn_appends(&remote, 20, 1);
    gate.reached.notified().await;
    let queued = spawn_appends(&remote, 21, 10);
    let b = seglog_tier::restore(
        store.clone(),
        prefix(),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    gate.resume.notify_one();
    let mut statuses = Vec::new();
    for h in held.into_iter().chain(queued) {
        let (i, r) = h.await.unwrap();
        match r {
            Err(e) if e.is_fenced() => statuses.push(i),
            // Queued appends that reached the log after it was poisoned fail there.
            Err(Error::Log(e)) => assert!(e.is_poisoned(), "event {i}: {e}"),
            other => panic!("event {i}: appended after the claim, yet {other:?}"),
        }
    }
    assert!(statuses.contains(&20), "the held round was fenced");
    assert!(log.is_poisoned(), "fencing poisons the local log");
    assert!(remote.append("exec-0", "tenant-a", b"late").await.is_err());
    // B holds exactly what A acknowledged: nothing after the claim was acknowledged.
    assert_eq!(support::events_of(&b.log, u64::MAX), acked);
    let names: BTreeSet<String> = b
        .tier
        .manifest()
        .await
        .named_keys()
        .map(str::to_string)
        .collect();
    for key in names {
        assert!(store.head(&Path::from(key.as_str())).await.is_ok(), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_made_while_a_round_is_in_flight_waits_for_the_next_round() {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"first").await.unwrap();
    // Round 1 lists the segments, then is held at its chunk PUT; event 1 is appended
    // (durable locally) meanwhile: round 1's chunk cannot hold it.
    let round_1 = faults.pause_next_put("/chunks/");
    let a = spawn_appends(&remote, 0, 1);
    round_1.reached.notified().await;
    let round_2 = faults.pause_next_put("/chunks/");
    let b = spawn_appends(&remote, 1, 1);
    while total_events(&log) < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    round_1.resume.notify_one();
    for h in a {
        assert!(h.await.unwrap().1.is_ok());
    }
    tokio::time::timeout(Duration::from_secs(10), round_2.reached.notified())
        .await
        .expect("event 1 waits for a round that lists the segments after it");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        b.iter().all(|h| !h.is_finished()),
        "event 1 is not acknowledged by the round that listed before it"
    );
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    let event_1 = (1, support::payload_of(1));
    assert!(!restored.get("exec-1").is_some_and(|v| v.contains(&event_1)));
    round_2.resume.notify_one();
    for h in b {
        assert!(h.await.unwrap().1.is_ok());
    }
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert!(restored["exec-1"].contains(&event_1));
    assert_eq!(remote.stats().rounds, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_right_after_its_last_acknowledgement_restores_every_acknowledged_event() {
    let root = tempfile::tempdir().unwrap();
    support::scenario_remote_durability(Arc::new(InMemory::new()), prefix(), root.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_whose_directory_is_gone_is_fenced_not_deferred_forever() {
    // A round that finds the active segment's file gone defers (a compaction may have
    // replaced it); it must still learn of a claim, or a node that lost its disk but not
    // its process would wait on rounds forever (remote durability: never fail its waiters
    // with `Fenced`).
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let dir_a = root.path().join("a");
    let (remote, log) = remote_writer(store.clone(), &dir_a).await;
    remote.append("exec-0", "tenant-a", b"acked").await.unwrap();
    std::fs::remove_dir_all(&dir_a).unwrap();
    let b = seglog_tier::restore(store, prefix(), root.path().join("b"), support::options())
        .await
        .unwrap();
    assert_eq!(b.log.read("exec-0").unwrap().len(), 1);
    let err = remote
        .append("exec-0", "tenant-a", b"zombie")
        .await
        .unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(log.is_poisoned());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_stalled_past_a_takeover_and_an_orphan_collection_acknowledges_nothing() {
    // A's round lists, finds nothing new to name, and stalls before its chunk PUT. Meanwhile
    // B restores (its end marker closes A's chunks), ships, and collects A's old chunk
    // folder, end marker included (grace zero here; an hour in production, which only
    // bounds the stall). A's chunk then lands where no restore looks. With the claim check
    // before the chunk, A acknowledged it and C did not restore it; checked after the chunk,
    // A learns of the claim and acknowledges nothing.
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let store: Arc<dyn ObjectStore> = faults.clone();
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    remote.append("exec-0", "tenant-a", b"acked").await.unwrap();
    let gate = faults.pause_next_put("/chunks/");
    let stalled = spawn_appends(&remote, 1, 1);
    gate.reached.notified().await;
    let b = seglog_tier::restore(
        store.clone(),
        prefix(),
        root.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    b.tier.ship(&b.log).await.unwrap();
    let collected = b.tier.collect_orphans(Duration::ZERO).await.unwrap();
    assert!(
        collected.deleted.iter().any(|k| k.contains("/chunks/")),
        "B collected A's old chunks: {collected:?}"
    );
    gate.resume.notify_one();
    for h in stalled {
        let (i, r) = h.await.unwrap();
        match r {
            Err(e) => assert!(e.is_fenced(), "event {i}: {e}"),
            Ok(seq) => panic!("event {i} acknowledged as seq {seq} after the takeover"),
        }
    }
    assert!(log.is_poisoned());
    // And indeed no restore finds it.
    let c = seglog_tier::restore(store, prefix(), root.path().join("c"), support::options())
        .await
        .unwrap();
    assert_eq!(c.log.read("exec-1").unwrap().len(), 0);
    assert_eq!(c.log.read("exec-0").unwrap().len(), 1);
}

/// A caller's waker that panics when the round's outcome wakes it (a bug of the caller's
/// executor) fails nobody else: the rounds go on for every other waiter and later appends,
/// and the panicking caller's own future still resolves when polled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waker_that_panics_does_not_stop_the_rounds_for_everyone_else() {
    use std::future::Future;
    use std::task::{Context, Wake, Waker};
    struct Panics;
    impl Wake for Panics {
        fn wake(self: Arc<Self>) {
            panic!("the caller's waker panicked");
        }
    }
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = tempfile::tempdir().unwrap();
    let (remote, log) = remote_writer(store.clone(), &root.path().join("a")).await;
    let seq = log.append("exec-0", "tenant-a", b"first").await.unwrap();
    // Polled once with the panicking waker: queued for a round, which wakes it.
    let mut waiting = Box::pin(remote.wait_in_bucket());
    let waker = Waker::from(Arc::new(Panics));
    assert!(waiting
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while remote.stats().rounds == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no round ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The round's outcome reached the future before its waker panicked.
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the polled-again future resolves")
        .unwrap();
    // Everyone else goes on being acknowledged.
    let later = remote.append("exec-0", "tenant-a", b"later").await.unwrap();
    let restored = restored_events(snapshot(store.as_ref()).await, root.path()).await;
    assert!(restored["exec-0"].contains(&(seq, b"first".to_vec())));
    assert!(restored["exec-0"].contains(&(later, b"later".to_vec())));
    remote.stop().await.unwrap();
}
