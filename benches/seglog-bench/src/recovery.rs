//! W6–W8: build the same log in seglog, raft-engine and SQLite, then time reopening each
//! (seglog with and without index checkpoints), reading one 1,000-event execution after
//! reopen (seglog through the EventStore trait, decoding included), and seglog's index
//! memory: first with a warm page cache (everything just written or read), then cold
//! (every file evicted before the open: see [`crate::cold`]), against SQLite.

use crate::peers::raft_engine_peer::{entry, open_engine, BenchEntries};
use crate::peers::seglog_trait::event_of;
use anyhow::{Context, Result};
use enact_core::kernel::persistence::EventStore;
use enact_core::kernel::ExecutionId;
use raft_engine::LogBatch;
use seglog::{CheckpointMode, Log, Options};
use seglog_eventstore::{codec, SeglogEventStore};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The shape of the log.
pub struct Shape {
    pub events: u64,
    pub executions: u64,
    pub payload_bytes: usize,
    /// Events of the execution read back (spread through the whole log).
    pub long_execution: u64,
}

const LONG: &str = "long-execution";
const LONG_GROUP: u64 = u64::MAX / 2;

/// Calls `f(execution, event_number)` for every event, in log order; `None` is the long one.
fn for_each_event(shape: &Shape, mut f: impl FnMut(Option<u64>) -> Result<()>) -> Result<()> {
    let others = shape.events.saturating_sub(shape.long_execution);
    let every = (others / shape.long_execution.max(1)).max(1);
    for n in 0..others {
        if n % every == 0 && n / every < shape.long_execution {
            f(None)?;
        }
        f(Some(n % shape.executions))?;
    }
    Ok(())
}

fn build_seglog(dir: &Path, shape: &Shape) -> Result<u64> {
    // A bulk load: buffered appends, one sync at the end (close).
    let log = Log::open_blocking(dir, Options::default())?;
    let encoded = codec::encode(&event_of(&vec![b'x'; shape.payload_bytes]))?;
    for_each_event(shape, |exec| {
        let id = execution_name(exec);
        log.append_encoded_buffered(
            &id,
            "tenant",
            None,
            codec::ENCODING_MSGPACK_NAMED,
            &[&encoded],
        )?;
        Ok(())
    })?;
    let bytes = log.segments().iter().map(|s| s.data_end).sum();
    log.close()?;
    Ok(bytes)
}

