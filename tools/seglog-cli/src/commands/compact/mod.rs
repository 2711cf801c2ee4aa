//! `seglog compact`: retention and erasure on a log no other process has open.
//!
//! Prints what the plan would reclaim before changing anything. Unlike the read-only
//! commands it takes the log's lock, so it refuses to run while another process has the log
//! open. `--dry-run` is a read-only command: it never opens the log (which would write to
//! it) but works the estimate out from the files ([`estimate`]), so it changes no byte of the
//! directory and also works on a log in use.

mod estimate;

use anyhow::{bail, Context, Result};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use seglog::compaction::{policy, IndexView, Plan};
use seglog::{CompactOptions, CompactionReport, Log, Options};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `seglog compact`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    seglog compact ./log --drop-tenant acme --dry-run\n  \
    seglog compact ./log --older-than 30d\n  \
    seglog compact ./log --drop-tenant acme --yes   # no question asked (scripts)\n  \
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
    /// Largest segment to write, in bytes [default: the log's own]
    #[arg(long, value_name = "BYTES")]
    pub segment_size: Option<u64>,
    /// Only estimate what would go (read-only: no lock, no writes).
    #[arg(long)]
    pub dry_run: bool,
    /// Erase without asking (required without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
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

/// Asks whether to go ahead with an erasure. `interactive`: standard input is a terminal.
/// Without a terminal nobody can answer: the erasure needs `--yes`.
fn confirm(
    question: &str,
    interactive: bool,
    input: &mut impl BufRead,
    prompt: &mut impl Write,
) -> Result<bool> {
    if !interactive {
        bail!(
            "refusing to erase without confirmation: standard input is not a terminal (pass --yes)"
        );
    }
    write!(prompt, "{question} [y/N] ")?;
    prompt.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
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

fn open(args: &CompactArgs, segment_size: u64) -> Result<Log> {
    let options = Options {
        segment_size_bytes: segment_size,
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
    if !args.dir.is_dir() {
        bail!("{} is not a log directory", args.dir.display());
    }
    let segment_size = args.segment_size()?;
    if args.dry_run {
        let log = estimate::ReadOnlyLog::scan(&args.dir, args.finished_before.is_some())?;
        let plan = make_plan(args, &log.view, segment_size);
        crate::output::ignore_broken_pipe(crate::outln!(
            "{}",
            describe(&log.estimate(&plan)?, "would reclaim:")
        ))?;
        return Ok(0);
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
                    return Ok(1);
                }
                Err(e) => {
                    eprintln!("seglog compact: {e}; nothing changed");
                    return Ok(64);
                }
            }
        }
    }
    let log = open(args, segment_size)?;
    let view = log.compaction_view(args.finished_before.is_some())?;
    let plan = make_plan(args, &view, segment_size);
    let estimate = log.compact_blocking(
        &plan,
        CompactOptions {
            dry_run: true,
            target_segment_bytes: Some(segment_size),
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
            target_segment_bytes: Some(segment_size),
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

#[cfg(test)]
mod tests {
    use super::confirm;

    fn answer(interactive: bool, typed: &str) -> Option<bool> {
        let mut prompt = Vec::new();
        confirm("Erase?", interactive, &mut typed.as_bytes(), &mut prompt).ok()
    }

    #[test]
    fn only_a_yes_typed_on_a_terminal_confirms_an_erasure() {
        assert_eq!(answer(true, "y\n"), Some(true));
        assert_eq!(answer(true, "yes\n"), Some(true));
        assert_eq!(answer(true, "\n"), Some(false));
        assert_eq!(answer(true, "n\n"), Some(false));
        assert_eq!(answer(true, "yess\n"), Some(false));
        assert_eq!(answer(true, ""), Some(false), "end of input is a no");
        assert_eq!(answer(false, "y\n"), None, "no terminal: refused, not read");
    }
}
