//! `seglog repair`: salvage a damaged log, saying exactly what it cuts before it cuts.
//!
//! The work is the library's (`seglog::repair_dir`): under the log's lock (so never while a
//! writer has it open) it plans the salvage with recovery's own scan, asks, opens the log in
//! `RecoveryMode::Salvage` (the only code that cuts), checks the files against the plan and
//! verifies the result. This module prints the plan, asks the question (on a terminal, or
//! `--yes`, as `compact` does) and maps the outcome to the exit status.

use crate::confirm::confirm;
use crate::output::{escape_path, json_line, JsonRecord};
use anyhow::{bail, Context, Result};
use indicatif::HumanBytes;
use seglog::{SalvagePlan, SegmentCut};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Options of `seglog repair`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Keeps the log's longest undamaged prefix: the first damaged record \
    cuts its segment there,\nevery later segment is removed, damaged checkpoints are removed \
    (they are rebuilt from\nthe records). Prints all of that before changing anything, and \
    asks (--yes for scripts).\nRefuses a log another process has open. Afterwards the log \
    verifies clean.\n\nExit status: 0 repaired (or nothing to repair); 2 damage salvage cannot \
    cut away (nothing\nchanged), or not clean afterwards; 3 the log is open elsewhere; 5 \
    answered no; 64 no --yes\nand no terminal.\n\nExamples:\n  seglog repair ./log --dry-run\n  \
    seglog repair ./log --yes --json"
)]
pub struct RepairArgs {
    /// A log directory (not open in another process).
    pub dir: PathBuf,
    /// Only print what would be cut (read-only: no lock, no writes).
    #[arg(long)]
    pub dry_run: bool,
    /// Repair without asking (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// JSON lines, each with "schema" and "kind" (repair_plan, repair).
    #[arg(long)]
    pub json: bool,
    /// First write this identity (32 hex digits) into the log's damaged LOG_ID: the one
    /// `seglog remote status <URL>` prints for a log shipped to a bucket.
    #[arg(long, value_name = "HEX", conflicts_with_all = ["new_log_id", "dry_run"])]
    pub log_id: Option<String>,
    /// First give the log a new random identity, replacing a damaged LOG_ID (for a log that
    /// was never shipped: a bucket refuses a log whose identity changed).
    #[arg(long, conflicts_with = "dry_run")]
    pub new_log_id: bool,
}

/// The segment cut short.
#[derive(Serialize)]
struct CutJson {
    file: String,
    segment: u64,
    offset: u64,
    bytes_dropped: u64,
    records_kept: u64,
    records_dropped: u64,
    records_dropped_exact: bool,
    reason: String,
    acknowledged: bool,
}

/// A segment removed whole.
#[derive(Serialize)]
struct RemovedJson {
    file: String,
    segment: Option<u64>,
    bytes: u64,
    records: u64,
}

/// A damaged checkpoint removed.
#[derive(Serialize)]
struct CheckpointJson {
    file: String,
    reason: String,
}

/// What the repair changes.
#[derive(Serialize)]
struct PlanLine {
    cut: Option<CutJson>,
    removed: Vec<RemovedJson>,
    incomplete_segment: Option<String>,
    empty_files: Vec<String>,
    damaged_checkpoints: Vec<CheckpointJson>,
    segments_kept: usize,
    records_kept: u64,
    records_dropped: u64,
    bytes_dropped: u64,
    drops_acknowledged_data: bool,
}

impl JsonRecord for PlanLine {
    const KIND: &'static str = "repair_plan";
}

/// What the repair did.
#[derive(Serialize)]
struct RepairLine {
    repaired: bool,
    /// Where the files afterwards differ from the plan (empty: they match).
    differences: Vec<String>,
    /// The log's health afterwards (before, when nothing was done): `clean`, `torn_tail` or
    /// `corruption`.
    health: &'static str,
}

