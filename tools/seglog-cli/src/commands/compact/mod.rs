//! `seglog compact`: retention and erasure on a log no other process has open.
//!
//! Prints what the plan would reclaim before changing anything. Unlike the read-only
//! commands it takes the log's lock, so it refuses to run while another process has the log
//! open. `--dry-run` is a read-only command: it never opens the log (which would write to
//! it) but works the estimate out from the files ([`estimate`]), so it changes no byte of the
//! directory and also works on a log in use.

mod estimate;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use seglog::compaction::{policy, IndexView, Plan};
use seglog::{CompactOptions, CompactionReport, Log, Options};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `seglog compact`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    seglog compact ./log --drop-tenant acme --dry-run\n  \
    seglog compact ./log --older-than 30d\n  \
    seglog compact ./log --finished-before 7d --merge-small\n\n\
    Durations: 90s, 45m, 12h, 30d, 2w (or combined, as in 1d 12h).")]
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
    /// Largest segment to write, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = seglog_segment::format::DEFAULT_SEGMENT_SIZE)]
    pub segment_size: u64,
    /// Only estimate what would go (read-only: no lock, no writes).
    #[arg(long)]
    pub dry_run: bool,
}

/// Bytes as B, KiB, MiB or GiB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn make_plan(args: &CompactArgs, view: &IndexView) -> Plan {
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
            args.segment_size / 4,
            args.segment_size,
        ));
    }
    plan
}

fn describe(report: &CompactionReport, verb: &str) -> String {
    format!(
        "{verb} {} executions, {} events, {} (segments: {} read, {} written)",
        report.executions_dropped,
        report.events_dropped,
        size(report.bytes_reclaimed),
        report.rewrite.input_segments,
        report.rewrite.output_segments,
    )
}

fn open(args: &CompactArgs) -> Result<Log> {
    if !args.dir.is_dir() {
        bail!("{} is not a log directory", args.dir.display());
    }
    let options = Options {
        segment_size_bytes: args.segment_size,
        // Compaction appends nothing: no reason to reserve `--segment-size` bytes for the
        // active segment, which the log may have been written with a smaller size.
        preallocate: false,
        ..Options::default()
    };
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
        return Ok(64);
    }
    if args.dry_run {
        let log = estimate::ReadOnlyLog::scan(&args.dir, args.finished_before.is_some())?;
        let plan = make_plan(args, &log.view);
        crate::output::ignore_broken_pipe(crate::outln!(
            "{}",
            describe(&log.estimate(&plan)?, "would reclaim:")
        ))?;
        return Ok(0);
    }
    let log = open(args)?;
    let view = log.compaction_view(args.finished_before.is_some())?;
    let plan = make_plan(args, &view);
    let estimate = log.compact_blocking(
        &plan,
        CompactOptions {
            dry_run: true,
            target_segment_bytes: Some(args.segment_size),
        },
        &mut |_, _| {},
    )?;
    // The compaction goes on if the reader of stdout went away.
    crate::output::ignore_broken_pipe(crate::outln!("{}", describe(&estimate, "would reclaim:")))?;
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
        CompactOptions {
            dry_run: false,
            target_segment_bytes: Some(args.segment_size),
        },
        &mut |done, total| {
            bar.set_length(total.max(1));
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    let report = result?;
    log.close()?;
    crate::output::ignore_broken_pipe(crate::outln!(
        "{} in {:.2} s",
        describe(&report, "reclaimed:"),
        report.duration.as_secs_f64()
    ))?;
    Ok(0)
}
