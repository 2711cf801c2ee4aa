//! `seglog verify`: check every record and checkpoint; exit 0 clean, 1 torn tail, 2 corruption.
//! The checks are the library's (`seglog::verify_dir`, the same as `Log::verify` inside a
//! running application): every record of every segment is read and checksummed (bit rot in a
//! sealed segment that a checkpoint covers is found here, not only when a reader trips over
//! it), each sealed segment's checkpoint is compared with its records entry by entry, and the
//! records are checked against each other as an index rebuilt from them would be. This module
//! only prints the report.

use crate::output::{escape_path, escape_str, json_line, JsonRecord, Paint};
use anyhow::{bail, Context, Result};
use seglog::{CheckpointCheck, Damage, Health, VerifiedSegment, VerifyReport};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `seglog verify`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Reads every record of every segment and compares each checkpoint with its segment's records.\n\nExit status: 0 clean; 1 torn tail only, or a file with no record (normal after a crash:\nopening the log cuts or removes it); 2 corruption (acknowledged data damaged, or a\ndamaged checkpoint or header).\nA damaged log can be salvaged with `seglog repair`.\n\nExamples:\n  seglog verify ./log && echo intact\n  seglog verify ./log --json | jq 'select(.kind == \"verdict\")'"
)]
pub struct VerifyArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// JSON lines, each with "schema" and "kind" (the README lists every kind).
    #[arg(long)]
    pub json: bool,
}

/// What is wrong with a segment's bytes.
#[derive(Serialize)]
pub struct DamageJson {
    /// `header`, `torn_tail` or `corruption`.
    status: &'static str,
    offset: u64,
    reason: String,
    /// The later record (offset, LSN) that proves acknowledged data was damaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    proven_by: Option<ProvenBy>,
}

#[derive(Serialize)]
pub struct ProvenBy {
    offset: u64,
    lsn: u64,
}

/// A sealed segment's checkpoint.
#[derive(Serialize)]
pub struct CheckpointJson {
    /// `ok`, `missing`, `stale`, `damaged`, or `not_applicable` (the last segment).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// One segment of the report.
#[derive(Serialize)]
pub struct VerifiedSegmentLine {
    file: String,
    segment: Option<u64>,
    first_lsn: Option<u64>,
    is_last: bool,
    records: u64,
    intact_bytes: u64,
    bytes: u64,
    damage: Option<DamageJson>,
    checkpoint: CheckpointJson,
}

impl JsonRecord for VerifiedSegmentLine {
    const KIND: &'static str = "verified_segment";
}

/// An offloaded segment (its file left the directory, its bytes are in object storage):
/// its stub and checkpoint, not its bytes. JSON kind `offloaded_segment`.
#[derive(Serialize)]
pub struct OffloadedSegmentLine {
    segment: u64,
    first_lsn: u64,
    /// Where its bytes are (the object key).
    location: String,
    bytes: u64,
    checkpoint: CheckpointJson,
}

impl JsonRecord for OffloadedSegmentLine {
    const KIND: &'static str = "offloaded_segment";
}

fn checkpoint_json(check: &CheckpointCheck) -> CheckpointJson {
    let (status, records, reason) = match check {
        CheckpointCheck::Valid { records } => ("ok", Some(*records), None),
        CheckpointCheck::Missing => ("missing", None, None),
        CheckpointCheck::Stale(r) => ("stale", None, Some(escape_str(r))),
        CheckpointCheck::Damaged(r) => ("damaged", None, Some(escape_str(r))),
        _ => ("not_applicable", None, None),
    };
    CheckpointJson {
        status,
        records,
        reason,
    }
}

/// Records that contradict each other.
#[derive(Serialize)]
pub struct IndexProblemLine {
    problem: String,
}

impl JsonRecord for IndexProblemLine {
    const KIND: &'static str = "index_problem";
}

/// The log's identity file (`LOG_ID`) is damaged.
#[derive(Serialize)]
pub struct IdentityProblemLine {
    problem: String,
}

impl JsonRecord for IdentityProblemLine {
    const KIND: &'static str = "identity_problem";
}

/// The outcome.
#[derive(Serialize)]
pub struct VerdictLine {
    /// `clean`, `torn_tail` or `corruption`.
    health: &'static str,
    segments: usize,
    records: u64,
    intact_bytes: u64,
    index_problems: usize,
    /// The log's identity (`LOG_ID`) is damaged (an `identity_problem` line says how).
    identity_problem: bool,
}

impl JsonRecord for VerdictLine {
    const KIND: &'static str = "verdict";
}

/// One line on stdout. The verdict is the exit status: it stands even if the reader of
/// stdout went away.
fn out(line: String) -> std::io::Result<()> {
    crate::output::ignore_broken_pipe(crate::outln!("{line}"))
}

pub fn exit_code(h: Health) -> i32 {
    match h {
        Health::Clean => crate::exit::OK,
        Health::TornTail => crate::exit::TORN_TAIL,
        _ => crate::exit::CORRUPT,
    }
}

pub fn health_name(h: Health) -> &'static str {
    match h {
        Health::Clean => "clean",
        Health::TornTail => "torn_tail",
        _ => "corruption",
    }
}