impl JsonRecord for RepairLine {
    const KIND: &'static str = "repair";
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| escape_path(Path::new(n)))
        .unwrap_or_default()
}

fn plan_line(plan: &SalvagePlan) -> PlanLine {
    PlanLine {
        cut: plan.cut.as_ref().map(|c: &SegmentCut| CutJson {
            file: name(&c.path),
            segment: c.segment,
            offset: c.offset,
            bytes_dropped: c.bytes_dropped,
            records_kept: c.records_kept,
            records_dropped: c.records_dropped,
            records_dropped_exact: c.records_dropped_exact,
            reason: c.reason.clone(),
            acknowledged: c.acknowledged,
        }),
        removed: plan
            .removed
            .iter()
            .map(|r| RemovedJson {
                file: name(&r.path),
                segment: r.segment,
                bytes: r.bytes,
                records: r.records,
            })
            .collect(),
        incomplete_segment: plan.incomplete_segment.as_deref().map(name),
        empty_files: plan.empty_files.iter().map(|p| name(p)).collect(),
        damaged_checkpoints: plan
            .damaged_checkpoints
            .iter()
            .map(|c| CheckpointJson {
                file: name(&c.path),
                reason: c.reason.clone(),
            })
            .collect(),
        segments_kept: plan.kept.len(),
        records_kept: plan.records_kept(),
        records_dropped: plan.records_dropped(),
        bytes_dropped: plan.bytes_dropped(),
        drops_acknowledged_data: plan.drops_acknowledged_data(),
    }
}

/// The plan as text lines.
fn plan_text(plan: &SalvagePlan) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(c) = &plan.cut {
        let after = if c.records_dropped_exact {
            format!("{} more whole records after it", c.records_dropped)
        } else {
            format!("at least {} more whole records after it", c.records_dropped)
        };
        lines.push(format!(
            "cut segment {} ({}) at offset {}: drops {} ({} bytes): the damaged record and {after}; keeps {} records before it [{}; {}]",
            c.segment,
            name(&c.path),
            c.offset,
            HumanBytes(c.bytes_dropped),
            c.bytes_dropped,
            c.records_kept,
            c.reason,
            if c.acknowledged { "acknowledged data" } else { "a torn tail: never acknowledged" }
        ));
    }
    for r in &plan.removed {
        lines.push(format!(
            "remove segment {} ({}): {} ({} bytes), {} records (it follows the cut)",
            r.segment.map_or_else(|| "?".to_string(), |n| n.to_string()),
            name(&r.path),
            HumanBytes(r.bytes),
            r.bytes,
            r.records
        ));
    }
    if let Some(p) = &plan.incomplete_segment {
        lines.push(format!(
            "remove {}: its creation was interrupted (no header, no records)",
            name(p)
        ));
    }
    for p in &plan.empty_files {
        lines.push(format!(
            "remove {}: no header, nothing but zeros, and no record missing around it (no \
             segment of this log)",
            name(p)
        ));
    }
    for c in &plan.damaged_checkpoints {
        lines.push(format!(
            "remove checkpoint {} ({}): rebuilt from the records, no event is lost",
            name(&c.path),
            c.reason
        ));
    }
    lines.push(format!(
        "keep {} segments, {} records",
        plan.kept.len(),
        plan.records_kept()
    ));
    lines
}

/// One line on stdout. A repair's work and verdict (the exit status) do not depend on its
/// output: it goes on if the reader of stdout went away.
fn out(line: &str) -> Result<()> {
    crate::output::ignore_broken_pipe(crate::outln!("{line}"))?;
    Ok(())
}

fn print_plan(plan: &SalvagePlan, json: bool) -> Result<()> {
    if json {
        out(&json_line(&plan_line(plan))?)?;
    } else {
        for line in plan_text(plan) {
            out(&line)?;
        }
    }
    Ok(())
}

