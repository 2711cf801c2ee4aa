//! R1: opening a log after its process died, when the last segment is a prepared one (zeroed
//! throughout, issue 13) against one that is not (preallocated, zeros written only a window
//! ahead of the tail): what recovery pays to look through the zeros past the end of data,
//! with the tail ending cleanly and with a torn write there (which makes recovery search the
//! rest of the file for a record that would prove the damage acknowledged).
//!
//! A child process (`seglog-bench crash-child`) writes 1,000 records, rolls (into the
//! prepared file when asked), writes 1,000 more (and the torn bytes when asked) and exits
//! without closing; the parent then times `SegmentLog::open` with the page cache as the
//! dead process left it (warm) and with the log's files evicted (cold). Every timed open has
//! its own crashed log: an open cuts what it reads.

use crate::cold::evict_tree;
use anyhow::{ensure, Context, Result};
use seglog_segment::format::EventBatch;
use seglog_segment::io::StdFs;
use seglog_segment::{SegmentLog, SegmentOptions};
use std::fmt::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RECORDS_PER_SEGMENT: usize = 1000;

fn options(prepared: bool) -> SegmentOptions {
    SegmentOptions {
        prepare_next_segment: prepared,
        ..SegmentOptions::default()
    }
}

/// The child's work: see the module's documentation. Never returns normally: the process
/// exits without dropping the log, as a crash would leave it.
pub fn child(dir: &Path, prepared: bool, torn: bool) -> Result<()> {
    let (log, _) = SegmentLog::open(StdFs, dir, options(prepared), &mut ())?;
    let payload = vec![0x5au8; 256];
    let batch = EventBatch {
        encoding: 0,
        execution_id: b"crash-open",
        tenant_id: b"bench",
        first_seq: 1,
        timestamp_unix_nanos: 0,
        payloads: &[&payload[..]],
    };
    for _ in 0..RECORDS_PER_SEGMENT {
        log.append(&batch)?;
    }
    if prepared {
        ensure!(
            log.prepare_next_segment_now(),
            "the next segment was not prepared"
        );
    }
    log.roll()?;
    for _ in 0..RECORDS_PER_SEGMENT {
        log.append(&batch)?;
    }
    if torn {
        let last = log.segments().pop().context("no segment")?;
        let file = std::fs::OpenOptions::new().write(true).open(&last.path)?;
        // Bytes that are no record: what a write the power cut tore leaves.
        file.write_all_at(&[0xab; 100], last.data_end)?;
        file.sync_data()?;
    }
    std::process::exit(0)
}

/// One crashed log in `dir`, then its timed open; with the bytes recovery read after the
/// end of data.
fn crashed_open(dir: &Path, prepared: bool, torn: bool, cold: bool) -> Result<(Duration, u64)> {
    let mut child = Command::new(std::env::current_exe()?);
    child.arg("crash-child").arg("--dir").arg(dir);
    if prepared {
        child.arg("--prepared");
    }
    if torn {
        child.arg("--torn");
    }
    let status = child.status()?;
    ensure!(status.success(), "the crashing child failed: {status}");
    if cold {
        evict_tree(dir)?;
    }
    let started = Instant::now();
    let (log, report) = SegmentLog::open(StdFs, dir, options(prepared), &mut ())?;
    let took = started.elapsed();
    ensure!(
        report.last_lsn >= 2 * RECORDS_PER_SEGMENT as u64,
        "records lost: last LSN {}",
        report.last_lsn
    );
    ensure!(
        report.torn_tail.is_some() == torn,
        "torn tail reported {:?}, expected torn = {torn}",
        report.torn_tail
    );
    log.close()?;
    Ok((took, report.bytes_checked_after_data))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// R1 in fresh directories under `base`, `runs` timed opens per cell; the report (markdown).
pub fn run(base: &Path, runs: usize) -> Result<String> {
    let tmp = tempfile::tempdir_in(base)?;
    let mut out = String::new();
    writeln!(out, "R1: `SegmentLog::open` after the writing process died (128 MiB segments, 2,000 records of 256 bytes in two segments; medians of {runs}):\n")?;
    writeln!(
        out,
        "| last segment | tail | warm open ms | cold open ms | bytes read after the data |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|")?;
    let mut n = 0;
    for prepared in [false, true] {
        for torn in [false, true] {
            let mut cells = Vec::new();
            let mut scanned = 0;
            for cold in [false, true] {
                let mut times = Vec::new();
                for _ in 0..runs {
                    n += 1;
                    let dir = tmp.path().join(format!("log-{n}"));
                    let (took, bytes) = crashed_open(&dir, prepared, torn, cold)?;
                    times.push(took);
                    scanned = bytes;
                    std::fs::remove_dir_all(&dir)?;
                }
                cells.push(median(times));
            }
            writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {scanned} |",
                if prepared {
                    "prepared (zeroed throughout)"
                } else {
                    "created at the roll (zeros a window ahead)"
                },
                if torn { "torn write" } else { "clean" },
                cells[0].as_secs_f64() * 1e3,
                cells[1].as_secs_f64() * 1e3,
            )?;
        }
    }
    Ok(out)
}