fn file_name(seg: &VerifiedSegment) -> String {
    seg.path
        .file_name()
        .map(|n| escape_path(std::path::Path::new(n)))
        .unwrap_or_default()
}

fn segment_json(seg: &VerifiedSegment) -> VerifiedSegmentLine {
    let damage = seg.damage.as_ref().map(|d| match d {
        Damage::Header(h) => DamageJson {
            status: "header",
            offset: 0,
            reason: escape_str(h),
            proven_by: None,
        },
        Damage::Leftover(what) => DamageJson {
            status: "leftover",
            offset: 0,
            reason: escape_str(&what.to_string()),
            proven_by: None,
        },
        Damage::TornTail { offset, reason } => DamageJson {
            status: "torn_tail",
            offset: *offset,
            reason: escape_str(reason),
            proven_by: None,
        },
        Damage::Corrupt {
            offset,
            reason,
            proven_by,
        } => DamageJson {
            status: "corruption",
            offset: *offset,
            reason: escape_str(reason),
            proven_by: proven_by.map(|(offset, lsn)| ProvenBy { offset, lsn }),
        },
        other => DamageJson {
            status: "corruption",
            offset: 0,
            reason: escape_str(&format!("{other:?}")),
            proven_by: None,
        },
    });
    let (status, records, reason) = match &seg.checkpoint {
        CheckpointCheck::Valid { records } => ("ok", Some(*records), None),
        CheckpointCheck::Missing => ("missing", None, None),
        CheckpointCheck::Stale(r) => ("stale", None, Some(escape_str(r))),
        CheckpointCheck::Damaged(r) => ("damaged", None, Some(escape_str(r))),
        _ => ("not_applicable", None, None),
    };
    VerifiedSegmentLine {
        file: file_name(seg),
        segment: seg.number,
        first_lsn: seg.first_lsn,
        is_last: seg.is_last,
        records: seg.records,
        intact_bytes: seg.intact_bytes,
        bytes: seg.bytes,
        damage,
        checkpoint: CheckpointJson {
            status,
            records,
            reason,
        },
    }
}

/// The status column of a segment, and the problem it names (for the last line).
fn status(paint: &Paint, seg: &VerifiedSegment) -> (String, Option<String>) {
    match &seg.damage {
        None => (paint.good("ok"), None),
        Some(Damage::Header(h)) => (
            paint.bad(&format!("CORRUPT: header: {h}")),
            Some(format!("unreadable header: {h}")),
        ),
        Some(Damage::Leftover(what)) => (
            paint.warn(&format!("no record: {what}")),
            Some(format!("a file with no record: {what}")),
        ),
        Some(Damage::TornTail { offset, reason }) => (
            paint.warn(&format!("torn tail at {offset} ({reason})")),
            Some(format!("torn tail at offset {offset}: {reason}")),
        ),
        Some(Damage::Corrupt {
            offset,
            reason,
            proven_by,
        }) => {
            let shown = match proven_by {
                Some((at, lsn)) => format!(
                    "CORRUPT at {offset}: {reason} (LSN {lsn} at {at} proves it was durable)"
                ),
                None => format!("CORRUPT at {offset}: {reason} (sealed segment)"),
            };
            (
                paint.bad(&shown),
                Some(format!("corruption at offset {offset}: {reason}")),
            )
        }
        Some(other) => (paint.bad(&format!("{other:?}")), Some(format!("{other:?}"))),
    }
}

/// The library's report of `dir`.
///
/// # Errors
/// A path that is not a directory or holds no segments; I/O errors.
pub fn report(dir: &std::path::Path) -> Result<VerifyReport> {
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a log directory", dir.display());
    }
    let report = seglog::verify_dir(dir)?;
    if report.segments.is_empty() {
        bail!(
            "{} holds no segment files (*.seg): not a seglog log directory",
            dir.display()
        );
    }
    Ok(report)
}

