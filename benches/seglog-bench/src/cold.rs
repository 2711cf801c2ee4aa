//! W6/W7 from a cold page cache: what an agent runtime pays when it restarts and resumes an
//! execution. Every file of the log is fsynced and dropped from the page cache
//! (`POSIX_FADV_DONTNEED`) after the log is closed; then the log is opened and one execution
//! read, each timed. SQLite (WAL, primary key (execution, seq)) holding the same events is the
//! peer, evicted and measured the same way in the same rounds, the three contestants
//! alternating (A B C, C B A, …). The block device's read counters bracket each step, as
//! evidence of how much was read.

use crate::usage::{DevCounters, Device};
use anyhow::{Context, Result};
use enact_core::kernel::persistence::EventStore;
use enact_core::kernel::ExecutionId;
use rusqlite::{params, Connection};
use seglog::{Log, Options};
use seglog_eventstore::SeglogEventStore;
use std::path::Path;
use std::time::{Duration, Instant};

/// Fsyncs every regular file under `dir` (recursively) and drops its pages from the page
/// cache. Pages still mapped by a live map stay cached, so close everything first.
pub fn evict_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            evict_tree(&entry.path())?;
        } else if kind.is_file() {
            let file = std::fs::File::open(entry.path())?;
            file.sync_all()?;
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
        }
    }
    Ok(())
}

/// SQLite's file, with the table the append peer uses (WITHOUT ROWID, primary key
/// (execution, seq)), filled in transactions of 10,000 rows; closing the connection
/// checkpoints the WAL into the database file.
pub fn build_sqlite(
    path: &Path,
    rows: impl FnOnce(&mut dyn FnMut(&str, &[u8]) -> Result<()>) -> Result<()>,
) -> Result<()> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE events (execution TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
         PRIMARY KEY (execution, seq)) WITHOUT ROWID; BEGIN;",
    )?;
    let mut next = std::collections::HashMap::<String, i64>::new();
    let mut in_tx = 0;
    {
        let mut insert =
            conn.prepare("INSERT INTO events (execution, seq, payload) VALUES (?1, ?2, ?3)")?;
        rows(&mut |execution, payload| {
            let seq = next.entry(execution.to_owned()).or_insert(0);
            *seq += 1;
            insert.execute(params![execution, *seq, payload])?;
            in_tx += 1;
            if in_tx == 10_000 {
                conn.execute_batch("COMMIT; BEGIN;")?;
                in_tx = 0;
            }
            Ok(())
        })?;
    }
    conn.execute_batch("COMMIT;")?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

