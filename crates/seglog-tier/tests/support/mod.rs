//! Shared test scenarios: each runs against any object store (the in-memory one, the
//! fault-injecting wrapper, or a real S3 server in `s3.rs`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod deletes;
pub mod fault;
pub mod remote;
pub mod restore_dirs;

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use seglog_tier::{Error, Tier};
use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

/// Small segments, so a few dozen events seal several.
// Options are set field by field: a struct literal would break once Options is
// #[non_exhaustive], which it is about to become.
#[allow(clippy::field_reassign_with_default)]
pub fn options() -> seglog::Options {
    let mut o = seglog::Options::default();
    o.segment_size_bytes = 8 * 1024;
    o
}

pub const EXECUTIONS: usize = 5;

/// Appends events `from..to` (numbered across executions, payload bytes derived from the
/// number).
pub async fn write_events(log: &seglog::Log, from: usize, to: usize) {
    for i in from..to {
        let exec = format!("exec-{}", i % EXECUTIONS);
        let payload = payload_of(i);
        log.append(&exec, "tenant-a", &payload).await.unwrap();
    }
}

pub fn payload_of(i: usize) -> Vec<u8> {
    let mut p = format!("event {i}: ").into_bytes();
    p.extend((0..(100 + i % 97)).map(|k| (k * 31 + i) as u8));
    p
}

pub type Events = BTreeMap<String, Vec<(u64, Vec<u8>)>>;

/// Every event of `log` whose record LSN is at most `up_to_lsn`.
pub fn events_of(log: &seglog::Log, up_to_lsn: u64) -> Events {
    let mut out = Events::new();
    for e in 0..EXECUTIONS {
        let exec = format!("exec-{e}");
        let events: Vec<_> = log
            .read(&exec)
            .unwrap()
            .into_iter()
            .filter(|ev| ev.lsn <= up_to_lsn)
            .map(|ev| (ev.seq, ev.payload.to_vec()))
            .collect();
        if !events.is_empty() {
            out.insert(exec, events);
        }
    }
    out
}

