//! raft-engine (tikv's, from crates.io): one raft group per execution, each append a
//! `LogBatch` of entries written with `sync = true`. Entries are protobuf `BytesValue`s whose
//! first 8 bytes carry the entry index (raft-engine asks each entry for its index).

use super::Peer;
use anyhow::Result;
use protobuf::well_known_types::BytesValue;
use raft_engine::{Config, Engine, LogBatch, MessageExt};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The entry type raft-engine stores for us.
#[derive(Clone)]
pub struct BenchEntries;

impl MessageExt for BenchEntries {
    type Entry = BytesValue;
    fn index(e: &BytesValue) -> u64 {
        e.value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }
}

pub struct RaftEnginePeer {
    pub engine: Engine,
    /// Next entry index per raft group (execution). A group's lock is held across its write,
    /// as a raft store serializes appends per region, so indexes reach the engine in order;
    /// different groups write concurrently and share raft-engine's group commit.
    groups: Mutex<HashMap<u64, Arc<Mutex<u64>>>>,
}

pub fn entry(index: u64, payload: &[u8]) -> BytesValue {
    let mut e = BytesValue::new();
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&index.to_le_bytes());
    v.extend_from_slice(payload);
    e.set_value(v);
    e
}

pub fn open_engine(dir: &Path) -> Result<Engine> {
    let cfg = Config {
        dir: dir.join("raft-engine").to_string_lossy().into_owned(),
        ..Config::default()
    };
    Ok(Engine::open(cfg)?)
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    Ok(Box::new(RaftEnginePeer {
        engine: open_engine(dir)?,
        groups: Mutex::new(HashMap::new()),
    }))
}

impl RaftEnginePeer {
    fn write(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        let group = execution + 1; // raft group ids start at 1
        let slot = {
            let mut groups = self
                .groups
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned mutex"))?;
            groups
                .entry(group)
                .or_insert_with(|| Arc::new(Mutex::new(1)))
                .clone()
        };
        let mut next = slot.lock().map_err(|_| anyhow::anyhow!("poisoned mutex"))?;
        let entries: Vec<BytesValue> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| entry(*next + i as u64, p))
            .collect();
        let mut batch = LogBatch::default();
        batch.add_entries::<BenchEntries>(group, &entries)?;
        self.engine.write(&mut batch, true)?;
        *next += payloads.len() as u64;
        Ok(())
    }
}

impl Peer for RaftEnginePeer {
    fn append(&self, execution: u64, payload: &[u8]) -> Result<()> {
        self.write(execution, &[payload])
    }

    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        self.write(execution, payloads)
    }
}
