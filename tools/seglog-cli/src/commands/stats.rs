//! `seglog stats`: what a log holds.

use crate::logdir::{
    checkpoint_state, for_each_segment, offloaded_segments, CheckpointState, Health,
};
use crate::output::{escape_path, json_line, JsonRecord};
use anyhow::Result;
use indicatif::HumanBytes;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Options of `seglog stats`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exits 1 when the log has a torn tail, 2 when it is damaged (see seglog --help).\n\nExample:\n  seglog stats ./log --json | jq .events"
)]
pub struct StatsArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// One JSON line (with "schema" and "kind") instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One segment's figures.
#[derive(Serialize)]
struct SegmentStats {
    segment: Option<u64>,
    file: String,
    bytes: u64,
    records: u64,
    events: u64,
    /// `ok`, `none`, `stale`, `damaged`, `active` for the last segment, `offloaded` for a
    /// segment in object storage (its figures from its checkpoint), `offloaded_unusable`
    /// when that checkpoint is missing or damaged (its figures then count nothing).
    checkpoint: &'static str,
}

/// Checkpoint coverage of the sealed segments.
#[derive(Serialize)]
struct CheckpointStats {
    sealed_segments: u64,
    with_valid_checkpoint: u64,
}

/// Where the last segment's torn tail starts.
#[derive(Serialize)]
struct TornTail {
    segment: u64,
    offset: u64,
    bytes: u64,
}

/// The whole log's figures.
#[derive(Serialize)]
struct StatsLine {
    /// The log's identity (docs/format.md §9): 32 hex digits; `null` when the log has none
    /// yet (the next writer's open makes one) or its `LOG_ID` is damaged (`health`
    /// `corruption`: a writer refuses to open).
    log_id: Option<String>,
    /// Local and offloaded.
    segments: usize,
    /// Of those, offloaded to object storage (their records counted from their checkpoints).
    offloaded_segments: usize,
    bytes: u64,
    records: u64,
    events: u64,
    executions: usize,
    tenants: usize,
    checkpoints: CheckpointStats,
    torn_tail: Option<TornTail>,
    /// `clean`, `torn_tail` or `corruption`.
    health: &'static str,
    per_segment: Vec<SegmentStats>,
}

impl JsonRecord for StatsLine {
    const KIND: &'static str = "stats";
}

pub fn run(args: &StatsArgs) -> Result<i32> {
    let (mut records, mut events, mut bytes, mut sealed, mut checkpointed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut executions: HashSet<Vec<u8>> = HashSet::new();
    let mut tenants: HashSet<Vec<u8>> = HashSet::new();
    let mut segments = Vec::new();
    let mut worst = Health::Clean;
    let mut torn = None;
    // Offloaded segments come first in log order; their figures are their checkpoints'.
    let offloaded = offloaded_segments(&args.dir)?;
    for o in &offloaded {
        let (seg_records, seg_events, checkpoint) = match &o.checkpoint {
            Some(cp) => {
                for r in &cp.records {
                    let name = |i: u32| cp.strings.get(i as usize).map(|s| s.as_bytes().to_vec());
                    executions.extend(name(r.execution));
                    tenants.extend(name(r.tenant));
                }
                let events: u64 = cp.records.iter().map(|r| u64::from(r.event_count)).sum();
                (cp.records.len() as u64, events, "offloaded")
            }
            None => {
                worst = worst.max(Health::Corrupt);
                (0, 0, "offloaded_unusable")
            }
        };
        records += seg_records;
        events += seg_events;
        bytes += o.segment.data_end;
        segments.push(SegmentStats {
            segment: Some(o.segment.number),
            file: escape_path(Path::new(&seglog_segment::format::segment_file_name(
                o.segment.first_lsn,
            ))),
            bytes: o.segment.data_end,
            records: seg_records,
            events: seg_events,
            checkpoint,
        });
    }
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
            torn = Some(TornTail {
                segment: seg.segment_number().unwrap_or(0),
                offset: d.offset,
                bytes: seg.bytes.len() as u64 - d.offset,
            });
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
                CheckpointState::Damaged(_) => {
                    worst = worst.max(Health::Corrupt);
                    "damaged"
                }
            }
        };
        records += seg.analysis.record_offsets.len() as u64;
        events += seg_events;
        bytes += seg.analysis.data_end;
        segments.push(SegmentStats {
            segment: seg.segment_number(),
            file: seg
                .path
                .file_name()
                .map(|n| escape_path(Path::new(n)))
                .unwrap_or_default(),
            bytes: seg.analysis.data_end,
            records: seg.analysis.record_offsets.len() as u64,
            events: seg_events,
            checkpoint,
        });
        Ok(())
    })?;
    let log_id = match seglog_segment::log_id::read(&seglog_segment::io::StdFs, &args.dir) {
        Ok(id) => Ok(id.map(|id| id.to_string())),
        Err(e) => {
            worst = worst.max(Health::Corrupt);
            Err(e.to_string())
        }
    };
    let summary = StatsLine {
        log_id: log_id.clone().ok().flatten(),
        segments: segments.len(),
        offloaded_segments: offloaded.len(),
        bytes,
        records,
        events,
        executions: executions.len(),
        tenants: tenants.len(),
        checkpoints: CheckpointStats {
            sealed_segments: sealed,
            with_valid_checkpoint: checkpointed,
        },
        torn_tail: torn,
        health: match worst {
            Health::Clean => "clean",
            Health::TornTail => "torn_tail",
            Health::Corrupt => "corruption",
        },
        per_segment: segments,
    };
    if args.json {
        crate::outln!("{}", json_line(&summary)?)?;
    } else {
        match &log_id {
            Ok(Some(id)) => crate::outln!("log id      {id}")?,
            Ok(None) => crate::outln!("log id      none yet (the next writer's open makes one)")?,
            Err(e) => crate::outln!("log id      damaged: {e}")?,
        }
        crate::outln!("segments    {}", summary.segments)?;
        if summary.offloaded_segments > 0 {
            crate::outln!(
                "offloaded   {} of them, in object storage (figures from their checkpoints)",
                summary.offloaded_segments
            )?;
        }
        crate::outln!("bytes       {} ({bytes} bytes)", HumanBytes(bytes))?;
        crate::outln!("records     {records}")?;
        crate::outln!("events      {events}")?;
        crate::outln!("executions  {}", summary.executions)?;
        crate::outln!("tenants     {}", summary.tenants)?;
        crate::outln!("checkpoints {checkpointed} of {sealed} sealed segments")?;
        match &summary.torn_tail {
            Some(t) => crate::outln!(
                "torn tail   segment {} at offset {} ({} bytes after it)",
                t.segment,
                t.offset,
                t.bytes
            )?,
            None => crate::outln!("torn tail   none")?,
        }
        crate::outln!(
            "{:>8} {:>12} {:>9} {:>9}  checkpoint",
            "segment",
            "bytes",
            "records",
            "events"
        )?;
        for s in &summary.per_segment {
            crate::outln!(
                "{:>8} {:>12} {:>9} {:>9}  {}",
                s.segment.map_or_else(|| "?".to_string(), |n| n.to_string()),
                s.bytes,
                s.records,
                s.events,
                s.checkpoint
            )?;
        }
    }
    match worst {
        Health::Corrupt => {
            eprintln!("seglog: the log is damaged; run `seglog verify` for details")
        }
        Health::TornTail => eprintln!(
            "seglog: the last segment has a torn tail (unacknowledged bytes; the next open cuts them)"
        ),
        Health::Clean => {}
    }
    Ok(crate::exit::combine(worst, true))
}