/// Prints `report` as text or JSON lines; returns the first problem, for stderr.
///
/// # Errors
/// Write errors other than a reader that went away.
pub fn print(report: &VerifyReport, json: bool) -> Result<Option<String>> {
    let paint = Paint::detect();
    let mut first_problem: Option<String> = None;
    for seg in &report.segments {
        let file = file_name(seg);
        let (shown, problem) = status(&paint, seg);
        if let Some(p) = problem {
            first_problem.get_or_insert(format!("{file}: {p}"));
        }
        if let CheckpointCheck::Damaged(r) = &seg.checkpoint {
            first_problem.get_or_insert(format!("checkpoint of {file}: {r}"));
        }
        if json {
            out(json_line(&segment_json(seg))?)?;
            continue;
        }
        out(format!(
            "{file}  seg {:>4}  records {:>8}  intact through {:>10} of {:>10}  {shown}",
            seg.number.unwrap_or(0),
            seg.records,
            seg.intact_bytes,
            seg.bytes
        ))?;
        if !seg.is_last {
            let cp = match &seg.checkpoint {
                CheckpointCheck::Valid { records } => {
                    paint.good(&format!("ok ({records} records)"))
                }
                CheckpointCheck::Stale(r) => paint.dim(&format!("stale, ignored ({r})")),
                CheckpointCheck::Damaged(r) => paint.bad(&format!("DAMAGED: {r}")),
                _ => paint.dim("none (the segment is scanned on open)"),
            };
            out(format!("    checkpoint: {cp}"))?;
        }
    }
    for o in &report.offloaded {
        if o.health() != Health::Clean {
            first_problem.get_or_insert(format!(
                "offloaded segment {}: its checkpoint is not usable (restore the log from its bucket)",
                o.number
            ));
        }
        if json {
            out(json_line(&OffloadedSegmentLine {
                segment: o.number,
                first_lsn: o.first_lsn,
                location: escape_str(&o.location),
                bytes: o.bytes,
                checkpoint: checkpoint_json(&o.checkpoint),
            })?)?;
            continue;
        }
        let cp = match &o.checkpoint {
            CheckpointCheck::Valid { records } => paint.good(&format!("ok ({records} records)")),
            CheckpointCheck::Missing => paint.bad("MISSING (its records cannot be indexed)"),
            CheckpointCheck::Stale(r) | CheckpointCheck::Damaged(r) => {
                paint.bad(&format!("DAMAGED: {r}"))
            }
            _ => paint.dim("not applicable"),
        };
        out(format!(
            "offloaded seg {:>4}  first LSN {:>10}  {:>10} bytes at {}",
            o.number,
            o.first_lsn,
            o.bytes,
            escape_str(&o.location)
        ))?;
        out(format!("    checkpoint: {cp}"))?;
    }
    for p in &report.index_problems {
        first_problem.get_or_insert(format!("index: {p}"));
        if json {
            out(json_line(&IndexProblemLine {
                problem: escape_str(p),
            })?)?;
        } else {
            out(format!("index: {}", paint.bad(&escape_str(p))))?;
        }
    }
    if let Some(p) = &report.identity_problem {
        first_problem.get_or_insert(format!("identity: {p}"));
        if json {
            out(json_line(&IdentityProblemLine {
                problem: escape_str(p),
            })?)?;
        } else {
            out(format!("identity: {}", paint.bad(&escape_str(p))))?;
        }
    }
    if !json && report.index_problem_count > report.index_problems.len() {
        out(format!(
            "index: {} more problems",
            report.index_problem_count - report.index_problems.len()
        ))?;
    }
    let health = report.health();
    if json {
        out(json_line(&VerdictLine {
            health: health_name(health),
            segments: report.segments.len(),
            records: report.records(),
            intact_bytes: report.intact_bytes(),
            index_problems: report.index_problem_count,
            identity_problem: report.identity_problem.is_some(),
        })?)?;
    } else {
        let verdict = match health {
            Health::Clean => paint.good("clean"),
            Health::TornTail => {
                paint.warn("torn tail only (unacknowledged bytes; the next open cuts them)")
            }
            _ => paint.bad("CORRUPTION FOUND"),
        };
        out(format!(
            "{} segments, {} records, {} bytes: {verdict}",
            report.segments.len(),
            report.records(),
            report.intact_bytes()
        ))?;
    }
    Ok(first_problem)
}

pub fn run(args: &VerifyArgs) -> Result<i32> {
    let report = report(&args.dir)?;
    if let Some(p) = print(&report, args.json)? {
        eprintln!("seglog: {}", escape_str(&p));
    }
    Ok(exit_code(report.health()))
}
