//! `seglog events`: one execution's events, decoded.

use crate::logdir::{for_each_segment, Health};
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
}

pub fn run(args: &EventsArgs) -> Result<i32> {
    let mut execution_found = false;
    let mut worst = Health::Clean;
    let from_seq = args.from_seq.unwrap_or(0);
    if !args.json {
        crate::outln!("{:>6}  {:<27}  event", "seq", "timestamp (UTC)")?;
    }
    for_each_segment(&args.dir, |seg| {
        worst = worst.max(seg.health());
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
