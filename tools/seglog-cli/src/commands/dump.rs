//! `seglog dump`: one line per record.

use crate::logdir::{for_each_segment, offloaded_segments, Health};
use crate::output::{
    column, date_time, escape, escape_path, fit, json_line, json_value, payload_json, timestamp,
    JsonRecord, Paint, COLUMNS,
};
use anyhow::Result;
use seglog_segment::format::SegmentHeader;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `seglog dump`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "--from-lsn and --to-lsn are inclusive, like every --from-* of seglog.\n\nExamples:\n  seglog dump ./log\n  seglog dump ./log --execution exec_42 --decode\n  seglog dump ./log --from-lsn 100 --to-lsn 199 --json\n  seglog dump ./log/00000000000000000001.seg --header --json"
)]
pub struct DumpArgs {
    /// A log directory, or one segment file.
    pub path: PathBuf,
    #[command(flatten)]
    pub show: DumpOptions,
}

/// What `seglog dump` (and `seglog remote dump`) shows.
#[derive(clap::Args, Debug, Default)]
pub struct DumpOptions {
    /// JSON lines instead of text (each with "schema" and "kind").
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
    /// Only records at this LSN or later (inclusive).
    #[arg(long, value_name = "LSN")]
    pub from_lsn: Option<u64>,
    /// Only records at this LSN or earlier (inclusive).
    #[arg(long, value_name = "LSN")]
    pub to_lsn: Option<u64>,
    /// Print each segment's header.
    #[arg(long)]
    pub header: bool,
}

/// A segment's header (`--header`).
#[derive(Serialize)]
struct SegmentHeaderLine {
    file: String,
    segment: u64,
    first_lsn: u64,
    created: String,
    format_version: u16,
    bytes: u64,
}

impl JsonRecord for SegmentHeaderLine {
    const KIND: &'static str = "segment_header";
}

/// One record (without its payloads unless `--decode`).
#[derive(Serialize)]
struct RecordLine {
    segment: u64,
    offset: u64,
    length: u64,
    lsn: u64,
    execution: String,
    tenant: String,
    first_seq: u64,
    last_seq: u64,
    timestamp: String,
    encoding: u8,
    payload_bytes: u64,
    checksum: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<serde_json::Value>>,
}

impl JsonRecord for RecordLine {
    const KIND: &'static str = "record";
}

/// A segment offloaded to object storage: its records are not in the directory.
#[derive(Serialize)]
struct OffloadedLine {
    segment: u64,
    first_lsn: u64,
    last_lsn: u64,
    bytes: u64,
    /// From its checkpoint; `None` when that is missing or damaged.
    records: Option<usize>,
    /// Where its bytes are (the object key).
    location: String,
}

impl JsonRecord for OffloadedLine {
    const KIND: &'static str = "offloaded_segment";
}

/// Where a segment stops being readable.
#[derive(Serialize)]
struct DamageLine {
    file: String,
    /// `None` when the header is unreadable.
    segment: Option<u64>,
    offset: u64,
    /// `torn_tail` or `corruption`.
    status: &'static str,
    reason: String,
}

impl JsonRecord for DamageLine {
    const KIND: &'static str = "damage";
}

pub fn run(args: &DumpArgs) -> Result<i32> {
    dump(&args.path, &args.show)
}

