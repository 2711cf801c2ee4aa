//! `seglog verify`: check every record and checkpoint; exit 0 clean, 1 torn tail, 2 corruption.
//! It is always the deep check: every record of every segment is read and checksummed (bit
//! rot in a sealed segment that a checkpoint covers is found here, not only when a reader
//! trips over it), and each sealed segment's checkpoint is compared with its records entry by
//! entry. `Log::scrub` is the same check from inside a running application.

use crate::logdir::{checkpoint_state, read_segment, segment_paths, CheckpointState, Health};
use crate::output::{escape_path, progress, Paint};
use anyhow::Result;
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

pub fn run(args: &VerifyArgs) -> Result<i32> {
    let paint = Paint::detect();
    let paths = segment_paths(&args.dir)?;
    let bar = progress(paths.len() as u64, "verify");
    let (mut worst, mut records, mut bytes, mut prev_lsn) = (Health::Clean, 0u64, 0u64, 0u64);
    let mut first_problem: Option<String> = None;
    let mut lines = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let seg = read_segment(p, prev_lsn, i + 1 == paths.len())?;
        prev_lsn = prev_lsn.max(seg.analysis.last_lsn);
        let file = p
            .file_name()
            .map(|n| escape_path(std::path::Path::new(n)))
            .unwrap_or_default();
        let health = seg.health();
        worst = worst.max(health);
        records += seg.analysis.record_offsets.len() as u64;
        bytes += seg.analysis.data_end;
        let status = match (&seg.analysis.header, &seg.analysis.damage) {
            (Err(h), _) => paint.bad(&format!("CORRUPT: header: {h}")),
            (Ok(_), None) => paint.good("ok"),
            (Ok(_), Some(d)) if health == Health::TornTail => {
                paint.warn(&format!("torn tail at {} ({})", d.offset, d.defect))
            }
            (Ok(_), Some(d)) => match d.later_durable_record {
                Some((at, lsn)) => paint.bad(&format!(
                    "CORRUPT at {}: {} (LSN {lsn} at {at} proves it was durable)",
                    d.offset, d.defect
                )),
                None => paint.bad(&format!(
                    "CORRUPT at {}: {} (sealed segment)",
                    d.offset, d.defect
                )),
            },
        };
        if health != Health::Clean {
            let what = match (&seg.analysis.header, &seg.analysis.damage) {
                (Err(h), _) => format!("unreadable header: {h}"),
                (Ok(_), Some(d)) => format!(
                    "{} at offset {}: {}",
                    if health == Health::TornTail {
                        "torn tail"
                    } else {
                        "corruption"
                    },
                    d.offset,
                    d.defect
                ),
                (Ok(_), None) => "damaged".to_string(),
            };
            first_problem.get_or_insert(format!("{file}: {what}"));
        }
        lines.push(format!(
            "{file}  seg {:>4}  records {:>8}  intact through {:>10} of {:>10}  {status}",
            seg.segment_number().unwrap_or(0),
            seg.analysis.record_offsets.len(),
            seg.analysis.data_end,
            seg.bytes.len()
        ));
        if i + 1 < paths.len() {
            let cp = match checkpoint_state(&args.dir, &seg) {
                CheckpointState::Valid(n) => paint.good(&format!("ok ({n} records)")),
                CheckpointState::Missing => paint.dim("none (the segment is scanned on open)"),
                CheckpointState::Stale(r) => paint.dim(&format!("stale, ignored ({r})")),
                CheckpointState::Damaged(r) => {
                    worst = worst.max(Health::Corrupt);
                    first_problem.get_or_insert(format!("checkpoint of {file}: {r}"));
                    paint.bad(&format!("DAMAGED: {r}"))
                }
            };
            lines.push(format!("    checkpoint: {cp}"));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // The verdict is the exit status: it stands even if the reader of stdout went away.
    for l in lines {
        crate::output::ignore_broken_pipe(crate::outln!("{l}"))?;
    }
    let verdict = match worst {
        Health::Clean => paint.good("clean"),
        Health::TornTail => {
            paint.warn("torn tail only (unacknowledged bytes; the next open cuts them)")
        }
        Health::Corrupt => paint.bad("CORRUPTION FOUND"),
    };
    crate::output::ignore_broken_pipe(crate::outln!(
        "{} segments, {records} records, {bytes} bytes: {verdict}",
        paths.len()
    ))?;
    if let Some(p) = first_problem {
        eprintln!("seglog: {p}");
    }
    Ok(worst.exit_code())
}
