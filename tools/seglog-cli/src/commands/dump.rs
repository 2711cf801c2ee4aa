//! `seglog dump`: one line per record.

use crate::logdir::{for_each_segment, Health};
use crate::output::{
    escape, escape_path, fit, json_line, payload_json, record_json, timestamp, Paint, COLUMNS,
};
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `seglog dump`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  seglog dump ./log\n  seglog dump ./log --execution exec_42 --decode\n  seglog dump ./log/00000000000000000001.seg --header --json"
)]
pub struct DumpArgs {
    /// A log directory, or one segment file.
    pub path: PathBuf,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Show payloads decoded from MessagePack as JSON.
    #[arg(long)]
    pub decode: bool,
    /// Only records of this execution.
    #[arg(long)]
    pub execution: Option<String>,
    /// Only records of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only records with LSN ≥ this.
    #[arg(long)]
    pub from_lsn: Option<u64>,
    /// Only records with LSN ≤ this.
    #[arg(long)]
    pub to_lsn: Option<u64>,
    /// Print each segment's header.
    #[arg(long)]
    pub header: bool,
}

pub fn run(args: &DumpArgs) -> Result<i32> {
    let paint = Paint::detect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut worst = Health::Clean;
    let mut first_damage: Option<String> = None;
    if !args.json {
        writeln!(
            out,
            "{}",
            paint.dim(&format!(
                "{:>3} {:>10} {:>6} {:>8} {:<6} {:<16} {:<10} {:>9} {:<12} {:>7} crc",
                "seg",
                "offset",
                "len",
                "lsn",
                "kind",
                "execution",
                "tenant",
                "seq",
                "time (UTC)",
                "payload"
            ))
        )?;
    }
    for_each_segment(&args.path, |seg| {
        let file = seg
            .path
            .file_name()
            .map(|n| escape_path(Path::new(n)))
            .unwrap_or_default();
        let number = seg.segment_number().unwrap_or(0);
        match &seg.analysis.header {
            Err(defect) => {
                worst = worst.max(Health::Corrupt);
                first_damage.get_or_insert_with(|| format!("{file}: unreadable header: {defect}"));
                if args.json {
                    writeln!(
                        out,
                        "{}",
                        json_line(
                            &serde_json::json!({"file": file, "damage": defect.to_string(), "status": "corruption"})
                        )
                    )?;
                } else {
                    writeln!(
                        out,
                        "{}",
                        paint.bad(&format!("{file}: unreadable header: {defect}"))
                    )?;
                }
                return Ok(());
            }
            Ok(h) if args.header => {
                if args.json {
                    writeln!(
                        out,
                        "{}",
                        json_line(
                            &serde_json::json!({"file": file, "segment": h.segment_number, "first_lsn": h.first_lsn,
                        "created": timestamp(h.created_unix_nanos), "format_version": seglog_segment::format::FORMAT_VERSION,
                        "bytes": seg.bytes.len()})
                        )
                    )?;
                } else {
                    writeln!(
                        out,
                        "{}",
                        paint.dim(&format!(
                            "== {file}: segment {} first LSN {} created {} ({} bytes)",
                            h.segment_number,
                            h.first_lsn,
                            timestamp(h.created_unix_nanos),
                            seg.bytes.len()
                        ))
                    )?;
                }
            }
            Ok(_) => {}
        }
        for &offset in &seg.analysis.record_offsets {
            let Some(r) = seg.analysis.record(&seg.bytes, offset) else {
                continue;
            };
            if args
                .execution
                .as_deref()
                .is_some_and(|e| e.as_bytes() != r.execution_id())
                || args
                    .tenant
                    .as_deref()
                    .is_some_and(|t| t.as_bytes() != r.tenant_id())
                || args.from_lsn.is_some_and(|l| r.lsn() < l)
                || args.to_lsn.is_some_and(|l| r.lsn() > l)
            {
                continue;
            }
            let events: Vec<serde_json::Value> = if args.decode {
                r.events().map(|p| payload_json(r.encoding(), p)).collect()
            } else {
                Vec::new()
            };
            if args.json {
                let mut m = record_json(number, offset, &r);
                if args.decode {
                    m.insert("events".into(), events.into());
                }
                writeln!(out, "{}", json_line(&serde_json::Value::Object(m)))?;
            } else {
                let line = format!(
                    "{number:>3} {offset:>10} {:>6} {:>8} {:<6} {:<16} {:<10} {:>9} {} {:>7}B {}",
                    r.len(),
                    r.lsn(),
                    "events",
                    fit(&escape(r.execution_id()), 16),
                    fit(&escape(r.tenant_id()), 10),
                    fit(&format!("{}..{}", r.first_seq(), r.last_seq()), 9),
                    &timestamp(r.timestamp_unix_nanos())[11..23],
                    r.payload_len(),
                    paint.good("ok"),
                );
                writeln!(out, "{line}")?;
                for e in events {
                    writeln!(out, "    {}", fit(&json_line(&e), COLUMNS - 4))?;
                }
            }
        }
        if let Some(d) = &seg.analysis.damage {
            let health = seg.health();
            worst = worst.max(health);
            let status = if health == Health::TornTail {
                "torn_tail"
            } else {
                "corruption"
            };
            first_damage.get_or_insert_with(|| {
                format!("{file}: {status} at offset {}: {}", d.offset, d.defect)
            });
            if args.json {
                writeln!(
                    out,
                    "{}",
                    json_line(
                        &serde_json::json!({"segment": number, "offset": d.offset, "damage": d.defect.to_string(), "status": status})
                    )
                )?;
            } else {
                let msg = format!("{number:>3} {:>10} {status}: {}", d.offset, d.defect);
                writeln!(
                    out,
                    "{}",
                    if health == Health::TornTail {
                        paint.warn(&msg)
                    } else {
                        paint.bad(&msg)
                    }
                )?;
            }
        }
        Ok(())
    })?;
    out.flush()?;
    if let Some(d) = first_damage {
        eprintln!("seglog: {d}");
    }
    Ok(worst.exit_code())
}
