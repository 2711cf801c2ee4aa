//! `seglog events`: one execution's events, decoded.

use crate::logdir::for_each_segment;
use crate::output::{escape_str, event_line};
use anyhow::Result;
use std::path::PathBuf;

/// Options of `seglog events`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  seglog events ./log exec_2abc --json")]
pub struct EventsArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// The execution id.
    pub execution: String,
    /// JSON lines (one per event, payload decoded) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &EventsArgs) -> Result<i32> {
    let mut found = 0u64;
    if !args.json {
        crate::outln!("{:>6}  {:<27}  event", "seq", "timestamp (UTC)")?;
    }
    for_each_segment(&args.dir, |seg| {
        for &off in &seg.analysis.record_offsets {
            let Some(r) = seg.analysis.record(&seg.bytes, off) else {
                continue;
            };
            if r.execution_id() != args.execution.as_bytes() {
                continue;
            }
            for (i, p) in r.events().enumerate() {
                // A sequence past u64::MAX is not a real event (a crafted record).
                let Some(seq) = r.first_seq().checked_add(i as u64) else {
                    break;
                };
                found += 1;
                crate::outln!(
                    "{}",
                    event_line(seq, r.timestamp_unix_nanos(), r.encoding(), p, args.json)
                )?;
            }
        }
        Ok(())
    })?;
    if found == 0 {
        eprintln!(
            "no events for execution \"{}\"",
            escape_str(&args.execution)
        );
    }
    Ok(0)
}
