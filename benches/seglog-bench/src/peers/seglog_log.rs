//! The engine users link: `seglog::Log` (index, sequence numbers, tenants) on top of the
//! segment writer, through its blocking API.

use super::Peer;
use anyhow::Result;
use seglog::{Log, Options};
use std::path::Path;

struct LogPeer {
    log: Log,
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    let knobs = super::EngineKnobs::from_env()?;
    let mut options = Options::default();
    if let Some(bytes) = knobs.segment_size_bytes {
        options.segment_size_bytes = bytes;
    }
    options.zero_ahead_bytes = knobs.zero_ahead_bytes.unwrap_or(options.zero_ahead_bytes);
    options.overlap_min_records = knobs
        .overlap_min_records
        .unwrap_or(options.overlap_min_records);
    options.prepare_next_segment = knobs
        .prepare_next_segment
        .unwrap_or(options.prepare_next_segment);
    options.preallocate = knobs.preallocate.unwrap_or(options.preallocate);
    let log = Log::open_blocking(dir.join("seglog"), options)?;
    Ok(Box::new(LogPeer { log }))
}

impl Peer for LogPeer {
    fn append(&self, execution: u64, payload: &[u8]) -> Result<()> {
        let id = format!("exec-{execution:06}");
        self.log.append_blocking(&id, "bench", payload)?;
        Ok(())
    }

    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        let id = format!("exec-{execution:06}");
        self.log.append_batch_blocking(&id, "bench", payloads)?;
        Ok(())
    }
}
