//! seglog's segment writer on its own (no index): group commit + fdatasync per group.

use super::Peer;
use anyhow::Result;
use seglog_segment::format::EventBatch;
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::path::Path;

struct SegmentPeer {
    log: SegmentLog<StdFs>,
}

pub fn open(dir: &Path) -> Result<Box<dyn Peer>> {
    let knobs = super::EngineKnobs::from_env()?;
    let mut options = SegmentOptions::default();
    super::apply_engine_knobs!(knobs, options);
    if knobs.segment_size_bytes.is_some() {
        let fits = u32::try_from(options.segment_size_bytes.saturating_sub(64)).unwrap_or(u32::MAX);
        options.max_record_size_bytes = options.max_record_size_bytes.min(fits);
    }
    let (log, _) = SegmentLog::open(StdFs, dir.join("seglog"), options, &mut ())?;
    Ok(Box::new(SegmentPeer { log }))
}

impl Peer for SegmentPeer {
    fn append(&self, execution: u64, payload: &[u8]) -> Result<()> {
        self.append_batch(execution, &[payload])
    }

    fn append_batch(&self, execution: u64, payloads: &[&[u8]]) -> Result<()> {
        let id = format!("exec-{execution:06}");
        self.log.append(&EventBatch {
            encoding: 0,
            execution_id: id.as_bytes(),
            tenant_id: b"bench",
            first_seq: 0,
            timestamp_unix_nanos: 0,
            payloads,
        })?;
        Ok(())
    }
}
