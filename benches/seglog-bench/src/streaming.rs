//! S1–S5: enact-core's *streaming* `EventStore` (the runtime's event log), the incumbent
//! `JsonlEventStore` and `InMemoryEventStore` next to seglog's `SeglogStreamStore`, all
//! driven through `Arc<dyn EventStore>` on one tokio runtime:
//!
//! - S1, S2: closed-loop appends of ~256-byte events from 1 and 64 writers (tasks);
//! - S3: `get_by_execution` of a 1,000-event execution spread through an N-event log;
//!   every execution has one writer (see [`fill`]);
//! - S4: `get_after` of 10,000 events from the middle of that log;
//! - S5: opening the store again after N events (the first `latest_sequence` included).
//!
//! Not like for like, and said so in the report: seglog's appends are durable (fdatasync
//! before `append` returns); `JsonlEventStore` writes with `write` + `flush` and never
//! fsyncs (a power cut can take back acknowledged events); the in-memory store keeps
//! nothing.

use anyhow::Result;
use enact_core::kernel::{ExecutionContext, ExecutionEvent, ExecutionEventType};
use enact_core::kernel::{ExecutionId, TenantId};
use enact_core::streaming::{EventStore, InMemoryEventStore, JsonlEventStore};
use hdrhistogram::Histogram;
use seglog_eventstore::SeglogStreamStore;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
pub struct Shape {
    /// Seconds per append workload (S1, S2).
    pub seconds: f64,
    /// Events in the S3–S5 log.
    pub events: u64,
    /// Events of the execution S3 reads.
    pub long_execution: u64,
    /// Events S4 reads.
    pub get_after: usize,
    /// Only S2 (64 writers), only seglog: for a profiler.
    pub s2_seglog_only: bool,
}

const LONG: &str = "exec-long";
const SEGLOG: &str = "seglog (durable)";
const JSONL: &str = "JSONL (no fsync)";
const MEMORY: &str = "in-memory";

#[derive(Clone, Copy)]
enum Kind {
    Seglog,
    Jsonl,
    Memory,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Seglog, Kind::Jsonl, Kind::Memory];

    fn name(self) -> &'static str {
        match self {
            Kind::Seglog => SEGLOG,
            Kind::Jsonl => JSONL,
            Kind::Memory => MEMORY,
        }
    }

    /// A store over `dir` (made if missing; fresh or reopened).
    async fn open(self, dir: &Path) -> Result<(Arc<dyn EventStore>, Option<SeglogStreamStore>)> {
        Ok(match self {
            Kind::Seglog => {
                let mut options = seglog::Options::default();
                crate::peers::apply_engine_knobs!(crate::peers::EngineKnobs::from_env()?, options);
                let s = SeglogStreamStore::open_with(dir, options).await?;
                (Arc::new(s.clone()), Some(s))
            }
            Kind::Jsonl => (
                Arc::new(JsonlEventStore::new(dir.to_path_buf()).await?),
                None,
            ),
            Kind::Memory => (Arc::new(InMemoryEventStore::new()), None),
        })
    }
}

/// An event of about 256 bytes once encoded (JSON or MessagePack).
fn event(execution: &str, n: u64) -> ExecutionEvent {
    let mut ctx = ExecutionContext::new(ExecutionId::from_string(execution));
    ctx.tenant_id = Some(TenantId::from_string("bench"));
    ExecutionEvent::new(ExecutionEventType::ToolCallEnd, ctx)
        .with_duration(n % 1000)
        .with_payload(serde_json::json!({"n": n, "text": "x".repeat(96)}))
}

/// S1/S2: appends per second and latency percentiles (µs) from `writers` closed-loop tasks.
async fn appends(
    store: Arc<dyn EventStore>,
    writers: usize,
    seconds: f64,
) -> Result<(f64, [u64; 3])> {
    // Each task checks the deadline itself: the in-memory and JSONL stores never yield, so
    // with every worker busy a timer elsewhere would never fire.
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                // Each writer has its executions: `JsonlEventStore` corrupts a file that two
                // tasks append to at once (the line and its newline are two writes).
                let e = event(&format!("exec-{w}-{}", n % 16), n);
                let t = Instant::now();
                store.append(e).await?;
                h.record(t.elapsed().as_micros() as u64)?;
                n += 1;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(h)
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await??)?;
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((
        rate,
        [
            all.value_at_quantile(0.5),
            all.value_at_quantile(0.99),
            all.value_at_quantile(0.999),
        ],
    ))
}

