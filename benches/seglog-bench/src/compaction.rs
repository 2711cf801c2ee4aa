//! C1: compaction rewrite throughput. Builds a log of sealed 128 MiB segments, then times
//! `Log::compact` in two shapes — erasing one tenant of ten (most records copied, a tenth
//! dropped) and merging every sealed segment (everything copied) — with the page cache warm
//! (segments just written) and, where the process may drop caches, cold. The peer is the
//! disk itself: sequential write bandwidth, probed in the same run.

use anyhow::{Context, Result};
use seglog::compaction::{policy, Plan};
use seglog::{CheckpointMode, CompactOptions, Log, Options, SyncMode};
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

const TENANTS: u64 = 10;

/// 128 MiB segments, or smaller for small logs so that there are sealed ones to compact.
fn options(bytes: u64) -> Options {
    Options::default()
        .segment_size_bytes((bytes / 8).clamp(1 << 20, 128 << 20))
        .checkpoints(CheckpointMode::Inline)
}

fn build(dir: &Path, bytes: u64, payload_bytes: usize) -> Result<()> {
    let log = Log::open_blocking(dir, options(bytes).sync_mode(SyncMode::Never))?;
    let payload = vec![b'c'; payload_bytes];
    let per_record = payload_bytes as u64 + 48 + 4 + 24;
    for i in 0..bytes / per_record {
        let tenant = format!("tenant-{}", i % TENANTS);
        let exec = format!("exec-{:06}", i % 10_000);
        log.append_blocking(&exec, &tenant, &payload)?;
    }
    log.close()?;
    Ok(())
}

/// True when the page cache can be dropped (root on Linux).
fn drop_caches() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

struct Row {
    shape: &'static str,
    cache: &'static str,
    input_mb: f64,
    output_mb: f64,
    seconds: f64,
}

fn run_once(
    base: &Path,
    bytes: u64,
    payload_bytes: usize,
    shape: &'static str,
    cold: bool,
) -> Result<Row> {
    let tmp = tempfile::tempdir_in(base)?;
    build(tmp.path(), bytes, payload_bytes)?;
    let log = Log::open_blocking(tmp.path(), options(bytes))?;
    let view = log.compaction_view(false)?;
    let plan: Plan = match shape {
        "erase 1 tenant of 10" => policy::drop_tenant(&view, "tenant-3"),
        _ => policy::rewrite_all_sealed(&view),
    };
    if cold && !drop_caches() {
        anyhow::bail!("cannot drop the page cache");
    }
    let t = Instant::now();
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .context("compaction")?;
    let seconds = t.elapsed().as_secs_f64();
    log.close()?;
    Ok(Row {
        shape,
        cache: if cold { "cold" } else { "warm" },
        input_mb: report.rewrite.input_bytes as f64 / 1e6,
        output_mb: report.rewrite.output_bytes as f64 / 1e6,
        seconds,
    })
}

/// Runs C1 and returns a markdown table (medians of `runs`). `cold` adds runs with the page
/// cache dropped first (where permitted).
pub fn run(
    base: &Path,
    bytes: u64,
    payload_bytes: usize,
    runs: usize,
    cold: bool,
) -> Result<String> {
    let cold_ok = cold && drop_caches();
    let mut out = String::new();
    writeln!(
        out,
        "| shape | page cache | input | output | time (median) | read MB/s | write MB/s |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for shape in ["erase 1 tenant of 10", "merge every sealed segment"] {
        for cold in [false, true] {
            if cold && !cold_ok {
                continue;
            }
            let mut rows = Vec::new();
            for _ in 0..runs {
                rows.push(run_once(base, bytes, payload_bytes, shape, cold)?);
            }
            rows.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            let r = &rows[rows.len() / 2];
            writeln!(
                out,
                "| {} | {} | {:.0} MB | {:.0} MB | {:.2} s | {:.0} | {:.0} |",
                r.shape,
                r.cache,
                r.input_mb,
                r.output_mb,
                r.seconds,
                r.input_mb / r.seconds,
                r.output_mb / r.seconds
            )?;
        }
    }
    Ok(out)
}
