//! `seglog demo`: the main job on an embedded default. Writes a multi-tenant Enact workload
//! through `SeglogEventStore` from many concurrent tasks, reports append latency and
//! throughput, reopens (recovery time), verifies, and shows a dump excerpt and one execution.
//!
//! It clears only a directory it made itself ([`MARKER_FILE_NAME`]), holding nothing but a
//! demo's files, whose log no process has open.

use crate::output::{escape_path, progress, Paint};
use anyhow::{bail, Context, Result};
use enact_core::kernel::persistence::{EventStore, StorageBackend};
use enact_core::kernel::{ExecutionId, TenantId};
use hdrhistogram::Histogram;
use seglog::Options;
use seglog_eventstore::{sample, SeglogEventStore};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Options of `seglog demo`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "A new or empty directory is marked as the demo's own (a SEGLOG_DEMO file). A later run\n\
    replaces the log only in such a directory, holding nothing else, that no process has open;\n\
    any other directory is refused and left untouched.\n\n\
    Examples:\n  seglog demo                 # in $TMPDIR/seglog-demo, replaced on each run\n  \
    seglog demo ./my-demo --runs 5000 --tasks 128"
)]
pub struct DemoArgs {
    /// Log directory (default: seglog-demo in the temp dir; see below for what is cleared)
    pub dir: Option<PathBuf>,
    /// Agent runs (executions) to write.
    #[arg(long, default_value_t = 2000)]
    pub runs: u64,
    /// Concurrent tasks writing them.
    #[arg(long, default_value_t = 64)]
    pub tasks: u64,
    /// Tenants the runs belong to.
    #[arg(long, default_value_t = 8)]
    pub tenants: u64,
}

/// The file that makes a directory the demo's own: written when the demo starts in a new or
/// empty directory, required before the demo clears one. Without it the demo clears nothing:
/// a log's files (`LOCK`, `*.seg`, `*.idx`) alone do not say whose log it is.
pub const MARKER_FILE_NAME: &str = "SEGLOG_DEMO";

/// Files a demo run leaves, besides its marker.
fn is_demo_file(name: &str) -> bool {
    name == seglog_segment::format::LOCK_FILE_NAME
        || name.ends_with(".seg")
        || name.ends_with(".idx")
        || name.ends_with(".idx.tmp")
        // The writer's next segment, left by a demo that was killed (docs/format.md §1).
        || name == seglog_segment::format::PREPARED_SEGMENT_FILE_NAME
        // A salvage's copy, left by a repair that was cut short (docs/format.md §1).
        || name == seglog_segment::format::SALVAGE_TEMP_FILE_NAME
        // The writer's tail bound (docs/format.md §3.6).
        || name == seglog_segment::format::TAIL_BOUND_FILE_NAME
        // The log's identity (docs/format.md §9), and its temp file if a demo was killed
        // while making it.
        || name == seglog_segment::format::LOG_ID_FILE_NAME
        || name == seglog_segment::format::LOG_ID_TEMP_FILE_NAME
}

/// Makes `dir` an empty demo directory: creates and marks a new or empty one; clears one the
/// demo marked earlier, only if it holds nothing else and no process has the log open.
fn prepare(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            return mark(dir);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        Ok(entries) => entries,
    };
    let mut files = Vec::new();
    let mut marked = false;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && name == MARKER_FILE_NAME {
            marked = true;
        } else {
            files.push((name, is_file));
        }
    }
    if !marked {
        if files.is_empty() {
            return mark(dir);
        }
        bail!(
            "{} was not made by `seglog demo` (it has no {MARKER_FILE_NAME} file), so the demo will not clear it; choose another directory",
            dir.display()
        );
    }
    if let Some((name, _)) = files.iter().find(|(n, f)| !(*f && is_demo_file(n))) {
        bail!(
            "{} holds {name:?}, which is not part of a seglog demo; choose another directory",
            dir.display()
        );
    }
    // Held while clearing, so no writer can open the log meanwhile.
    let _lock =
        crate::lockfile::lock_exclusive(dir).context("the demo will not clear a log in use")?;
    for (name, _) in &files {
        if name == seglog_segment::format::LOCK_FILE_NAME {
            continue;
        }
        let path = dir.join(name);
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

fn mark(dir: &Path) -> Result<()> {
    let path = dir.join(MARKER_FILE_NAME);
    std::fs::write(
        &path,
        "Made by `seglog demo`, which replaces this directory's log on each run.\n",
    )
    .with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(args: &DemoArgs) -> Result<i32> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("seglog-demo"));
    prepare(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(args, &dir))
}

