//! The process the crash test kills: opens the log given on the command line and appends
//! from several threads until killed, printing one `ack` line per acknowledged append.
//! With `--compact`, one more thread writes short-lived `doomed-<k>` executions and erases
//! each with `Log::compact` (merging small segments too), printing `erased doomed-<k>` once
//! `compact` returns Ok. With `--global-reader`, one more thread reads the log in global
//! order from the start (`Log::read_global`) and follows it, printing a `seen` line per
//! record.
//!
//! Nothing here is expected to fail before the kill: the first error of any thread is printed
//! to stderr and ends the process with status 1, which the parent reports with that stderr.

use anyhow::Result;
use rand::Rng;
use seglog::compaction::policy;
use seglog::CompactOptions;
use seglog::Log;
use seglog_tests::{crash_options, doomed_marker, erased_line, own_payload, Ack, Seen};
use std::io::Write;

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: seglog-crash-child DIR"))?;
    let compact = std::env::args().any(|a| a == "--compact");
    let global_reader = std::env::args().any(|a| a == "--global-reader");
    let log = Log::open_blocking(&dir, crash_options())?;
    println!("ready");
    std::thread::scope(|s| {
        if compact {
            let log = log.clone();
            s.spawn(move || exit_on_error("the compactor", compactor(&log)));
        }
        if global_reader {
            let log = log.clone();
            s.spawn(move || exit_on_error("the global reader", read_globally(&log)));
        }
        for t in 0..8 {
            let log = log.clone();
            s.spawn(move || exit_on_error(&format!("appender {t}"), appender(&log, t)));
        }
    });
    Ok(())
}

/// Ends the process with status 1 and the error on stderr.
fn exit_on_error(what: &str, result: Result<()>) {
    if let Err(e) = result {
        eprintln!("seglog-crash-child: {what} failed: {e:#}");
        std::process::exit(1);
    }
}

/// Appends to its own execution `own-<t>` (single events and batches of 3) and to the
/// shared one, printing an `ack` line for each; forever.
fn appender(log: &Log, t: usize) -> Result<()> {
    let mut rng = rand::rng();
    let own = format!("own-{t}");
    loop {
        // This thread is the only writer of `own`, so it knows the next sequence.
        let next = log.count(&own)? + 1;
        let ack = if rng.random_bool(0.2) {
            let batch: Vec<String> = (0..3).map(|k| own_payload(&own, next + k)).collect();
            let first = log.append_batch_blocking(&own, "tenant", &batch)?;
            Ack {
                execution: own.clone(),
                first_seq: first,
                count: 3,
                payload: batch[0].clone(),
            }
        } else if rng.random_bool(0.5) {
            let payload = format!("shared-from-{t}-{}", rng.random::<u32>());
            let seq = log.append_blocking("shared", "tenant", payload.as_bytes())?;
            Ack {
                execution: "shared".into(),
                first_seq: seq,
                count: 1,
                payload,
            }
        } else {
            let payload = own_payload(&own, next);
            let seq = log.append_blocking(&own, "tenant", payload.as_bytes())?;
            Ack {
                execution: own.clone(),
                first_seq: seq,
                count: 1,
                payload,
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", ack.to_line())?;
        out.flush()?;
    }
}

/// Writes `doomed-<k>` (each run of the child starts its numbering at a random point, so
/// runs never reuse an id), erases it, reports it; forever.
fn compactor(log: &Log) -> Result<()> {
    let mut k: u64 = rand::rng().random();
    loop {
        let exec = format!("doomed-{k}");
        for s in 1..=10 {
            let payload = format!("{} {s} {}", doomed_marker(&exec), "d".repeat(200));
            log.append_blocking(&exec, "doomed", payload.as_bytes())?;
        }
        let view = log.compaction_view(false)?;
        let plan = policy::drop_executions(&view, [exec.as_str()])
            .and(policy::merge_small_segments(&view, 64 << 10, 256 << 10));
        log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", erased_line(&exec))?;
        out.flush()?;
        k = k.wrapping_add(1);
    }
}

/// Follows the log in global order from the start, printing a `seen` line per record;
/// forever.
fn read_globally(log: &Log) -> Result<()> {
    let mut after = 0;
    loop {
        let records = log.read_global(after, 256)?;
        if records.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        let mut out = std::io::stdout().lock();
        for r in records {
            let seen = Seen {
                lsn: r.lsn,
                execution: r.execution,
                first_seq: r.first_seq,
                count: r.payloads.len() as u64,
            };
            writeln!(out, "{}", seen.to_line())?;
            after = r.lsn;
        }
        out.flush()?;
    }
}
