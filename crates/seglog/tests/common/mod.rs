//! Helpers shared by the engine's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
