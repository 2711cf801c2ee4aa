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
    let mut options = Options::default();
    super::apply_engine_knobs!(super::EngineKnobs::from_env()?, options);
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