/// Opens SQLite as the append peer does (WAL, `synchronous=FULL`).
pub fn open_sqlite(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Every event of `execution` from SQLite, in order.
pub fn read_sqlite(conn: &Connection, execution: &str) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, payload FROM events WHERE execution = ?1 ORDER BY seq")?;
    let rows = stmt
        .query_map(params![execution], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Where the logs are and what to read.
pub struct Setup<'a> {
    /// The seglog log (MessagePack enact events).
    pub seglog_dir: &'a Path,
    /// The directory holding SQLite's database (and, while open, its WAL).
    pub sqlite_dir: &'a Path,
    /// SQLite's database file.
    pub sqlite_file: &'a Path,
    /// The execution read back.
    pub execution: &'a str,
    /// Its number of events (each contestant's read is checked against it).
    pub events: usize,
}

/// One contestant's cold figures over the rounds.
#[derive(Default)]
pub struct Figures {
    pub open: Vec<Duration>,
    pub read: Vec<Duration>,
    /// Device reads (I/Os, bytes) during the open and during the read, per round.
    pub open_dev: Vec<(u64, u64)>,
    pub read_dev: Vec<(u64, u64)>,
}

impl Figures {
    fn push(
        &mut self,
        open: Duration,
        read: Duration,
        open_dev: DevCounters,
        read_dev: DevCounters,
    ) {
        let io = |d: DevCounters| (d.read_ios.unwrap_or(0), d.read_sectors.unwrap_or(0) * 512);
        self.open.push(open);
        self.read.push(read);
        self.open_dev.push(io(open_dev));
        self.read_dev.push(io(read_dev));
    }
}

/// The cold figures of seglog through `Log::read`, through the EventStore trait, and of
/// SQLite.
pub struct Cold {
    pub log: Figures,
    pub store: Figures,
    pub sqlite: Figures,
}

#[derive(Clone, Copy)]
enum Contestant {
    Log,
    Store,
    Sqlite,
}

fn one_round(
    setup: &Setup<'_>,
    who: Contestant,
    device: &Device,
    figures: &mut Cold,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let dir = match who {
        Contestant::Sqlite => setup.sqlite_dir,
        Contestant::Log | Contestant::Store => setup.seglog_dir,
    };
    evict_tree(dir)?;
    let d0 = device.sample();
    let t = Instant::now();
    let (open, read, n) = match who {
        Contestant::Log | Contestant::Store => {
            let log = Log::open_blocking(setup.seglog_dir, Options::default())?;
            let open = t.elapsed();
            let d1 = device.sample();
            let t = Instant::now();
            let n = if let Contestant::Store = who {
                let store = SeglogEventStore::from_log(log.clone());
                runtime
                    .block_on(store.load_events(&ExecutionId::from_string(setup.execution)))?
                    .len()
            } else {
                log.read(setup.execution)?.len()
            };
            let read = t.elapsed();
            // Sampled before the close: a close writes (and may read) files of its own,
            // such as the last segment's checkpoint (format.md §5.1).
            let d2 = device.sample();
            log.close()?;
            ((open, d1), (read, d2), n)
        }
        Contestant::Sqlite => {
            let conn = open_sqlite(setup.sqlite_file)?;
            let open = t.elapsed();
            let d1 = device.sample();
            let t = Instant::now();
            let n = read_sqlite(&conn, setup.execution)?.len();
            let read = t.elapsed();
            let d2 = device.sample();
            conn.close().map_err(|(_, e)| e)?;
            ((open, d1), (read, d2), n)
        }
    };
    let (read, d2) = read;
    anyhow::ensure!(
        n == setup.events,
        "cold read returned {n} events, expected {}",
        setup.events
    );
    let (open, d1) = open;
    let target = match who {
        Contestant::Log => &mut figures.log,
        Contestant::Store => &mut figures.store,
        Contestant::Sqlite => &mut figures.sqlite,
    };
    target.push(open, read, d1.since(d0), d2.since(d1));
    Ok(())
}

/// `rounds` cold rounds of each contestant, alternating their order every round.
pub fn run(setup: &Setup<'_>, rounds: usize, device: &Device) -> Result<Cold> {
    let mut cold = Cold {
        log: Figures::default(),
        store: Figures::default(),
        sqlite: Figures::default(),
    };
    let mut order = [Contestant::Log, Contestant::Store, Contestant::Sqlite];
    for _ in 0..rounds {
        for &who in &order {
            one_round(setup, who, device, &mut cold).context("cold round")?;
        }
        order.reverse();
    }
    Ok(cold)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The median of `v` (the upper one of an even count).
pub fn median_of<T: Ord + Copy>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

fn dev(v: &[(u64, u64)]) -> String {
    let (ios, bytes) = median_of(v);
    format!("{ios} reads, {:.1} MiB", bytes as f64 / 1048576.0)
}

fn ratio(a: &[Duration], b: &[Duration]) -> f64 {
    median_of(a).as_secs_f64() / median_of(b).as_secs_f64()
}

/// The cold figures as a markdown table: medians over the rounds, the device's reads during
/// each step (median), and the ratios the targets are stated in.
pub fn table(cold: &Cold, rounds: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Cold page cache (every file fsynced and evicted before each open; medians of {rounds} rounds, contestants alternating):\n"
    );
    let _ = writeln!(
        out,
        "| figure | seglog `Log::read` | seglog via EventStore | SQLite | Log ÷ SQLite | EventStore ÷ Log |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| W6 open, cold | {} | {} | {} | {:.2} | |",
        ms(median_of(&cold.log.open)),
        ms(median_of(&cold.store.open)),
        ms(median_of(&cold.sqlite.open)),
        ratio(&cold.log.open, &cold.sqlite.open)
    );
    let _ = writeln!(
        out,
        "| W7 read, cold (after the cold open) | {} | {} | {} | {:.2} | {:.2} |",
        ms(median_of(&cold.log.read)),
        ms(median_of(&cold.store.read)),
        ms(median_of(&cold.sqlite.read)),
        ratio(&cold.log.read, &cold.sqlite.read),
        ratio(&cold.store.read, &cold.log.read)
    );
    let _ = writeln!(
        out,
        "| device reads during the open | {} | {} | {} | | |",
        dev(&cold.log.open_dev),
        dev(&cold.store.open_dev),
        dev(&cold.sqlite.open_dev)
    );
    let _ = writeln!(
        out,
        "| device reads during the read | {} | {} | {} | | |",
        dev(&cold.log.read_dev),
        dev(&cold.store.read_dev),
        dev(&cold.sqlite.read_dev)
    );
    let all = |f: &Figures| {
        f.read
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "\nEvery cold read, ms: Log [{}]; EventStore [{}]; SQLite [{}]",
        all(&cold.log),
        all(&cold.store),
        all(&cold.sqlite)
    );
    out
}
