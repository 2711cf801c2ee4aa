//! Helpers shared by the engine's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod offload;
pub mod sizes;

use seglog::io::FileSystem;
use seglog::{CheckpointMode, Log, Options, RecoveryMode};
use std::collections::BTreeMap;

/// Everything a reader can observe: per tenant, its executions newest first, each with its
/// tenant, events (seq, timestamp, payload).
pub type Dump = BTreeMap<String, Vec<(String, Option<String>, Vec<(u64, i64, Vec<u8>)>)>>;

pub fn dump<F: FileSystem>(log: &Log<F>, tenants: &[&str]) -> Dump {
    let mut out = Dump::new();
    for t in tenants {
        let execs = log.list_executions(t, usize::MAX, 0).unwrap();
        let rows = execs
            .into_iter()
            .map(|e| {
                let events = log
                    .read(&e)
                    .unwrap()
                    .into_iter()
                    .map(|ev| (ev.seq, ev.timestamp_unix_nanos, ev.payload.to_vec()))
                    .collect();
                let tenant = log.tenant_of(&e).unwrap();
                (e, tenant, events)
            })
            .collect();
        out.insert((*t).to_string(), rows);
    }
    out
}

/// Small segments (so a short test rolls over several times), checkpoints written inline.
pub fn small_inline_opts(recovery_mode: RecoveryMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
        .recovery_mode(recovery_mode)
}

/// Per execution, what a crash workload submitted (payloads in order) and how many of them
/// were acknowledged.
pub type Outcome = BTreeMap<String, (Vec<Vec<u8>>, usize)>;

/// Checks a recovered log's dump against a crash workload's outcome: every acknowledged
/// event is there, each execution dense from 1, with the submitted bytes, and nothing that
/// was never submitted.
pub fn check_acknowledged(outcome: &Outcome, dump: &Dump, what: &str) {
    let mut seen = BTreeMap::new();
    for rows in dump.values() {
        for (exec, _, events) in rows {
            seen.insert(exec.clone(), events.clone());
        }
    }
    for (exec, (submitted, acked)) in outcome {
        let got = seen.get(exec).cloned().unwrap_or_default();
        assert!(
            got.len() >= *acked,
            "{what}: {exec} lost acknowledged events ({} < {acked})",
            got.len()
        );
        assert!(
            got.len() <= submitted.len(),
            "{what}: {exec} has events never submitted"
        );
        for (i, (seq, _, payload)) in got.iter().enumerate() {
            assert_eq!(*seq, i as u64 + 1, "{what}: {exec} is not dense");
            assert_eq!(
                payload, &submitted[i],
                "{what}: {exec} #{seq} has other bytes"
            );
        }
    }
}