fn build_raft_engine(dir: &Path, shape: &Shape) -> Result<()> {
    let engine = open_engine(dir)?;
    let payload = vec![b'x'; shape.payload_bytes];
    let mut next = std::collections::HashMap::<u64, u64>::new();
    let mut batch = LogBatch::default();
    let mut pending = 0;
    for_each_event(shape, |exec| {
        let group = exec.map_or(LONG_GROUP, |e| e + 1);
        let index = next.entry(group).or_insert(1);
        batch.add_entries::<BenchEntries>(group, &[entry(*index, &payload)])?;
        *index += 1;
        pending += 1;
        if pending == 256 {
            engine.write(&mut batch, false)?;
            pending = 0;
        }
        Ok(())
    })?;
    engine.write(&mut batch, true)?;
    Ok(())
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn execution_name(exec: Option<u64>) -> String {
    exec.map_or_else(|| LONG.to_string(), |e| format!("exec-{e:06}"))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn build_sqlite(file: &Path, shape: &Shape) -> Result<()> {
    let encoded = codec::encode(&event_of(&vec![b'x'; shape.payload_bytes]))?;
    crate::cold::build_sqlite(file, |insert| {
        for_each_event(shape, |exec| insert(&execution_name(exec), &encoded))
    })
}

/// Runs W6–W8 and returns a markdown table.
pub fn run(base: &Path, shape: &Shape, runs: usize) -> Result<String> {
    let tmp = tempfile::tempdir_in(base)?;
    let (seg_dir, raft_dir) = (tmp.path().join("seglog"), tmp.path().join("raft"));
    let sqlite_dir = tmp.path().join("sqlite");
    let sqlite_file = sqlite_dir.join("events.sqlite");
    std::fs::create_dir_all(&raft_dir)?;
    std::fs::create_dir_all(&sqlite_dir)?;
    let t = Instant::now();
    let bytes = build_seglog(&seg_dir, shape)?;
    eprintln!(
        "built seglog log ({} MiB) in {:.1?}",
        bytes >> 20,
        t.elapsed()
    );
    let t = Instant::now();
    build_raft_engine(&raft_dir, shape)?;
    eprintln!("built raft-engine log in {:.1?}", t.elapsed());
    let t = Instant::now();
    build_sqlite(&sqlite_file, shape)?;
    eprintln!("built SQLite database in {:.1?}", t.elapsed());
    // One open to write any missing checkpoint; then the timed ones, alternating systems.
    Log::open_blocking(&seg_dir, Options::default())?.close()?;
    let (mut with_ckpt, mut without, mut raft) = (Vec::new(), Vec::new(), Vec::new());
    let mut recovery = None;
    for _ in 0..runs {
        let t = Instant::now();
        let log = Log::open_blocking(&seg_dir, Options::default())?;
        with_ckpt.push(t.elapsed());
        recovery = Some(log.stats().recovery);
        log.close()?;
        let t = Instant::now();
        let engine = open_engine(&raft_dir)?;
        raft.push(t.elapsed());
        drop(engine);
        let t = Instant::now();
        let log = Log::open_blocking(
            &seg_dir,
            Options::default().checkpoints(CheckpointMode::Off),
        )?;
        without.push(t.elapsed());
        log.close()?;
        // An open without checkpoints removes them all (they may hold erased ids); the next
        // timed open must find them again: an untimed open rewrites them (at its close).
        drop(log);
        Log::open_blocking(&seg_dir, Options::default())?.close()?;
    }
    let recovery = recovery.context("no run")?;
    let (with_ckpt, without, raft) = (median(with_ckpt), median(without), median(raft));

    // W7: read the long execution after a reopen.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let log = Log::open_blocking(&seg_dir, Options::default())?;
    let (index_bytes, indexed, executions) = {
        let s = log.stats();
        (s.index_memory_bytes, s.indexed_events, s.executions)
    };
    let store = SeglogEventStore::from_log(log.clone());
    let exec = ExecutionId::from_string(LONG);
    let (mut via_trait, mut raw) = (Vec::new(), Vec::new());
    let mut n = 0;
    for _ in 0..runs.max(7) {
        let t = Instant::now();
        n = runtime.block_on(store.load_events(&exec))?.len();
        via_trait.push(t.elapsed());
        let t = Instant::now();
        log.read(LONG)?;
        raw.push(t.elapsed());
    }
    log.close()?;
    // No map of the log may outlive this point: mapped pages cannot be evicted (the cold
    // rounds below depend on it).
    drop(store);
    drop(log);
    let engine = open_engine(&raft_dir)?;
    let mut raft_read = Vec::new();
    let mut raft_n = 0;
    for _ in 0..runs.max(7) {
        let mut out = Vec::new();
        let t = Instant::now();
        engine.fetch_entries_to::<BenchEntries>(
            LONG_GROUP,
            1,
            shape.long_execution + 1,
            None,
            &mut out,
        )?;
        raft_read.push(t.elapsed());
        raft_n = out.len();
    }
    drop(engine);
    let sqlite = crate::cold::open_sqlite(&sqlite_file)?;
    let mut sqlite_read = Vec::new();
    for _ in 0..runs.max(7) {
        let t = Instant::now();
        crate::cold::read_sqlite(&sqlite, LONG)?;
        sqlite_read.push(t.elapsed());
    }
    drop(sqlite);
    let (via_trait, raw, raft_read) = (median(via_trait), median(raw), median(raft_read));
    let sqlite_read = median(sqlite_read);

    // W6/W7 cold: every file evicted before each open.
    let device = crate::usage::Device::of(base);
    let setup = crate::cold::Setup {
        seglog_dir: &seg_dir,
        sqlite_dir: &sqlite_dir,
        sqlite_file: &sqlite_file,
        execution: LONG,
        events: n,
    };
    let cold = crate::cold::run(&setup, runs.max(3), &device)?;
    // What the disk allows a scattered read of that many records, for the ratio.
    let segment_files: Vec<PathBuf> = std::fs::read_dir(&seg_dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    // A file system without O_DIRECT (tmpfs before Linux 6.6) has no floor to report.
    let floor = crate::probe::random_read_floor(&segment_files, n, FLOOR_THREADS);

    // The same after locality compaction: every sealed segment rewritten with each
    // execution's records together (issue 14), then the same cold rounds. The active
    // segment is never rewritten, so the long execution's last records (~18% of them) stay
    // scattered there.
    let (report, clustering) = cluster(&seg_dir, false)?;
    let cold_clustered = crate::cold::run(&setup, runs.max(3), &device)?;
    // Then as a user who wants the finished execution clustered whole does it: seal the
    // active segment first (`Log::roll`, as RocksDB's `CompactRange` flushes the memtable
    // first), and cluster again (only the segment just sealed is rewritten).
    let (rolled_report, rolled_clustering) = cluster(&seg_dir, true)?;
    let cold_rolled = crate::cold::run(&setup, runs.max(3), &device)?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | seglog | raft-engine | seglog ÷ raft-engine |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let _ = writeln!(out, "| log | {} events × {} B over {} executions, {} MiB | same entries, one raft group per execution | |", shape.events, shape.payload_bytes, shape.executions, bytes >> 20);
    let _ = writeln!(out, "| W6 open, with checkpoints (median of {runs}) | {} ({} checkpoints, {} KiB scanned) | {} | {:.2} |", ms(with_ckpt), recovery.checkpoints_loaded, recovery.bytes_scanned >> 10, ms(raft), with_ckpt.as_secs_f64() / raft.as_secs_f64());
    let _ = writeln!(
        out,
        "| W6 open, full scan (median of {runs}) | {} | {} | {:.2} |",
        ms(without),
        ms(raft),
        without.as_secs_f64() / raft.as_secs_f64()
    );
    let _ = writeln!(out, "| W7 read a {n}-event execution, through the EventStore trait (decoding) | {} | {} ({raft_n} entries) | {:.2} |", ms(via_trait), ms(raft_read), via_trait.as_secs_f64() / raft_read.as_secs_f64());
    let _ = writeln!(
        out,
        "| W7 read, raw `Log::read` (no decoding) | {} | | {:.2} |",
        ms(raw),
        raw.as_secs_f64() / raft_read.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| W7 read, warm, SQLite (same events; `SELECT … WHERE execution = ? ORDER BY seq`) | | | seglog raw ÷ SQLite {:.2} ({}) |",
        raw.as_secs_f64() / sqlite_read.as_secs_f64(),
        ms(sqlite_read)
    );
    let _ = writeln!(out, "| W8 index memory | {:.2} B/event ({:.1} MiB for {indexed} events, {executions} executions) | | |", index_bytes as f64 / indexed.max(1) as f64, index_bytes as f64 / 1048576.0);
    out.push('\n');
    out.push_str(&crate::cold::table(&cold, runs.max(3)));
    match floor {
        Ok(floor) => {
            let _ = writeln!(
                out,
                "\nThe disk's floor for this read: {n} random 4 KiB reads (`O_DIRECT`, {FLOOR_THREADS} threads) over the log's segment files take {} (median of 3; {:.0} reads/s). The cold `Log::read` above is {:.2}× that floor; SQLite's read is {:.2}× it.",
                ms(floor),
                n as f64 / floor.as_secs_f64(),
                crate::cold::median_of(&cold.log.read).as_secs_f64() / floor.as_secs_f64(),
                crate::cold::median_of(&cold.sqlite.read).as_secs_f64() / floor.as_secs_f64(),
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "\nThe disk's random-read floor was not measured: {e:#}"
            );
        }
    }
    let _ = writeln!(
        out,
        "\nAfter locality compaction (`policy::cluster_sealed_segments`: {} sealed segments, {} MiB, rewritten in {}; the active segment is never rewritten):\n",
        report.rewrite.input_segments,
        report.rewrite.input_bytes >> 20,
        ms(clustering)
    );
    out.push_str(&crate::cold::table(&cold_clustered, runs.max(3)));
    let _ = writeln!(
        out,
        "\nAfter sealing the active segment (`Log::roll`) and clustering it too ({} segment, {} MiB, rewritten in {}): every record of the long execution is in a clustered segment:\n",
        rolled_report.rewrite.input_segments,
        rolled_report.rewrite.input_bytes >> 20,
        ms(rolled_clustering)
    );
    out.push_str(&crate::cold::table(&cold_rolled, runs.max(3)));
    Ok(out)
}

/// Threads of the random-read floor: enough to keep the disk's queue full (this VM's disk
/// reaches its most reads per second from ~32 on).
const FLOOR_THREADS: usize = 64;

/// Opens the log, seals its active segment first if `roll_first`, clusters every sealed
/// segment not clustered yet (`policy::cluster_sealed_segments`), closes it; returns the
/// compaction's report and how long it took.
fn cluster(dir: &Path, roll_first: bool) -> Result<(seglog::CompactionReport, Duration)> {
    let log = Log::open_blocking(dir, Options::default())?;
    if roll_first {
        log.roll_blocking()?;
    }
    let plan = seglog::compaction::policy::cluster_sealed_segments(&log.compaction_view(false)?);
    let t = Instant::now();
    let report = log.compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {})?;
    let took = t.elapsed();
    log.close()?;
    // IMPORTANT: the handle goes before the cold rounds: pages its maps hold stay cached
    // whatever the eviction asks, and the reads would not be cold.
    drop(log);
    eprintln!("locality compaction (roll first: {roll_first}): {report:?}");
    Ok((report, took))
}