pub fn run(args: &RepairArgs) -> Result<i32> {
    if !args.dir.is_dir() {
        bail!("{} is not a log directory", args.dir.display());
    }
    let identity = match (&args.log_id, args.new_log_id) {
        (Some(hex), _) => Some(
            hex.parse::<seglog_segment::format::LogId>()
                .map_err(|e| anyhow::anyhow!("--log-id {hex:?}: {e}"))?,
        ),
        (None, true) => Some(
            seglog_segment::format::LogId::random().context("cannot draw a new log identity")?,
        ),
        (None, false) => None,
    };
    if let Some(id) = identity {
        seglog::mend_log_id(&args.dir, id)
            .with_context(|| format!("cannot write the identity of {}", args.dir.display()))?;
        eprintln!("seglog repair: the log's identity is now {id}");
    }
    if args.dry_run {
        let plan = seglog::plan_salvage(&seglog::io::StdFs, &args.dir)
            .with_context(|| format!("cannot plan a repair of {}", args.dir.display()))?;
        if plan.is_empty() {
            eprintln!("seglog repair: nothing to repair");
        }
        print_plan(&plan, args.json)?;
        return Ok(crate::exit::OK);
    }
    // The outcome of the question, when it stops the repair (the closure cannot fail).
    let mut stopped: Option<(i32, String)> = None;
    let mut printed = Ok(());
    let report = seglog::repair_dir(&args.dir, |plan| {
        printed = print_plan(plan, args.json);
        if printed.is_err() || args.yes {
            return printed.is_ok();
        }
        let question = format!(
            "Repair {}: drop {} records ({}){}?",
            args.dir.display(),
            plan.records_dropped(),
            HumanBytes(plan.bytes_dropped()),
            if plan.drops_acknowledged_data() {
                ", acknowledged data among them, for good"
            } else {
                ""
            }
        );
        let stdin = std::io::stdin();
        match confirm(
            &question,
            stdin.is_terminal(),
            &mut stdin.lock(),
            &mut std::io::stderr(),
        ) {
            Ok(true) => true,
            Ok(false) => {
                stopped = Some((crate::exit::DECLINED, "not confirmed".into()));
                false
            }
            Err(e) => {
                stopped = Some((crate::exit::USAGE, e.to_string()));
                false
            }
        }
    });
    let report = match report {
        Err(e) if e.is_locked() => bail!(
            "{} is open in another process (its LOCK is held); stop that process first: nothing changed",
            args.dir.display()
        ),
        other => other.with_context(|| format!("cannot repair {}", args.dir.display()))?,
    };
    printed?;
    if let Some((code, why)) = stopped {
        eprintln!("seglog repair: {why}; nothing changed");
        return Ok(code);
    }
    let health = report.verified.health();
    if report.plan.is_empty() {
        print_plan(&report.plan, args.json)?;
    }
    let verdict = crate::commands::verify::health_name(health).replace('_', " ");
    if args.json {
        out(&json_line(&RepairLine {
            repaired: report.repaired,
            differences: report.differences.clone(),
            health: crate::commands::verify::health_name(health),
        })?)?;
    } else if report.repaired {
        out(&format!(
            "repaired: dropped {}{} whole records and {}; the log verifies {verdict}",
            if report.plan.cut.is_some() {
                "the damaged record, "
            } else {
                ""
            },
            report.plan.records_dropped(),
            HumanBytes(report.plan.bytes_dropped()),
        ))?;
    } else {
        out(&format!("nothing to repair; the log verifies {verdict}"))?;
    }
    for d in &report.differences {
        eprintln!("seglog repair: the files differ from the plan: {d}");
    }
    if !report.differences.is_empty() || health != seglog::Health::Clean {
        if !report.repaired && health != seglog::Health::Clean {
            eprintln!(
                "seglog repair: the log is not clean but holds no damage salvage can cut (records that contradict each other?); run `seglog verify` for details"
            );
        }
        return Ok(crate::exit::CORRUPT);
    }
    Ok(crate::exit::OK)
}