async fn demo(args: &DemoArgs, dir: &Path) -> Result<i32> {
    let paint = Paint::detect();
    // Small segments so the demo shows rollover and checkpoints.
    let options = Options::default().segment_size_bytes(4 << 20);
    crate::outln!(
        "seglog demo: {} agent runs for {} tenants from {} concurrent tasks, into {}",
        args.runs,
        args.tenants,
        args.tasks,
        escape_path(dir)
    )?;
    let store = Arc::new(SeglogEventStore::open_with(dir, options.clone()).await?);
    let total_events: u64 = (0..args.runs)
        .map(|r| sample::agent_run(r).len() as u64)
        .sum();
    let bar = progress(total_events, "events");
    let next_run = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.tasks.max(1) {
        let (store, next_run, latencies, bar) = (
            store.clone(),
            next_run.clone(),
            latencies.clone(),
            bar.clone(),
        );
        let (runs, tenants) = (args.runs, args.tenants.max(1));
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            loop {
                let run = next_run.fetch_add(1, Ordering::Relaxed);
                if run >= runs {
                    break;
                }
                let exec = ExecutionId::from_string(format!("exec_demo_{run:06}"));
                let tenant = TenantId::from_string(format!("tenant_{}", run % tenants));
                for event in sample::agent_run(run) {
                    let t = Instant::now();
                    store.append(&exec, &tenant, event).await?;
                    local.saturating_record(t.elapsed().as_micros() as u64);
                    bar.inc(1);
                }
            }
            latencies
                .lock()
                .map_err(|_| anyhow::anyhow!("latency histogram lock poisoned"))?
                .add(local)?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let stats = store.log().stats();
    let h = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("latency histogram lock poisoned"))?
        .clone();
    crate::outln!(
        "wrote {total_events} events ({}) in {}: {} events/s, {:.1} appends per fsync",
        indicatif::HumanBytes(stats.bytes_written),
        crate::output::duration(elapsed),
        paint.good(&format!(
            "{:.0}",
            total_events as f64 / elapsed.as_secs_f64()
        )),
        stats.mean_group_size
    )?;
    crate::outln!(
        "durable append latency: p50 {}  p99 {}  p99.9 {}  max {}   (fdatasync p50 {})",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        us(stats.fsync_us.p50)
    )?;
    store.shutdown().await?;

    let t = Instant::now();
    let store = SeglogEventStore::open_with(dir, options).await?;
    let r = store.log().stats().recovery;
    crate::outln!(
        "reopened in {}: {} segments, {} from checkpoints, {} scanned",
        crate::output::duration(t.elapsed()),
        store.log().segments().len(),
        r.checkpoints_loaded,
        indicatif::HumanBytes(r.bytes_scanned)
    )?;
    let exec = ExecutionId::from_string("exec_demo_000007");
    let events = store.load_events(&exec).await?;
    store.shutdown().await?;

    crate::outln!("\n$ seglog verify {}", escape_path(dir))?;
    let code = crate::commands::verify::run(&crate::commands::verify::VerifyArgs {
        dir: dir.to_path_buf(),
        json: false,
    })?;
    crate::outln!("\n$ seglog dump {} --to-lsn 6", escape_path(dir))?;
    crate::commands::dump::dump(
        dir,
        &crate::commands::dump::DumpOptions {
            to_lsn: Some(6),
            ..Default::default()
        },
    )?;
    crate::outln!(
        "\nexecution {exec} ({} events, replayed through the EventStore trait):",
        events.len()
    )?;
    for e in events.iter().take(12) {
        crate::outln!(
            "  #{:<3} {}  {}",
            e.sequence,
            e.timestamp.format("%Y-%m-%d %H:%M:%S%.6f"),
            sample::label(&e.event)
        )?;
    }
    if events.len() > 12 {
        crate::outln!("  … {} more", events.len() - 12)?;
    }
    Ok(code)
}

/// A latency in microseconds, in humantime's style.
fn us(micros: u64) -> String {
    crate::output::duration(std::time::Duration::from_micros(micros))
}