/// Dumps the log directory or segment file at `path`.
///
/// # Errors
/// A path that is not a log or segment; I/O and write errors.
pub fn dump(path: &Path, args: &DumpOptions) -> Result<i32> {
    let paint = Paint::detect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut worst = Health::Clean;
    let mut first_damage: Option<String> = None;
    if !args.json {
        writeln!(
            out,
            "{}",
            paint.dim(&format!(
                "{:>3} {:>10} {:>6} {:>8} {} {} {:>9} {:<23} {:>8}",
                "seg",
                "offset",
                "len",
                "lsn",
                column("execution", 15),
                column("tenant", 10),
                "seq",
                "time (UTC)",
                "payload"
            ))
        )?;
    }
    // Offloaded segments come before every local one in log order. Their records are in
    // object storage, not here: each is named, so a dump never looks whole when it is not.
    let offloaded = offloaded_segments(path)?;
    for o in &offloaded {
        let s = &o.segment;
        if o.checkpoint.is_none() {
            // Its records are nowhere in the directory, and the log does not open.
            worst = worst.max(Health::Corrupt);
            first_damage.get_or_insert_with(|| {
                format!(
                    "offloaded segment {}: its checkpoint is missing or damaged",
                    s.number
                )
            });
        }
        let (from, to) = (args.from_lsn.unwrap_or(0), args.to_lsn.unwrap_or(u64::MAX));
        if s.last_lsn < from || s.first_lsn > to {
            continue;
        }
        let line = OffloadedLine {
            segment: s.number,
            first_lsn: s.first_lsn,
            last_lsn: s.last_lsn,
            bytes: s.data_end,
            records: o.checkpoint.as_ref().map(|c| c.records.len()),
            location: crate::output::escape_str(&s.location),
        };
        if args.json {
            writeln!(out, "{}", json_line(&line)?)?;
        } else {
            writeln!(
                out,
                "{}",
                paint.dim(&format!(
                    "== offloaded segment {} (LSNs {}..={}, {} records): in object storage at {}; its records are not in this directory",
                    line.segment,
                    line.first_lsn,
                    line.last_lsn,
                    line.records.map_or_else(|| "?".to_string(), |n| n.to_string()),
                    line.location
                ))
            )?;
        }
    }
    if !offloaded.is_empty() {
        eprintln!(
            "seglog: {} segments of this log are offloaded to object storage; their records are not shown (seglog remote dump <URL> reads them)",
            offloaded.len()
        );
    }
    for_each_segment(path, |seg| {
        let file = seg
            .path
            .file_name()
            .map(|n| escape_path(Path::new(n)))
            .unwrap_or_default();
        let number = seg.segment_number().unwrap_or(0);
        match &seg.analysis.header {
            Err(defect) => {
                worst = worst.max(seg.health());
                let (status, reason) = match seg.leftover {
                    Some(what) => ("leftover", format!("no record: {what}")),
                    None => ("corruption", format!("unreadable header: {defect}")),
                };
                first_damage.get_or_insert_with(|| format!("{file}: {reason}"));
                if args.json {
                    let line = DamageLine {
                        file,
                        segment: None,
                        offset: 0,
                        status,
                        reason,
                    };
                    writeln!(out, "{}", json_line(&line)?)?;
                } else if seg.leftover.is_some() {
                    writeln!(out, "{}", paint.warn(&format!("{file}: {reason}")))?;
                } else {
                    writeln!(out, "{}", paint.bad(&format!("{file}: {reason}")))?;
                }
                return Ok(());
            }
            Ok(h) if args.header => {
                if args.json {
                    let line = SegmentHeaderLine {
                        file: file.clone(),
                        segment: h.segment_number,
                        first_lsn: h.first_lsn,
                        created: timestamp(h.created_unix_nanos),
                        format_version: SegmentHeader::format_version_of(&seg.bytes)
                            .unwrap_or(seglog_segment::format::FORMAT_VERSION),
                        bytes: seg.bytes.len() as u64,
                    };
                    writeln!(out, "{}", json_line(&line)?)?;
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
            let events: Option<Vec<serde_json::Value>> = args
                .decode
                .then(|| r.events().map(|p| payload_json(r.encoding(), p)).collect());
            if args.json {
                let line = RecordLine {
                    segment: number,
                    offset,
                    length: r.len() as u64,
                    lsn: r.lsn(),
                    execution: escape(r.execution_id()),
                    tenant: escape(r.tenant_id()),
                    first_seq: r.first_seq(),
                    last_seq: r.last_seq(),
                    timestamp: timestamp(r.timestamp_unix_nanos()),
                    encoding: r.encoding(),
                    payload_bytes: r.payload_len() as u64,
                    checksum: "ok",
                    events,
                };
                writeln!(out, "{}", json_line(&line)?)?;
            } else {
                let line = format!(
                    "{number:>3} {offset:>10} {:>6} {:>8} {} {} {:>9} {} {:>7}B",
                    r.len(),
                    r.lsn(),
                    column(&escape(r.execution_id()), 15),
                    column(&escape(r.tenant_id()), 10),
                    fit(&format!("{}..{}", r.first_seq(), r.last_seq()), 9),
                    date_time(r.timestamp_unix_nanos()),
                    r.payload_len(),
                );
                writeln!(out, "{line}")?;
                for e in events.unwrap_or_default() {
                    writeln!(out, "    {}", fit(&json_value(&e), COLUMNS - 4))?;
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
                let line = DamageLine {
                    file,
                    segment: Some(number),
                    offset: d.offset,
                    status,
                    reason: d.defect.to_string(),
                };
                writeln!(out, "{}", json_line(&line)?)?;
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
    Ok(crate::exit::combine(worst, true))
}