/// Every key under `prefix`.
pub async fn keys(store: &dyn ObjectStore, prefix: &Path) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(Some(prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

/// The newest manifest names only objects that exist, with the length it says.
pub async fn assert_newest_manifest_complete(store: &dyn ObjectStore, prefix: &Path) {
    let Some(m) = seglog_tier::latest_manifest(store, prefix).await.unwrap() else {
        return;
    };
    for key in m.named_keys() {
        let meta = store.head(&Path::from(key)).await;
        assert!(
            meta.is_ok(),
            "manifest {} names missing object {key}",
            m.manifest_id
        );
    }
}

use object_store::ObjectStoreExt;

/// Node A writes, seals and ships; node B claims; A's next ship is fenced, A's log refuses
/// appends, A's orphan collection deletes nothing, and none of B's objects is gone.
pub async fn scenario_zombie(store: Arc<dyn ObjectStore>, prefix: Path, root: &FsPath) {
    let log_a = seglog::Log::open(root.join("a"), options()).await.unwrap();
    let a = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    write_events(&log_a, 0, 120).await;
    log_a.roll().await.unwrap();
    let shipped = a.ship(&log_a).await.unwrap();
    assert!(shipped.segments_uploaded >= 2, "{shipped:?}");

    let b = seglog_tier::restore(store.clone(), prefix.clone(), root.join("b"), options())
        .await
        .unwrap();
    assert!(b.tier.epoch() > a.epoch());
    write_events(&b.log, 1000, 1100).await;
    b.log.roll().await.unwrap();
    b.tier.ship(&b.log).await.unwrap();
    let before = keys(store.as_ref(), &prefix).await;

    // The zombie goes on: more appends, a ship, an orphan collection.
    write_events(&log_a, 120, 200).await;
    log_a.roll().await.unwrap();
    let err = a.ship(&log_a).await.unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(
        log_a.append("exec-0", "tenant-a", b"late").await.is_err(),
        "a fenced log must refuse appends"
    );
    assert!(log_a.is_poisoned());
    let err = a
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(
        a.ship(&log_a).await.unwrap_err().is_fenced(),
        "fencing is sticky"
    );

    let after = keys(store.as_ref(), &prefix).await;
    for key in &before {
        assert!(after.contains(key), "the zombie deleted {key}");
    }
    for key in after.iter().filter(|k| !before.contains(k)) {
        assert!(
            !key.contains("manifest/"),
            "the zombie wrote manifest {key}"
        );
    }
    assert_newest_manifest_complete(store.as_ref(), &prefix).await;
    // B's data is whole: restore again on C.
    assert_a_restore_holds_what_was_shipped(&store, &prefix, &b.log, &b.tier, &root.join("c"))
        .await;
    // B is fenced by C now, and its collection deletes nothing.
    assert!(b
        .tier
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap_err()
        .is_fenced());
}

/// `rounds` rounds of `claimants` concurrent claims of the same newest manifest
/// (`claim_after`): each round has exactly one winner, the losers get `ClaimLost`, and
/// epochs increase by one per round. Then plain concurrent `claim`s: whoever won last owns
/// the log, and every earlier winner is fenced at its next ship.
pub async fn scenario_racing_claims(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    rounds: usize,
    claimants: usize,
) {
    let mut last_epoch = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .map_or(0, |m| m.writer_epoch);
    for round in 0..rounds {
        let seen = seglog_tier::latest_manifest(store.as_ref(), &prefix)
            .await
            .unwrap()
            .map(|m| m.manifest_id);
        let barrier = Arc::new(tokio::sync::Barrier::new(claimants));
        let tasks: Vec<_> = (0..claimants)
            .map(|_| {
                let (store, prefix, barrier) = (store.clone(), prefix.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    Tier::claim_after(store, prefix, seen).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(tier) => winners.push(tier),
                Err(Error::ClaimLost { .. }) => {}
                Err(e) => panic!("round {round}: unexpected claim error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one claim wins");
        let newest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(newest.writer_epoch, winners[0].epoch());
        assert_eq!(winners[0].epoch(), last_epoch + 1, "round {round}");
        last_epoch = winners[0].epoch();
    }
    let tasks: Vec<_> = (0..claimants)
        .map(|_| {
            let (store, prefix) = (store.clone(), prefix.clone());
            tokio::spawn(async move { Tier::claim(store, prefix).await })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(tier) => winners.push(tier),
            Err(Error::ClaimLost { .. }) => {}
            Err(e) => panic!("unexpected claim error {e}"),
        }
    }
    assert!(!winners.is_empty());
    let newest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    let owners: Vec<_> = winners
        .iter()
        .filter(|t| t.epoch() == newest.writer_epoch)
        .collect();
    assert_eq!(owners.len(), 1, "one owner at the end");
    for t in winners.iter().filter(|t| t.epoch() != newest.writer_epoch) {
        let err = t
            .collect_orphans(std::time::Duration::ZERO)
            .await
            .unwrap_err();
        assert!(err.is_fenced(), "{err}");
    }
}

/// Write through a log with small segments, ship, lose the node's directory, restore on
/// another node: every event of the shipped range is there, with the same sequence and
/// bytes; the restored log takes appends in a fresh segment and ships them.
pub async fn scenario_failover(store: Arc<dyn ObjectStore>, prefix: Path, root: &FsPath) {
    let dir_a = root.join("a");
    let log_a = seglog::Log::open(&dir_a, options()).await.unwrap();
    let a = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    write_events(&log_a, 0, 150).await;
    a.ship(&log_a).await.unwrap();
    write_events(&log_a, 150, 300).await;
    let report = a.ship(&log_a).await.unwrap();
    assert!(report.committed_manifest.is_some());
    // Node A is lost: its active segment with it.
    let manifest = a.manifest().await;
    let shipped = events_of(&log_a, manifest.last_lsn());
    let all = events_of(&log_a, u64::MAX);
    assert!(
        shipped.values().map(Vec::len).sum::<usize>() > 100,
        "most events shipped"
    );
    drop(log_a);
    std::fs::remove_dir_all(&dir_a).unwrap();

    let b = seglog_tier::restore(store.clone(), prefix.clone(), root.join("b"), options())
        .await
        .unwrap();
    let restored = events_of(&b.log, u64::MAX);
    assert_eq!(
        restored, shipped,
        "every shipped event, same sequence and bytes"
    );
    // What is missing is the unshipped tail: a suffix of each execution.
    for (exec, events) in &all {
        let got = restored.get(exec).map_or(&[][..], Vec::as_slice);
        assert_eq!(got, &events[..got.len()], "{exec}: restored is a prefix");
    }
    let last_restored_number = b
        .log
        .segments()
        .iter()
        .filter(|s| s.sealed)
        .map(|s| s.number)
        .max();
    write_events(&b.log, 300, 340).await;
    let active = b.log.segments().into_iter().find(|s| !s.sealed).unwrap();
    assert!(
        Some(active.number) > last_restored_number,
        "appends go to a fresh segment"
    );
    b.log.roll().await.unwrap();
    b.tier.ship(&b.log).await.unwrap();
    let m = b.tier.manifest().await;
    let c = seglog_tier::restore(store, prefix, root.join("c"), options())
        .await
        .unwrap();
    assert_eq!(events_of(&c.log, u64::MAX), events_of(&b.log, m.last_lsn()));
}

/// The erased tenant of `scenario_erasure`, and what marks its bytes.
pub const ERASED_TENANT: &str = "tenant-erased-7f3a";
pub const ERASED_MARKER: &[u8] = b"SECRET-OF-THE-ERASED-TENANT";

/// Every object under `prefix` whose bytes contain `needle`.
pub async fn objects_containing(
    store: &dyn ObjectStore,
    prefix: &Path,
    needle: &[u8],
) -> Vec<String> {
    let mut found = Vec::new();
    for key in keys(store, prefix).await {
        let bytes = store
            .get(&Path::from(key.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(key);
        }
    }
    found
}

/// Acceptance test 6 (issue 17): two tenants ship, one is erased (a compaction dropping the
/// tenant), the shipper ships the swap; an orphan collection within `grace` of the uploads
/// deletes nothing, one after `grace` leaves no object holding any byte of the erased
/// tenant (payloads, tenant name, execution ids), and the other tenant's events all restore.
/// With `offload`, every shipped sealed segment leaves the local disk (read-through) before
/// the erasure, which brings back those it rewrites.
pub async fn scenario_erasure(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    root: &FsPath,
    grace: std::time::Duration,
    offload: bool,
) {
    let log = seglog::Log::open(root.join("a"), options()).await.unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    let erased_event = |i: usize| {
        let mut p = ERASED_MARKER.to_vec();
        p.extend(format!(" event {i} ").into_bytes());
        p.extend(std::iter::repeat_n(b'x', 60));
        p
    };
    // Interleaved with the other tenant's events, then a run of its own (segments holding
    // only the erased tenant, which the compaction erases whole), then interleaved again.
    for i in 0..120 {
        write_events(&log, i, i + 1).await;
        if i % 2 == 0 {
            log.append(&format!("gone-{}", i % 3), ERASED_TENANT, &erased_event(i))
                .await
                .unwrap();
        }
    }
    for i in 120..240 {
        log.append("gone-run", ERASED_TENANT, &erased_event(i))
            .await
            .unwrap();
    }
    for i in 120..200 {
        write_events(&log, i, i + 1).await;
        if i % 3 == 0 {
            log.append(&format!("gone-{}", i % 3), ERASED_TENANT, &erased_event(i))
                .await
                .unwrap();
        }
    }
    log.roll().await.unwrap();
    let started = std::time::Instant::now();
    tier.ship(&log).await.unwrap();
    // Every object the erasure orphans was uploaded by now.
    let shipped = std::time::Instant::now();
    assert!(
        !objects_containing(store.as_ref(), &prefix, ERASED_MARKER)
            .await
            .is_empty(),
        "the erased tenant was shipped"
    );
    let read_through = if offload {
        // Read-through retention: every shipped sealed segment leaves the local disk; the
        // erasure must bring back those holding the tenant's records to rewrite them.
        let read_through =
            seglog_tier::ReadThrough::new(store.clone(), Default::default()).unwrap();
        read_through.attach(&log);
        let offloaded = read_through.offload(&tier, &log).await.unwrap();
        assert!(offloaded.segments_offloaded >= 3, "{offloaded:?}");
        Some(read_through)
    } else {
        None
    };

    let plan = seglog::compaction::policy::drop_tenant(
        &log.compaction_view(false).unwrap(),
        ERASED_TENANT,
    );
    let compacted = log
        .compact(plan, seglog::CompactOptions::default())
        .await
        .unwrap();
    assert!(compacted.executions_dropped >= 4, "{compacted:?}");
    let swap = tier.ship(&log).await.unwrap();
    assert!(swap.committed_manifest.is_some(), "{swap:?}");
    let newest = tier.manifest().await;

    // Within the grace period: the inputs are orphans, but young; nothing is deleted.
    let early = tier.collect_orphans(grace).await.unwrap();
    assert!(
        started.elapsed() < grace,
        "the test machine is too slow for a grace of {grace:?}"
    );
    assert!(early.deleted.is_empty(), "{early:?}");
    assert!(early.kept_young > 0, "{early:?}");
    assert!(!objects_containing(store.as_ref(), &prefix, ERASED_MARKER)
        .await
        .is_empty());

    // After it: no object holds any of the erased tenant's bytes (S3's Last-Modified has
    // whole seconds: a second more).
    tokio::time::sleep(
        grace.saturating_sub(shipped.elapsed()) + std::time::Duration::from_millis(1100),
    )
    .await;
    let late = tier.collect_orphans(grace).await.unwrap();
    assert!(!late.deleted.is_empty(), "{late:?}");
    for needle in [
        ERASED_MARKER,
        ERASED_TENANT.as_bytes(),
        b"gone-run".as_slice(),
        b"gone-0",
    ] {
        let holding = objects_containing(store.as_ref(), &prefix, needle).await;
        assert!(
            holding.is_empty(),
            "objects still hold {:?}: {holding:?}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_newest_manifest_complete(store.as_ref(), &prefix).await;
    // Nor does any local file (the rehydrated segments were rewritten like the others).
    for entry in std::fs::read_dir(root.join("a")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(ERASED_MARKER.len())
                .any(|w| w == ERASED_MARKER),
            "{} still holds the erased tenant's bytes",
            path.display()
        );
    }

    // The other tenant's events all restore, same sequences and bytes.
    let expected = {
        let log = log.clone();
        let up_to = newest.last_lsn();
        tokio::task::spawn_blocking(move || events_of(&log, up_to))
            .await
            .unwrap()
    };
    drop(read_through);
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 200);
    let b = seglog_tier::restore(store, prefix, root.join("b"), options())
        .await
        .unwrap();
    assert_eq!(events_of(&b.log, u64::MAX), expected);
    for gone in ["gone-0", "gone-1", "gone-2", "gone-run"] {
        assert!(b.log.read(gone).unwrap().is_empty(), "{gone}");
    }
}

/// Chunk shipping over any store: node A ships sealed segments and chunks of its active
/// segment, and is lost with events in its active segment only; B restores every event
/// (the active segment rebuilt from its chunks, which an end marker then closes); A, back
/// as a zombie, is fenced at its next ship and writes no chunk after the marker.
pub async fn scenario_chunk_failover(store: Arc<dyn ObjectStore>, prefix: Path, root: &FsPath) {
    let log_a = seglog::Log::open(root.join("a"), options()).await.unwrap();
    let a = Tier::claim(store.clone(), prefix.clone())
        .await
        .unwrap()
        .with_active_chunks();
    write_events(&log_a, 0, 100).await;
    a.ship(&log_a).await.unwrap();
    write_events(&log_a, 100, 130).await;
    let round = a.ship(&log_a).await.unwrap();
    assert_eq!(round.chunks_uploaded, 1, "{round:?}");
    let m = a.manifest().await;
    let active = m.active.unwrap();
    assert!(
        events_of(&log_a, u64::MAX) != events_of(&log_a, m.last_lsn()),
        "some events are only in the active segment"
    );
    let expected = events_of(&log_a, u64::MAX);

    let b = seglog_tier::restore(store.clone(), prefix.clone(), root.join("b"), options())
        .await
        .unwrap();
    assert!(b.report.active_bytes > 0, "{:?}", b.report);
    assert_eq!(
        events_of(&b.log, u64::MAX),
        expected,
        "every event, chunks included"
    );
    let folder = seglog_tier::chunk_folder(&prefix, &active);
    let closed = keys(store.as_ref(), &folder).await;
    write_events(&log_a, 130, 160).await;
    assert!(a.ship(&log_a).await.unwrap_err().is_fenced());
    assert!(log_a.append("exec-0", "tenant-a", b"late").await.is_err());
    assert_eq!(
        keys(store.as_ref(), &folder).await,
        closed,
        "no chunk after the marker"
    );
}

/// `Durability::Remote` over any store: node A appends through `RemoteDurable` (across
/// seals), and is lost right after its last acknowledgement with no further round; node B
/// restores every acknowledged event with its sequence and bytes; A's next append is
/// fenced (its round's manifest check or chunk collides with B's claim), its log poisoned.
pub async fn scenario_remote_durability(store: Arc<dyn ObjectStore>, prefix: Path, root: &FsPath) {
    let log_a = seglog::Log::open(root.join("a"), options()).await.unwrap();
    let tier = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    let remote = seglog_tier::RemoteDurable::spawn(tier, log_a.clone());
    let mut acked = Events::new();
    for i in 0..90 {
        let exec = format!("exec-{}", i % EXECUTIONS);
        let payload = payload_of(i);
        let seq = remote.append(&exec, "tenant-a", &payload).await.unwrap();
        acked.entry(exec).or_default().push((seq, payload));
    }
    assert!(log_a.segments().iter().filter(|s| s.sealed).count() >= 1);
    let b = seglog_tier::restore(store.clone(), prefix.clone(), root.join("b"), options())
        .await
        .unwrap();
    assert_eq!(
        events_of(&b.log, u64::MAX),
        acked,
        "every acknowledged event, nothing else"
    );
    let err = remote
        .append("exec-0", "tenant-a", b"after the claim")
        .await
        .unwrap_err();
    assert!(err.is_fenced(), "{err}");
    assert!(log_a.is_poisoned());
    assert!(remote.append("exec-0", "tenant-a", b"later").await.is_err());
    remote.stop().await.unwrap();
}

/// The ids of the manifests under `prefix`, ascending.
pub async fn manifest_ids(store: &dyn ObjectStore, prefix: &Path) -> Vec<u64> {
    let dir = prefix.clone().join("manifest");
    let mut ids: Vec<u64> = keys(store, &dir)
        .await
        .iter()
        .filter_map(|k| k.rsplit('/').next()?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

/// One sealed segment more, shipped: a new manifest.
pub async fn ship_a_round(log: &seglog::Log, tier: &Tier, from: usize) {
    write_events(log, from, from + 20).await;
    log.roll().await.unwrap();
    let report = tier.ship(log).await.unwrap();
    assert!(report.committed_manifest.is_some(), "{report:?}");
}

/// Manifests do not accumulate: an orphan collection deletes the collector's own manifests
/// between its claim's and its newest, and keeps every manifest a stale writer may still
/// touch (the claims and each writer's last), so a zombie of the previous owner is still
/// fenced, deletes nothing and writes no manifest; a restore after it all has every shipped
/// event.
pub async fn scenario_manifest_pruning(store: Arc<dyn ObjectStore>, prefix: Path, root: &FsPath) {
    let log_a = seglog::Log::open(root.join("a"), options()).await.unwrap();
    let a = Tier::claim(store.clone(), prefix.clone()).await.unwrap();
    for round in 0..5 {
        ship_a_round(&log_a, &a, round * 20).await;
    }
    assert_eq!(
        manifest_ids(store.as_ref(), &prefix).await,
        (1..=6).collect::<Vec<_>>()
    );
    // Within the grace period nothing is pruned.
    let young = a
        .collect_orphans(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(young.manifests_deleted.is_empty(), "{young:?}");
    let report = a.collect_orphans(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(report.manifests_deleted.len(), 4, "{report:?}");
    assert_eq!(manifest_ids(store.as_ref(), &prefix).await, vec![1, 6]);
    let newest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((newest.manifest_id, newest.writer_epoch), (6, a.epoch()));
    // The owner goes on after pruning: its next manifest is 7, and a second collection
    // prunes 6.
    ship_a_round(&log_a, &a, 100).await;
    a.collect_orphans(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(manifest_ids(store.as_ref(), &prefix).await, vec![1, 7]);

    // B takes over (claim 8), ships three rounds (9, 10, 11) and collects: 9 and 10 go.
    let b = seglog_tier::restore(store.clone(), prefix.clone(), root.join("b"), options())
        .await
        .unwrap();
    for round in 0..3 {
        ship_a_round(&b.log, &b.tier, 1000 + round * 20).await;
    }
    let report = b
        .tier
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.manifests_deleted.len(), 2, "{report:?}");
    assert_eq!(
        manifest_ids(store.as_ref(), &prefix).await,
        vec![1, 7, 8, 11]
    );
    let before = keys(store.as_ref(), &prefix).await;

    // A, a zombie: its next manifest id is B's claim, which is still there.
    write_events(&log_a, 200, 220).await;
    log_a.roll().await.unwrap();
    assert!(a.ship(&log_a).await.unwrap_err().is_fenced());
    assert!(a
        .collect_orphans(std::time::Duration::ZERO)
        .await
        .unwrap_err()
        .is_fenced());
    let after = keys(store.as_ref(), &prefix).await;
    for key in &before {
        assert!(after.contains(key), "the zombie deleted {key}");
    }
    assert_eq!(
        manifest_ids(store.as_ref(), &prefix).await,
        vec![1, 7, 8, 11]
    );
    assert_newest_manifest_complete(store.as_ref(), &prefix).await;
    assert_a_restore_holds_what_was_shipped(&store, &prefix, &b.log, &b.tier, &root.join("c"))
        .await;
}

/// A restore into `dir` holds exactly the events of `log` that `tier`'s newest manifest
/// covers (and claims the log from `tier`).
pub async fn assert_a_restore_holds_what_was_shipped(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    log: &seglog::Log,
    tier: &Tier,
    dir: &FsPath,
) {
    let m = tier.manifest().await;
    let expected = events_of(log, m.last_lsn());
    let restored = seglog_tier::restore(store.clone(), prefix.clone(), dir, options())
        .await
        .unwrap();
    assert_eq!(events_of(&restored.log, u64::MAX), expected);
}

/// A restore that fetches one object at a time, in order (no fetching ahead): for the tests
/// that pause a restore at one object's GET and rely on every object before it having been
/// fetched and written by then.
pub async fn restore_in_order(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    dir: impl Into<std::path::PathBuf>,
    options: seglog::Options,
) -> seglog_tier::Result<seglog_tier::Restored> {
    seglog_tier::restore_with(
        store,
        prefix,
        dir,
        options,
        seglog_tier::RestoreOptions::default()
            .fetch_ahead(seglog_tier::FetchAheadLimits::ONE_AT_A_TIME),
    )
    .await
}
