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
    let (log, _) = SegmentLog::open(
        StdFs,
        dir.join("seglog"),
        SegmentOptions {
            overlap_min_records: super::overlap_override()?
                .unwrap_or(seglog_segment::DEFAULT_OVERLAP_MIN_RECORDS),
            ..SegmentOptions::default()
        },
        &mut (),
    )?;
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
