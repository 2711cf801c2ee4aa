//! `seglog stats`: what a log holds.

use crate::logdir::{checkpoint_state, for_each_segment, CheckpointState, Health};
use anyhow::Result;
use std::collections::HashSet;
use std::path::PathBuf;

/// Options of `seglog stats`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  seglog stats ./log --json | jq .events")]
pub struct StatsArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &StatsArgs) -> Result<i32> {
    let (mut records, mut events, mut bytes, mut sealed, mut checkpointed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut executions: HashSet<Vec<u8>> = HashSet::new();
    let mut tenants: HashSet<Vec<u8>> = HashSet::new();
    let mut segments = Vec::new();
    let mut worst = Health::Clean;
    let mut torn = None;
    for_each_segment(&args.dir, |seg| {
        worst = worst.max(seg.health());
        let mut seg_events = 0u64;
        for &off in &seg.analysis.record_offsets {
            if let Some(r) = seg.analysis.record(&seg.bytes, off) {
                seg_events += u64::from(r.event_count());
                executions.insert(r.execution_id().to_vec());
                tenants.insert(r.tenant_id().to_vec());
            }
        }
        if let (true, Some(d)) = (seg.health() == Health::TornTail, &seg.analysis.damage) {
            torn = Some((
                seg.segment_number().unwrap_or(0),
                d.offset,
                seg.bytes.len() as u64 - d.offset,
            ));
        }
        let checkpoint = if seg.is_last {
            "active"
        } else {
            sealed += 1;
            match checkpoint_state(&args.dir, seg) {
                CheckpointState::Valid(_) => {
                    checkpointed += 1;
                    "ok"
                }
                CheckpointState::Missing => "none",
                CheckpointState::Stale(_) => "stale",
                CheckpointState::Damaged(_) => "damaged",
            }
        };
        records += seg.analysis.record_offsets.len() as u64;
        events += seg_events;
        bytes += seg.analysis.data_end;
        segments.push(serde_json::json!({
            "segment": seg.segment_number(),
            "file": seg.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "bytes": seg.analysis.data_end,
            "records": seg.analysis.record_offsets.len(),
            "events": seg_events,
            "checkpoint": checkpoint,
        }));
        Ok(())
    })?;
    let summary = serde_json::json!({
        "segments": segments.len(), "bytes": bytes, "records": records, "events": events,
        "executions": executions.len(), "tenants": tenants.len(),
        "checkpoints": {"sealed_segments": sealed, "with_valid_checkpoint": checkpointed},
        "torn_tail": torn.map(|(s, o, b)| serde_json::json!({"segment": s, "offset": o, "bytes": b})),
        "per_segment": segments,
    });
    if args.json {
        crate::outln!("{}", crate::output::json_line(&summary))?;
    } else {
        crate::outln!("segments    {}", summary["segments"])?;
        crate::outln!("bytes       {bytes}")?;
        crate::outln!("records     {records}")?;
        crate::outln!("events      {events}")?;
        crate::outln!("executions  {}", executions.len())?;
        crate::outln!("tenants     {}", tenants.len())?;
        crate::outln!("checkpoints {checkpointed} of {sealed} sealed segments")?;
        match torn {
            Some((s, o, b)) => {
                crate::outln!("torn tail   segment {s} at offset {o} ({b} bytes after it)")?
            }
            None => crate::outln!("torn tail   none")?,
        }
        crate::outln!(
            "{:>8} {:>12} {:>9} {:>9}  checkpoint",
            "segment",
            "bytes",
            "records",
            "events"
        )?;
        for s in &segments {
            // Rendered to strings first: a JSON value's Display ignores width and alignment.
            crate::outln!(
                "{:>8} {:>12} {:>9} {:>9}  {}",
                s["segment"].to_string(),
                s["bytes"].to_string(),
                s["records"].to_string(),
                s["events"].to_string(),
                s["checkpoint"].as_str().unwrap_or("")
            )?;
        }
    }
    if worst == Health::Corrupt {
        eprintln!("seglog: the log is damaged; run `seglog verify` for details");
        return Ok(2);
    }
    Ok(0)
}
