//! `seglog compact`: retention and erasure on a log no other process has open.
//!
//! Prints what the plan would reclaim before changing anything. Unlike the read-only
//! commands it takes the log's lock, so it refuses to run while another process has the log
//! open. `--dry-run` is a read-only command: it never opens the log (which would write to
//! it) but works the estimate out from the files ([`estimate`]), so it changes no byte of the
//! directory and also works on a log in use.

mod estimate;

use crate::confirm::confirm;
use crate::output::{json_line, JsonRecord};
use anyhow::{bail, Context, Result};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use seglog::compaction::{policy, IndexView, Plan};
use seglog::{CompactOptions, CompactionReport, Log, Options};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `seglog compact`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    seglog compact ./log --drop-tenant acme --dry-run\n  \
    seglog compact ./log --older-than 30d\n  \
    seglog compact ./log --drop-tenant acme --yes   # no question asked (scripts)\n  \
    seglog compact ./log --finished-before 7d --merge-small --json\n\n\
    Durations are humantime's: 90s, 45m, 12h, 30d, 2w (or combined, as in 1d 12h).\n\
    Exits 5 when the question is answered no, 64 without --yes and no terminal (nothing\n\
    changed either way), 3 when another process has the log open.")]
pub struct CompactArgs {
    /// A log directory (not open in another process).
    pub dir: PathBuf,
    /// Erase every execution of this tenant (repeatable).
    #[arg(long, value_name = "TENANT")]
    pub drop_tenant: Vec<String>,
    /// Drop this execution (repeatable).
    #[arg(long, value_name = "EXECUTION")]
    pub drop_execution: Vec<String>,
    /// Drop executions whose last event is older than this.
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// Drop finished Enact executions older than this (by last event).
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    pub finished_before: Option<Duration>,
    /// Also merge runs of small sealed segments (< segment size / 4).
    #[arg(long)]
    pub merge_small: bool,
    /// Largest segment to write, in bytes [default: the log's own]
    #[arg(long, value_name = "BYTES")]
    pub segment_size: Option<u64>,
    /// Only estimate what would go (read-only: no lock, no writes).
    #[arg(long)]
    pub dry_run: bool,
    /// Erase without asking (required without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// JSON lines, each with "schema" and "kind"
    #[arg(long)]
    pub json: bool,
}

/// What a compaction drops and rewrites.
#[derive(Serialize)]
struct CompactionFigures {
    executions_dropped: u64,
    events_dropped: u64,
    bytes_reclaimed: u64,
    input_segments: u64,
    output_segments: u64,
    /// How long it took (humantime), for a compaction that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
}

impl CompactionFigures {
    fn of(report: &CompactionReport, ran: bool) -> Self {
        CompactionFigures {
            executions_dropped: report.executions_dropped,
            events_dropped: report.events_dropped,
            bytes_reclaimed: report.bytes_reclaimed,
            input_segments: report.rewrite.input_segments,
            output_segments: report.rewrite.output_segments,
            duration: ran.then(|| crate::output::duration(report.duration)),
        }
    }
}

/// What the plan would reclaim.
#[derive(Serialize)]
#[serde(transparent)]
struct EstimateLine(CompactionFigures);

impl JsonRecord for EstimateLine {
    const KIND: &'static str = "compaction_estimate";
}

/// What the compaction reclaimed.
#[derive(Serialize)]
#[serde(transparent)]
struct DoneLine(CompactionFigures);

impl JsonRecord for DoneLine {
    const KIND: &'static str = "compaction";
}

/// Prints the estimate (text or JSON); the work goes on if the reader of stdout went away.
fn print_estimate(args: &CompactArgs, estimate: &CompactionReport) -> Result<()> {
    let line = if args.json {
        json_line(&EstimateLine(CompactionFigures::of(estimate, false)))?
    } else {
        describe(estimate, "would reclaim:")
    };
    crate::output::ignore_broken_pipe(crate::outln!("{line}"))?;
    Ok(())
}

impl CompactArgs {
    /// True when the plan's policies erase events (as opposed to only merging segments).
    fn erases(&self) -> bool {
        !self.drop_tenant.is_empty()
            || !self.drop_execution.is_empty()
            || self.older_than.is_some()
            || self.finished_before.is_some()
    }

    /// `--segment-size`, or the log's own: its largest segment file (the active one is
    /// preallocated to the segment size it is written with), or the default for a log
    /// without segments.
    fn segment_size(&self) -> Result<u64> {
        if let Some(size) = self.segment_size {
            return Ok(size);
        }
        let mut largest = 0;
        for entry in std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let entry = entry?;
            if entry.path().extension().is_some_and(|x| x == "seg") {
                largest = largest.max(entry.metadata()?.len());
            }
        }
        Ok(if largest == 0 {
            seglog_segment::format::DEFAULT_SEGMENT_SIZE
        } else {
            largest
        })
    }
}

