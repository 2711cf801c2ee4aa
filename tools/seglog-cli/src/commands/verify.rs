//! `seglog verify`: check every record and checkpoint; exit 0 clean, 1 torn tail, 2 corruption.
//! The checks are the library's (`seglog::verify_dir`, the same as `Log::verify` inside a
//! running application): every record of every segment is read and checksummed (bit rot in a
//! sealed segment that a checkpoint covers is found here, not only when a reader trips over
//! it), each sealed segment's checkpoint is compared with its records entry by entry, and the
//! records are checked against each other as an index rebuilt from them would be. This module
//! only prints the report.

use crate::output::{escape_path, escape_str, Paint};
use anyhow::{bail, Context, Result};
use seglog::{CheckpointCheck, Damage, Health, VerifiedSegment};
use std::path::PathBuf;

/// Options of `seglog verify`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Reads every record of every segment and compares each checkpoint with its segment's records.\n\nExit status: 0 clean; 1 torn tail only (normal after a crash: opening the log cuts it);\n2 corruption (acknowledged data damaged, or a damaged checkpoint or header).\n\nExample:\n  seglog verify ./log && echo intact"
)]
pub struct VerifyArgs {
    /// A log directory.
    pub dir: PathBuf,
}

/// One line on stdout. The verdict is the exit status: it stands even if the reader of
/// stdout went away.
fn out(line: String) -> std::io::Result<()> {
    crate::output::ignore_broken_pipe(crate::outln!("{line}"))
}

fn exit_code(h: Health) -> i32 {
    match h {
        Health::Clean => 0,
        Health::TornTail => 1,
        _ => 2,
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

pub fn run(args: &VerifyArgs) -> Result<i32> {
    let paint = Paint::detect();
    let meta = std::fs::metadata(&args.dir)
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a log directory", args.dir.display());
    }
    let report = seglog::verify_dir(&args.dir)?;
    if report.segments.is_empty() {
        bail!(
            "{} holds no segment files (*.seg): not a seglog log directory",
            args.dir.display()
        );
    }
    let mut first_problem: Option<String> = None;
    for seg in &report.segments {
        let file = seg
            .path
            .file_name()
            .map(|n| escape_path(std::path::Path::new(n)))
            .unwrap_or_default();
        let (shown, problem) = status(&paint, seg);
        if let Some(p) = problem {
            first_problem.get_or_insert(format!("{file}: {p}"));
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
                CheckpointCheck::Damaged(r) => {
                    first_problem.get_or_insert(format!("checkpoint of {file}: {r}"));
                    paint.bad(&format!("DAMAGED: {r}"))
                }
                _ => paint.dim("none (the segment is scanned on open)"),
            };
            out(format!("    checkpoint: {cp}"))?;
        }
    }
    for p in &report.index_problems {
        out(format!("index: {}", paint.bad(&escape_str(p))))?;
        first_problem.get_or_insert(format!("index: {p}"));
    }
    if report.index_problem_count > report.index_problems.len() {
        out(format!(
            "index: {} more problems",
            report.index_problem_count - report.index_problems.len()
        ))?;
    }
    let health = report.health();
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
    if let Some(p) = first_problem {
        eprintln!("seglog: {}", escape_str(&p));
    }
    Ok(exit_code(health))
}
