//! `seglog events`: one execution's events, decoded.

use crate::logdir::for_each_segment;
use crate::output::{fit, payload_json, timestamp, COLUMNS};
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

/// A one-line summary of a decoded enact event.
pub fn summarize(v: &serde_json::Value) -> String {
    let kind = v.get("type").and_then(|t| t.as_str()).unwrap_or("?");
    let rest: Vec<String> = v
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "type")
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        if v.is_string() {
                            v.as_str().unwrap_or("").to_string()
                        } else {
                            v.to_string()
                        }
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{kind} {}", rest.join(" "))
}

/// Prints one event: a JSON line (payload decoded) or a table row fitted to the terminal.
pub fn print_event(seq: u64, timestamp_unix_nanos: i64, encoding: u8, payload: &[u8], json: bool) {
    let v = payload_json(encoding, payload);
    let at = timestamp(timestamp_unix_nanos);
    if json {
        println!(
            "{}",
            serde_json::json!({"seq": seq, "timestamp": at, "event": v})
        );
    } else {
        println!(
            "{}",
            fit(&format!("{seq:>6}  {at:<27}  {}", summarize(&v)), COLUMNS)
        );
    }
}

pub fn run(args: &EventsArgs) -> Result<i32> {
    let mut found = 0u64;
    if !args.json {
        println!("{:>6}  {:<27}  event", "seq", "timestamp (UTC)");
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
                let seq = r.first_seq() + i as u64;
                found += 1;
                print_event(seq, r.timestamp_unix_nanos(), r.encoding(), p, args.json);
            }
        }
        Ok(())
    })?;
    if found == 0 {
        eprintln!("no events for execution {:?}", args.execution);
    }
    Ok(0)
}
