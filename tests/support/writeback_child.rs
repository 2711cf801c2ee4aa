//! The process of the failed-writeback test: opens the log named on the command line, then
//! appends on command from stdin and reports every acknowledgement and failure on stdout.
//! The protocol is `seglog_tests::writeback_protocol`.

use anyhow::Result;
use seglog::Log;
use seglog_tests::writeback_protocol::{
    big_payload, failed_line, ready_line, writeback_options, Opened, BIG,
};
use seglog_tests::{own_payload, Ack};
use std::io::{BufRead, Write};

/// Bound of `until-failure`: 4,096 appends of 32 KiB (128 MiB), more than any test's disk.
const MAX_BIG_APPENDS: u64 = 4096;

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: seglog-writeback-child DIR [no-zeroing]"))?;
    let mut options = writeback_options();
    // `no-zeroing`: appends write into unprovisioned space, so the writeback that fails
    // is the append's own (with zeros ahead, the zeroing thread's fails first).
    if std::env::args().nth(2).as_deref() == Some("no-zeroing") {
        options.zero_ahead_bytes = 0;
    }
    let log = match Log::open_blocking(&dir, options) {
        Ok(log) => log,
        Err(e) => {
            println!("open-failed {e}");
            return Ok(());
        }
    };
    let opened = Opened {
        torn_tail_bytes: log.stats().recovery.torn_tail_bytes,
        big_events: log.count(BIG)?,
    };
    println!("{}", ready_line(opened));
    for command in std::io::stdin().lock().lines() {
        let command = command?;
        let words: Vec<&str> = command.split(' ').collect();
        match words.as_slice() {
            ["append", execution, n] => {
                for _ in 0..n.parse::<u64>()? {
                    let next = log.count(execution)? + 1;
                    if !append(&log, execution, &own_payload(execution, next))? {
                        break;
                    }
                }
            }
            ["until-failure"] => {
                let mut failed = false;
                for _ in 0..MAX_BIG_APPENDS {
                    let next = log.count(BIG)? + 1;
                    if !append(&log, BIG, &big_payload(next))? {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    let line = match log.append_blocking(BIG, "tenant", b"after-the-failure") {
                        Ok(seq) => format!("then ok {seq}"),
                        Err(e) => format!("then {}", failed_line(&e)),
                    };
                    println!("{line}");
                }
            }
            _ => anyhow::bail!("unknown command {command:?}"),
        }
        println!("done");
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// One append; prints its ack or its failure. False when it failed.
fn append(log: &Log, execution: &str, payload: &str) -> Result<bool> {
    let mut out = std::io::stdout().lock();
    match log.append_blocking(execution, "tenant", payload.as_bytes()) {
        Ok(seq) => {
            let ack = Ack {
                execution: execution.to_owned(),
                first_seq: seq,
                count: 1,
                payload: payload.to_owned(),
            };
            writeln!(out, "{}", ack.to_line())?;
            Ok(true)
        }
        Err(e) => {
            writeln!(out, "{}", failed_line(&e))?;
            Ok(false)
        }
    }
}