/// Appends `events` events from 64 tasks: the long execution's spread through the log, the
/// others over 1,024 executions. Each execution has one writer (task `n % 64` writes event
/// `n`; the long execution's events are multiples of 64): `JsonlEventStore` corrupts a file
/// that two tasks append to at once.
async fn fill(store: &Arc<dyn EventStore>, shape: &Shape) -> Result<()> {
    let writers = 64u64;
    let every = (shape.events / shape.long_execution.max(1) / writers).max(1) * writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let (events, long) = (shape.events, shape.long_execution);
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while n < events {
                let exec = if n % every == 0 && n / every < long {
                    LONG.to_owned()
                } else {
                    format!("exec-{}", n % 1024)
                };
                store.append(event(&exec, n)).await?;
                n += writers;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The median of `runs` timings of `f`.
async fn median<F, Fut>(runs: usize, mut f: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// S3–S5 for one store: (get_by_execution, get_after, open, first get_after after open).
async fn reads(kind: Kind, dir: &Path, shape: &Shape) -> Result<[Option<Duration>; 4]> {
    let (store, seglog) = kind.open(dir).await?;
    fill(&store, shape).await?;
    let long = ExecutionId::from_string(LONG);
    let by_execution = median(5, || async {
        let n = store.get_by_execution(&long).await?.len() as u64;
        anyhow::ensure!(n == shape.long_execution, "read {n} events of {LONG}");
        Ok(())
    })
    .await?;
    let middle = store.latest_sequence().await? / 2;
    let want = shape.get_after.min((shape.events / 2) as usize);
    let get_after = median(5, || async {
        let n = store.get_after(middle, shape.get_after).await?.len();
        anyhow::ensure!(n == want, "get_after read {n} events, wanted {want}");
        Ok(())
    })
    .await?;
    if let Some(s) = seglog {
        s.close()?;
    }
    drop(store);
    if matches!(kind, Kind::Memory) {
        return Ok([Some(by_execution), Some(get_after), None, None]);
    }
    // Reopen three times: the open (with the first `latest_sequence`) and, apart, the first
    // `get_after` of the reopened store (seglog builds its LSN samples then).
    let (mut opens, mut firsts) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        let (store, seglog) = kind.open(dir).await?;
        store.latest_sequence().await?;
        opens.push(t.elapsed());
        let t = Instant::now();
        store.get_after(middle, shape.get_after).await?;
        firsts.push(t.elapsed());
        if let Some(s) = seglog {
            s.close()?;
        }
    }
    opens.sort();
    firsts.sort();
    let (open, first_after_open) = (opens[1], firsts[1]);
    Ok([
        Some(by_execution),
        Some(get_after),
        Some(open),
        Some(first_after_open),
    ])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > Duration::ZERO => {
            format!("{:.1}×", b.as_secs_f64() / a.as_secs_f64())
        }
        _ => "–".into(),
    }
}

/// Runs S1–S5 in fresh directories under `base`; returns the report (markdown).
pub fn run(base: &Path, shape: &Shape) -> Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let tmp = tempfile::tempdir_in(base)?;
        let dir = |name: &str, kind: Kind| -> PathBuf {
            tmp.path().join(format!("{name}-{}", kind.name().split(' ').next().unwrap_or("x")))
        };
        let mut out = String::new();
        writeln!(out, "enact-core streaming EventStore, through `Arc<dyn EventStore>`; seglog's appends are durable (fdatasync), JSONL's are not (write + flush, no fsync), in-memory keeps nothing.\n")?;
        writeln!(out, "| workload | store | appends/s | p50 µs | p99 µs | p99.9 µs |")?;
        writeln!(out, "|---|---|---:|---:|---:|---:|")?;
        for (label, writers) in [("S1", 1usize), ("S2", 64)] {
            for kind in Kind::ALL {
                if shape.s2_seglog_only && (label != "S2" || !matches!(kind, Kind::Seglog)) {
                    continue;
                }
                let (store, seglog) = kind.open(&dir(label, kind)).await?;
                let (rate, [p50, p99, p999]) = appends(store, writers, shape.seconds).await?;
                if let Some(s) = seglog {
                    if std::env::var_os("SEGLOG_BENCH_STATS").is_some() {
                        let st = s.log().stats();
                        eprintln!(
                            "{label} seglog: {} commit rounds, mean group {:.1} (p50 {}, largest {}), fdatasync mean {} µs",
                            st.commits, st.mean_group_size, st.group_size.p50, st.largest_group, st.fsync_mean_us
                        );
                    }
                    s.close()?;
                }
                writeln!(out, "| {label} {writers} writer(s) | {} | {rate:.0} | {p50} | {p99} | {p999} |", kind.name())?;
            }
        }
        if shape.s2_seglog_only {
            return Ok(out);
        }
        writeln!(out, "\n{} events, {}-event execution, get_after of {} from the middle (medians):\n", shape.events, shape.long_execution, shape.get_after)?;
        writeln!(out, "| store | S3 get_by_execution | S4 get_after | S5 open | get_after first after open |")?;
        writeln!(out, "|---|---:|---:|---:|---:|")?;
        let mut results = Vec::new();
        for kind in Kind::ALL {
            let r = reads(kind, &dir("S3", kind), shape).await?;
            writeln!(out, "| {} | {} | {} | {} | {} |", kind.name(), ms(r[0]), ms(r[1]), ms(r[2]), ms(r[3]))?;
            results.push(r);
        }
        writeln!(
            out,
            "\nseglog vs JSONL: get_by_execution {}, get_after {}, open {} faster",
            ratio(results[0][0], results[1][0]),
            ratio(results[0][1], results[1][1]),
            ratio(results[0][2], results[1][2]),
        )?;
        Ok(out)
    })
}
