//! Issue 17's acceptance test 1 with `Durability::Remote` and a real SIGKILL: the loss
//! window is zero, so **every** acknowledged event survives the node.
//!
//! The child (this test binary run again with `SEGLOG_TIER_REMOTE_CHILD` set) opens a log,
//! claims it on a file:// bucket (`LocalFileSystem`, create-only PUTs atomic across
//! processes), and appends from one task per execution through `RemoteDurable`, printing
//! `ack <i>` once event `i` is acknowledged (in the bucket). The parent SIGKILLs it
//! mid-load, deletes its directory, restores the log as node B, and checks that every
//! acknowledged event is there with its sequence and bytes, and that every restored event
//! is one the child appended (dense sequences, the right bytes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "SEGLOG_TIER_REMOTE_CHILD";

fn bucket_store(bucket: &std::path::Path) -> (Arc<dyn ObjectStore>, ObjectPath) {
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
    (
        store,
        ObjectPath::from_absolute_path(bucket.join("log")).unwrap(),
    )
}

/// The child's role; a no-op when run as an ordinary test.
#[test]
fn remote_child_role() {
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
        let tier = seglog_tier::Tier::claim(store, prefix).await.unwrap();
        let remote = seglog_tier::RemoteDurable::spawn(tier, log);
        println!("claimed");
        let writers: Vec<_> = (0..support::EXECUTIONS)
            .map(|e| {
                let remote = remote.clone();
                tokio::spawn(async move {
                    let exec = format!("exec-{e}");
                    for k in 0.. {
                        let i = k * support::EXECUTIONS + e;
                        match remote
                            .append(&exec, "tenant-a", &support::payload_of(i))
                            .await
                        {
                            Ok(_) => println!("ack {i}"),
                            Err(err) => {
                                println!("append failed: {err}");
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        std::process::exit(42);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_remote_durability_loses_no_acknowledged_event() {
    // Kill points spread over the load (more with SEGLOG_REMOTE_KILL_CYCLES).
    let cycles: usize = std::env::var("SEGLOG_REMOTE_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for cycle in 0..cycles {
        kill_restore_check(250 + 150 * (cycle % 4)).await;
    }
}

/// One cycle: SIGKILL the child once it has acknowledged `kill_after` events.
async fn kill_restore_check(kill_after: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, bucket) = (tmp.path().join("a"), tmp.path().join("bucket"));
    std::fs::create_dir_all(&bucket).unwrap();
    let (store, prefix) = bucket_store(&bucket);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "remote_child_role",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}", dir_a.display(), bucket.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Mid-load: past a few seals of the 8 KiB segments.
    while acked.len() < kill_after {
        assert!(
            Instant::now() < deadline,
            "the child acknowledged {} events in 120 s",
            acked.len()
        );
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
        if let Some(i) = line.trim().strip_prefix("ack ") {
            acked.push(i.parse::<usize>().unwrap());
        }
        assert!(!line.starts_with("append failed"), "{line}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Acknowledgements printed before the kill count too.
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    acked.extend(
        rest.lines()
            .filter_map(|l| l.strip_prefix("ack ")?.parse::<usize>().ok()),
    );
    // Node A is lost with its disk.
    std::fs::remove_dir_all(&dir_a).unwrap();

    let b = seglog_tier::restore(store, prefix, tmp.path().join("b"), support::options())
        .await
        .unwrap();
    assert!(
        b.report.segments >= 2,
        "restored across seals: {:?}",
        b.report
    );
    let restored = support::events_of(&b.log, u64::MAX);
    for i in &acked {
        let (e, seq) = (
            i % support::EXECUTIONS,
            (i / support::EXECUTIONS) as u64 + 1,
        );
        let exec = format!("exec-{e}");
        let found = restored
            .get(&exec)
            .and_then(|v| v.iter().find(|(s, _)| *s == seq));
        assert_eq!(
            found.map(|(_, p)| p.as_slice()),
            Some(support::payload_of(*i).as_slice()),
            "acknowledged event {i} ({exec} seq {seq}) restored with its bytes"
        );
    }
    // Nothing else: each execution's events are dense from 1 and are the child's.
    for (exec, events) in &restored {
        let e: usize = exec.strip_prefix("exec-").unwrap().parse().unwrap();
        for (k, (seq, payload)) in events.iter().enumerate() {
            assert_eq!(*seq, k as u64 + 1, "{exec}: dense sequence");
            let i = k * support::EXECUTIONS + e;
            assert_eq!(payload, &support::payload_of(i), "{exec} seq {seq}");
        }
    }
    let restored_count: usize = restored.values().map(Vec::len).sum();
    assert!(restored_count >= acked.len());
}