fn make_plan(args: &CompactArgs, view: &IndexView, segment_size: u64) -> Plan {
    let mut plan = Plan::default();
    for t in &args.drop_tenant {
        plan = plan.and(policy::drop_tenant(view, t));
    }
    plan = plan.and(policy::drop_executions(
        view,
        args.drop_execution.iter().map(String::as_str),
    ));
    if let Some(age) = args.older_than {
        plan = plan.and(policy::drop_older_than(view, age));
    }
    if let Some(age) = args.finished_before {
        plan = plan.and(seglog_eventstore::retention::finished_before(view, age));
    }
    if args.merge_small {
        plan = plan.and(policy::merge_small_segments(
            view,
            segment_size / 4,
            segment_size,
        ));
    }
    plan
}

fn describe(report: &CompactionReport, verb: &str) -> String {
    format!(
        "{verb} {} executions, {} events, {} (segments: {} read, {} written)",
        report.executions_dropped,
        report.events_dropped,
        HumanBytes(report.bytes_reclaimed),
        report.rewrite.input_segments,
        report.rewrite.output_segments,
    )
}

#[allow(
    clippy::field_reassign_with_default,
    reason = "Options becomes #[non_exhaustive]: no struct literal"
)]
fn open(args: &CompactArgs, segment_size: u64) -> Result<Log> {
    let mut options = Options::default();
    options.segment_size_bytes = segment_size;
    // Compaction appends nothing: no reason to reserve `--segment-size` bytes for the
    // active segment, which the log may have been written with a smaller size.
    options.preallocate = false;
    match Log::open_blocking(&args.dir, options) {
        Err(seglog::Error::Segment(seglog_segment::Error::Locked { dir })) => bail!(
            "{} is open in another process (its LOCK is held); stop that process first, or compact from inside it with Log::compact",
            dir.display()
        ),
        other => other.with_context(|| format!("cannot open {}", args.dir.display())),
    }
}

pub fn run(args: &CompactArgs) -> Result<i32> {
    if args.drop_tenant.is_empty()
        && args.drop_execution.is_empty()
        && args.older_than.is_none()
        && args.finished_before.is_none()
        && !args.merge_small
    {
        eprintln!("seglog compact: nothing to do; give --drop-tenant, --drop-execution, --older-than, --finished-before or --merge-small");
        return Ok(crate::exit::USAGE);
    }
    if !args.dir.is_dir() {
        bail!("{} is not a log directory", args.dir.display());
    }
    let segment_size = args.segment_size()?;
    if args.dry_run {
        let log = estimate::ReadOnlyLog::scan(&args.dir, args.finished_before.is_some())?;
        let plan = make_plan(args, &log.view, segment_size);
        print_estimate(args, &log.estimate(&plan)?)?;
        return Ok(crate::exit::OK);
    }
    if args.erases() && !args.yes {
        // Asked before the log is opened (opening writes): a "no" leaves every byte as it was.
        let read_only = estimate::ReadOnlyLog::scan(&args.dir, args.finished_before.is_some())?;
        let estimate = read_only.estimate(&make_plan(args, &read_only.view, segment_size))?;
        if estimate.events_dropped > 0 {
            let stdin = std::io::stdin();
            let question = format!(
                "Erase {} events of {} executions from {} for good?",
                estimate.events_dropped,
                estimate.executions_dropped,
                args.dir.display()
            );
            match confirm(
                &question,
                stdin.is_terminal(),
                &mut stdin.lock(),
                &mut std::io::stderr(),
            ) {
                Ok(true) => {}
                Ok(false) => {
                    eprintln!("seglog compact: not confirmed; nothing changed");
                    return Ok(crate::exit::DECLINED);
                }
                Err(e) => {
                    eprintln!("seglog compact: {e}; nothing changed");
                    return Ok(crate::exit::USAGE);
                }
            }
        }
    }
    let log = open(args, segment_size)?;
    let view = log.compaction_view(args.finished_before.is_some())?;
    let plan = make_plan(args, &view, segment_size);
    let estimate = log.compact_blocking(
        &plan,
        CompactOptions::default()
            .dry_run(true)
            .target_segment_bytes(segment_size),
        &mut |_, _| {},
    )?;
    // The compaction goes on if the reader of stdout went away.
    print_estimate(args, &estimate)?;
    if plan.is_empty() {
        log.close()?;
        return Ok(0);
    }
    let bar = ProgressBar::new(estimate.rewrite.input_bytes.max(1));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = log.compact_blocking(
        &plan,
        CompactOptions::default().target_segment_bytes(segment_size),
        &mut |done, total| {
            bar.set_length(total.max(1));
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let report = result?;
    log.close()?;
    let line = if args.json {
        json_line(&DoneLine(CompactionFigures::of(&report, true)))?
    } else {
        format!(
            "{} in {}",
            describe(&report, "reclaimed:"),
            crate::output::duration(report.duration)
        )
    };
    crate::output::ignore_broken_pipe(crate::outln!("{line}"))?;
    Ok(crate::exit::OK)
}
