//! Node loss and zombies with real processes, on a file:// bucket shared by them
//! (`LocalFileSystem`, whose create-only PUTs are atomic across processes).
//!
//! The child (this test binary run again with `SEGLOG_TIER_CHILD` set) opens a log, claims
//! it, ships it every 20 ms in the background, appends events and prints `ack <i>` once each
//! is durable. Then:
//! - **failover**: the parent SIGKILLs it mid-load and deletes its directory, restores the
//!   log elsewhere, and checks the restored events are exactly those of the shipped range
//!   (read from the killed node's disk before deleting it), each an acknowledged one with
//!   its bytes, and that every acknowledged event missing is in the unshipped tail;
//! - **zombie**: the parent SIGSTOPs it, restores (claims) the log, ships from the new node,
//!   resumes the child: the child's shipper is fenced, its next append fails, it exits
//!   saying so, and every object of the new owner is still there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "SEGLOG_TIER_CHILD";

fn bucket_store(bucket: &std::path::Path) -> (Arc<dyn ObjectStore>, ObjectPath) {
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
    (
        store,
        ObjectPath::from_absolute_path(bucket.join("log")).unwrap(),
    )
}

/// The child's role; a no-op when run as an ordinary test.
#[test]
fn child_role() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, bucket) = spec.split_once('|').unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (store, prefix) = bucket_store(std::path::Path::new(bucket));
        let log = seglog::Log::open(dir, support::options()).await.unwrap();
        let tier = Arc::new(seglog_tier::Tier::claim(store, prefix).await.unwrap());
        let shipper = seglog_tier::Shipper::spawn(tier, log.clone(), Duration::from_millis(20));
        println!("claimed");
        for i in 0..usize::MAX {
            let exec = format!("exec-{}", i % support::EXECUTIONS);
            if let Err(e) = log.append(&exec, "tenant-a", &support::payload_of(i)).await {
                println!("append failed: {e}");
                let stopped = shipper.stop().await;
                println!(
                    "shipper: {}",
                    stopped.map_or_else(|e| e.to_string(), |()| "ok".into())
                );
                std::process::exit(42);
            }
            println!("ack {i}");
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
}

fn spawn_child(dir: &std::path::Path, bucket: &std::path::Path) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}|{}", dir.display(), bucket.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Reads the child's lines until `acks` acknowledgements (returns them).
fn read_acks(out: &mut BufReader<ChildStdout>, acks: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut line = String::new();
    while seen.len() < acks {
        assert!(
            Instant::now() < deadline,
            "the child acknowledged {} events in 60 s",
            seen.len()
        );
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("the child ended early");
        }
        if let Some(i) = line.trim().strip_prefix("ack ") {
            seen.push(i.parse().unwrap());
        }
    }
    seen
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_sigkill_restores_acknowledged_events_up_to_the_shipped_range() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, bucket) = (tmp.path().join("a"), tmp.path().join("bucket"));
    std::fs::create_dir_all(&bucket).unwrap();
    let (store, prefix) = bucket_store(&bucket);
    let (mut child, mut out) = spawn_child(&dir_a, &bucket);
    let mut acked = read_acks(&mut out, 300);
    // Mid-load: once something has shipped, and a little more was acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .is_none_or(|m| m.segments.is_empty())
    {
        assert!(Instant::now() < deadline, "nothing shipped in 60 s");
        acked.extend(read_acks(&mut out, 10));
    }
    acked.extend(read_acks(&mut out, 100));
    child.kill().unwrap();
    child.wait().unwrap();
    // Acks printed before the kill count too.
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    acked.extend(
        rest.lines()
            .filter_map(|l| l.strip_prefix("ack ")?.parse::<usize>().ok()),
    );

    // The node's disk, as the kill left it (read before it is lost, to name the window).
    let shipped = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    let local = seglog::Log::open(&dir_a, support::options()).await.unwrap();
    let in_shipped_range = support::events_of(&local, shipped.last_lsn());
    let everything = support::events_of(&local, u64::MAX);
    drop(local);
    std::fs::remove_dir_all(&dir_a).unwrap();

    let b = seglog_tier::restore(store, prefix, tmp.path().join("b"), support::options())
        .await
        .unwrap();
    let restored = support::events_of(&b.log, u64::MAX);
    assert_eq!(
        restored, in_shipped_range,
        "every event of the shipped range, same sequence and bytes"
    );
    let restored_count: usize = restored.values().map(Vec::len).sum();
    assert!(restored_count > 0, "something was shipped");
    for (exec, events) in &restored {
        let e: usize = exec.strip_prefix("exec-").unwrap().parse().unwrap();
        for (k, (seq, payload)) in events.iter().enumerate() {
            // Appends were sequential: execution e's event with seq s is event number
            // (s - 1) * EXECUTIONS + e.
            let i = (*seq as usize - 1) * support::EXECUTIONS + e;
            assert_eq!(*seq, k as u64 + 1, "{exec}: dense sequence");
            assert!(
                acked.contains(&i),
                "{exec} seq {seq}: restored but never acknowledged"
            );
            assert_eq!(
                payload,
                &support::payload_of(i),
                "{exec} seq {seq}: same bytes"
            );
        }
    }
    // What is missing is exactly the unshipped tail (the documented window): acknowledged
    // events past the newest manifest's last LSN, each execution's restored events a prefix.
    for i in &acked {
        let exec = format!("exec-{}", i % support::EXECUTIONS);
        let seq = (i / support::EXECUTIONS) as u64 + 1;
        let was_local = everything
            .get(&exec)
            .is_some_and(|v| v.iter().any(|(s, _)| *s == seq));
        assert!(
            was_local,
            "acknowledged event {i} survived the kill on the node's disk"
        );
        let restored_here = restored
            .get(&exec)
            .is_some_and(|v| v.iter().any(|(s, _)| *s == seq));
        let in_range = in_shipped_range
            .get(&exec)
            .is_some_and(|v| v.iter().any(|(s, _)| *s == seq));
        assert_eq!(
            restored_here, in_range,
            "event {i}: restored exactly when in the shipped range"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigstopped_owner_resumes_fenced_its_appends_fail_and_it_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, bucket) = (tmp.path().join("a"), tmp.path().join("bucket"));
    std::fs::create_dir_all(&bucket).unwrap();
    let (mut child, mut out) = spawn_child(&dir_a, &bucket);
    read_acks(&mut out, 400);
    signal(&child, "-STOP");

    let (store, prefix) = bucket_store(&bucket);
    let b = seglog_tier::restore(
        store.clone(),
        prefix.clone(),
        tmp.path().join("b"),
        support::options(),
    )
    .await
    .unwrap();
    support::write_events(&b.log, 10_000, 10_100).await;
    b.log.roll().await.unwrap();
    b.tier.ship(&b.log).await.unwrap();
    let named: Vec<String> = b
        .tier
        .manifest()
        .await
        .named_keys()
        .map(str::to_string)
        .collect();

    signal(&child, "-CONT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "the zombie stopped on a failed append: {rest}"
    );
    assert!(rest.contains("append failed"), "{rest}");
    assert!(
        rest.contains("fenced"),
        "the zombie's shipper reports it was fenced: {rest}"
    );
    for key in &named {
        assert!(
            object_store::ObjectStoreExt::head(store.as_ref(), &ObjectPath::from(key.as_str()))
                .await
                .is_ok(),
            "the zombie deleted {key}"
        );
    }
    let newest = seglog_tier::latest_manifest(store.as_ref(), &prefix)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        newest.writer_epoch,
        b.tier.epoch(),
        "the zombie wrote no manifest"
    );
}
