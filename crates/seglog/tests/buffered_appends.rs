//! Buffered appends and `Log::sync`: invisible until synced, durable once `sync` returns,
//! and a power cut at any point keeps, per execution, a dense prefix that holds every event a
//! returned `sync` (or durable append) covered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use futures_util::StreamExt;
use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, Error, Log, Options};
use std::collections::BTreeMap;

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(2 << 20)
        .max_record_size_bytes(Some(128 << 10))
        .checkpoints(CheckpointMode::Inline)
}

#[test]
fn buffered_appends_are_invisible_until_sync_and_numbered_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    assert_eq!(log.append_blocking("e", "t", b"durable").unwrap(), 1);
    for i in 0..50u64 {
        let first = log
            .append_batch_buffered("e", "t", &[format!("b{i}").as_bytes(), b"x"])
            .unwrap();
        assert_eq!(first, 2 + 2 * i, "buffered batches are numbered densely");
    }
    assert_eq!(log.read("e").unwrap().len(), 1, "unsynced events readable");
    assert_eq!(log.latest_seq("e").unwrap(), Some(1));
    // Conditional appends see the buffered events as the execution's tail.
    assert!(matches!(
        log.append_encoded_buffered("e", "t", Some(1), 0, &[b"stale"]),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        log.append_encoded_buffered("e", "t", Some(101), 0, &[b"next"])
            .unwrap(),
        102
    );
    assert_eq!(log.stats().buffered_appends, 51);

    log.sync_blocking().unwrap();
    let events = log.read("e").unwrap();
    assert_eq!(events.len(), 102);
    assert_eq!(&events[1].payload[..], b"b0");
    assert_eq!(&events[101].payload[..], b"next");
    assert_eq!(log.latest_seq("e").unwrap(), Some(102));
    log.close().unwrap();
    assert!(matches!(log.sync_blocking(), Err(Error::Closed)));
}

#[test]
fn close_makes_buffered_appends_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    for i in 0..20u64 {
        log.append_batch_buffered("e", "t", &[i.to_le_bytes()])
            .unwrap();
    }
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), opts()).unwrap();
    assert_eq!(log.read("e").unwrap().len(), 20);
}

#[tokio::test]
async fn a_subscriber_sees_buffered_events_once_synced() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).await.unwrap();
    let mut events = Box::pin(log.subscribe("e", 0));
    for i in 0..5u64 {
        log.append_batch_buffered("e", "t", &[i.to_le_bytes()])
            .unwrap();
    }
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(50), events.next()).await;
    assert!(nothing.is_err(), "a subscriber saw an unsynced event");
    log.sync().await.unwrap();
    for seq in 1..=5 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
            .await
            .expect("a synced event never reached the subscriber")
            .unwrap()
            .unwrap();
        assert_eq!(event.seq, seq);
    }
}

/// Per execution: the payloads submitted in order, and how many a returned `sync` covered.
type Outcome = BTreeMap<String, (Vec<Vec<u8>>, usize)>;

/// A bulk import of big batches over three executions (the queue is written out by the
/// appender several times), with a `sync` every 40 batches.
fn import(fs: &SimFs) -> Outcome {
    let mut out = Outcome::new();
    let Ok(log) = Log::open_with_fs(fs.clone(), "/log", opts()) else {
        return out;
    };
    for i in 0..120u64 {
        let exec = format!("e{}", i % 3);
        let payloads: Vec<Vec<u8>> = (0..4)
            .map(|k| {
                let mut p = format!("{i}/{k}:").into_bytes();
                p.resize(9000, b'a' + (i % 26) as u8);
                p
            })
            .collect();
        out.entry(exec.clone())
            .or_default()
            .0
            .extend(payloads.iter().cloned());
        if log.append_batch_buffered(&exec, "t", &payloads).is_err() {
            return out;
        }
        if i % 40 == 39 {
            if log.sync_blocking().is_err() {
                return out;
            }
            for entry in out.values_mut() {
                entry.1 = entry.0.len();
            }
        }
    }
    out
}

#[test]
fn a_power_cut_anywhere_in_a_buffered_import_keeps_every_synced_event() {
    let total_ops = {
        let fs = SimFs::new();
        let out = import(&fs);
        assert!(out.values().all(|(events, synced)| events.len() == *synced));
        fs.mutating_ops()
    };
    for n in 1..=total_ops {
        let fs = SimFs::new();
        fs.power_off_after(n);
        let outcome = import(&fs);
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Torn { seed: n },
            CrashMode::Torn { seed: n * 7 + 1 },
        ] {
            let what = format!("power off after op {n}, {mode:?}");
            let log = Log::open_with_fs(fs.fork().crash(mode), "/log", opts())
                .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
            for (exec, (submitted, synced)) in &outcome {
                let got: Vec<Vec<u8>> = log
                    .read(exec)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.payload.to_vec())
                    .collect();
                assert!(
                    got.len() >= *synced,
                    "{what}: {exec} lost synced events ({} of {synced})",
                    got.len()
                );
                assert_eq!(got[..], submitted[..got.len()], "{what}: {exec} differs");
            }
        }
    }
}
