//! `seglog events`: one execution's events, decoded.

use crate::logdir::{for_each_segment, offloaded_segments, Health, OffloadedView};
use crate::output::{escape_str, EventLine};
use anyhow::Result;
use std::path::PathBuf;

/// Options of `seglog events`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exits 4 when the log holds no event of the execution, 1 when the log has a torn tail,\n2 when it is damaged (see seglog --help).\n\nExamples:\n  seglog events ./log exec_2abc --json\n  seglog events ./log exec_2abc --from-seq 100   # events 100, 101, …"
)]
pub struct EventsArgs {
    /// A log directory.
    pub dir: PathBuf,
    /// The execution id.
    pub execution: String,
    /// Only events at this sequence or later (inclusive; sequences start at 1).
    #[arg(long, value_name = "SEQ")]
    pub from_seq: Option<u64>,
    /// JSON lines (one per event, payload decoded, with "schema" and "kind").
    #[arg(long)]
    pub json: bool,
    /// Every segment is sealed (a copy of a shipped log): no damage is a torn tail, so any is
    /// corruption, whether or not the execution is found.
    #[arg(skip)]
    pub all_sealed: bool,
}

pub fn run(args: &EventsArgs) -> Result<i32> {
    let mut worst = Health::Clean;
    let from_seq = args.from_seq.unwrap_or(0);
    // Events in offloaded segments are not in the directory: none are shown rather than a
    // list that silently starts late.
    let offloaded = offloaded_segments(&args.dir)?;
    if let Some(code) = refuse_offloaded(&offloaded, args, from_seq) {
        return Ok(code);
    }
    // Events before --from-seq in offloaded segments: the log holds the execution.
    let mut execution_found = offloaded
        .iter()
        .any(|o| !o.events_of(&args.execution).is_empty());
    if !args.json {
        crate::outln!("{:>6}  {:<27}  event", "seq", "timestamp (UTC)")?;
    }
    for_each_segment(&args.dir, |seg| {
        worst = match seg.health() {
            Health::TornTail if args.all_sealed => Health::Corrupt,
            health => worst.max(health),
        };
        for &off in &seg.analysis.record_offsets {
            let Some(r) = seg.analysis.record(&seg.bytes, off) else {
                continue;
            };
            if r.execution_id() != args.execution.as_bytes() {
                continue;
            }
            execution_found = true;
            for (i, p) in r.events().enumerate() {
                // A sequence past u64::MAX is not a real event (a crafted record).
                let Some(seq) = r.first_seq().checked_add(i as u64) else {
                    break;
                };
                if seq < from_seq {
                    continue;
                }
                crate::outln!("{}", EventLine::new(&r, seq, p).render(args.json)?)?;
            }
        }
        Ok(())
    })?;
    if !execution_found {
        eprintln!(
            "seglog: no events for execution \"{}\"",
            escape_str(&args.execution)
        );
    }
    match worst {
        Health::Corrupt => eprintln!(
            "seglog: the log is damaged: events after the damage are not shown; run `seglog verify` for details"
        ),
        Health::TornTail => eprintln!(
            "seglog: the last segment has a torn tail (unacknowledged bytes, not shown)"
        ),
        Health::Clean => {}
    }
    Ok(crate::exit::combine(worst, execution_found))
}

/// The exit status when some asked-for event is in an offloaded segment (or may be: its
/// checkpoint is not usable), after saying so on stderr; `None` when none is.
fn refuse_offloaded(offloaded: &[OffloadedView], args: &EventsArgs, from_seq: u64) -> Option<i32> {
    let mut missing: Option<(u64, u64)> = None;
    for o in offloaded {
        if o.checkpoint.is_none() {
            eprintln!(
                "seglog: offloaded segment {} has no usable checkpoint, so which events it holds is unknown; run `seglog verify`",
                o.segment.number
            );
            return Some(crate::exit::CORRUPT);
        }
        for (first, count) in o.events_of(&args.execution) {
            let last = first.saturating_add(u64::from(count)).saturating_sub(1);
            if count == 0 || last < from_seq {
                continue;
            }
            let from = first.max(from_seq);
            missing = Some(missing.map_or((from, last), |(a, b)| (a.min(from), b.max(last))));
        }
    }
    let (from, to) = missing?;
    eprintln!(
        "seglog: events {from}..={to} of execution \"{}\" are in offloaded segments (in object storage, not in this directory): pass --from-seq {} for the rest, or read them from the bucket (seglog remote dump <URL> --execution ...)",
        escape_str(&args.execution),
        to.saturating_add(1)
    );
    Some(crate::exit::ERROR)
}
