//! Review 111: automatic retention plans outside the index's write lock (18f735e,
//! `EarlyPlan` in crates/seglog/src/compact.rs, `policy_view`) and keeps the plan at step 1
//! only if every execution it drops still has the `last_seq` of the view. These tests race
//! appends against passes (retention by age and by size) and close against passes, and
//! check, from the outside, what a pass may and may not erase. None failed; kept as guards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::sizes::local_bytes;
use seglog::io::sim::SimFs;
use seglog::{Error, Log, Options, Retention};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

fn open(options: Options) -> Log<SimFs> {
    Log::open_with_fs(SimFs::new(), "/log", options).unwrap()
}

/// Tiny xorshift, for jitter.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Many records in "bulk-*" executions (kept recent by a toucher), so that a pass's view
/// (copy under the read lock, sort after it) takes a while: a wide window between the early
/// view and step 1.
fn fill_bulk(log: &Log<SimFs>, executions: usize, records: usize) {
    for i in 0..records {
        log.append_batch_buffered(
            &format!("bulk-{}", i % executions),
            "bulk",
            &[b"b".as_slice()],
        )
        .unwrap();
    }
    log.sync_blocking().unwrap();
}

fn keep_bulk_recent(
    log: Log<SimFs>,
    executions: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            for i in 0..executions {
                log.append_batch_buffered(&format!("bulk-{i}"), "bulk", &[b"again".as_slice()])
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    })
}

/// Retention by age, an append to an execution just as it reaches `max_age` (durable and
/// buffered, expecting its last sequence so that an erased execution is never re-created):
/// a pass must never erase an execution whose last acknowledged append started less than
/// `max_age` before the erasure was observed.
#[test]
fn age_retention_never_erases_an_execution_appended_to_within_max_age() {
    let max_age = Duration::from_millis(250);
    let log = open(
        Options::default().segment_size_bytes(256 << 10).retention(
            Retention::default()
                .max_age(max_age)
                .interval(Duration::from_millis(2)),
        ),
    );
    fill_bulk(&log, 8, 150_000);
    let stop = Arc::new(AtomicBool::new(false));
    let bulk = keep_bulk_recent(log.clone(), 8, stop.clone());
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let erased = Arc::new(AtomicU64::new(0));
    let touched = Arc::new(AtomicU64::new(0));
    let mut touchers = Vec::new();
    for t in 0..2u64 {
        let (log, stop, violations, erased, touched) = (
            log.clone(),
            stop.clone(),
            violations.clone(),
            erased.clone(),
            touched.clone(),
        );
        touchers.push(std::thread::spawn(move || {
            let buffered = t == 1;
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1);
            // (id, generation, events, start of the last acknowledged append, due)
            let mut xs: Vec<(String, u32, u64, Instant, Duration)> = Vec::new();
            for i in 0..12 {
                let id = format!("x{t}-{i}-0");
                let start = Instant::now();
                log.append_blocking(&id, "x", b"1").unwrap();
                xs.push((id, 0, 1, start, max_age));
            }
            while !stop.load(Ordering::Acquire) {
                for (i, x) in xs.iter_mut().enumerate() {
                    // Due around max_age: 235..275 ms after the last append started.
                    if x.3.elapsed() < x.4 {
                        continue;
                    }
                    let start = Instant::now();
                    let r = if buffered {
                        log.append_encoded_buffered(&x.0, "x", Some(x.2), 0, &[b"t".as_slice()])
                    } else {
                        log.append_expecting_blocking(&x.0, "x", x.2, &[b"t".as_slice()])
                    };
                    let observed = Instant::now();
                    match r {
                        Ok(seq) => {
                            assert_eq!(seq, x.2 + 1);
                            x.2 += 1;
                            x.3 = start;
                            touched.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::Conflict { .. } | Error::Erasing { .. }) => {
                            erased.fetch_add(1, Ordering::Relaxed);
                            let since = observed - x.3;
                            if since + Duration::from_millis(20) < max_age {
                                violations.lock().unwrap().push(format!(
                                    "{} ({} events) erased {since:?} after its last \
                                     acknowledged append started (max_age {max_age:?}, {})",
                                    x.0,
                                    x.2,
                                    if buffered { "buffered" } else { "durable" }
                                ));
                            }
                            x.1 += 1;
                            x.0 = format!("x{t}-{i}-{}", x.1);
                            let start = Instant::now();
                            log.append_blocking(&x.0, "x", b"1").unwrap();
                            x.2 = 1;
                            x.3 = start;
                        }
                        Err(e) => panic!("{e}"),
                    }
                    x.4 = Duration::from_millis(235 + next(&mut rng) % 40);
                }
                std::thread::sleep(Duration::from_micros(300));
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Release);
    for t in touchers {
        t.join().unwrap();
    }
    bulk.join().unwrap();
    let stats = log.stats().retention;
    log.close().unwrap();
    let violations = violations.lock().unwrap();
    eprintln!(
        "passes {}, executions dropped {}, erasures seen {}, appends {}",
        stats.passes,
        stats.executions_dropped,
        erased.load(Ordering::Relaxed),
        touched.load(Ordering::Relaxed)
    );
    assert!(violations.is_empty(), "{violations:#?}\n{stats:?}");
    assert_eq!(stats.failures, 0, "{stats:?}");
}

/// One execution of the size test: events, and its last acknowledged append's start and
/// return; dead once an append found it erased.
#[derive(Clone)]
struct Tracked {
    events: u64,
    start: Instant,
    returned: Instant,
    dead: bool,
}

/// Retention by size while executions keep being created and the oldest live ones are
/// appended to (each touch makes it the newest, and lands between passes' early views and
/// their step 1s). Checks: every execution is whole or gone; whatever is gone, every
/// execution whose last append returned before the gone one's last append started is gone
/// too (oldest first); and the log never shrinks far below the limit (a pass frees what
/// the limit asks, not much more).
#[test]
fn size_retention_drops_oldest_first_and_not_far_more_under_appends() {
    const PAYLOAD: usize = 100;
    const PER_EXECUTION: usize = 10;
    let limit: u64 = 120 << 10;
    let log = open(
        Options::default().segment_size_bytes(16 << 10).retention(
            Retention::default()
                .max_log_bytes(limit)
                .interval(Duration::from_millis(1)),
        ),
    );
    let tracked: Arc<Mutex<Vec<(String, Tracked)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let payload = vec![b'p'; PAYLOAD];
    let creator = {
        let (log, tracked, stop, payload) =
            (log.clone(), tracked.clone(), stop.clone(), payload.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                let id = format!("e-{n:06}");
                n += 1;
                let start = Instant::now();
                let batch: Vec<&[u8]> = (0..PER_EXECUTION).map(|_| payload.as_slice()).collect();
                log.append_batch_blocking(&id, "t", &batch).unwrap();
                let returned = Instant::now();
                tracked.lock().unwrap().push((
                    id,
                    Tracked {
                        events: PER_EXECUTION as u64,
                        start,
                        returned,
                        dead: false,
                    },
                ));
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let toucher = {
        let (log, tracked, stop, payload) =
            (log.clone(), tracked.clone(), stop.clone(), payload.clone());
        std::thread::spawn(move || {
            let mut rng = 77u64;
            while !stop.load(Ordering::Acquire) {
                // The oldest live execution (by last return), or one of the few oldest.
                let pick = {
                    let t = tracked.lock().unwrap();
                    let mut live: Vec<(usize, Instant)> = t
                        .iter()
                        .enumerate()
                        .filter(|(_, (_, x))| !x.dead)
                        .map(|(i, (_, x))| (i, x.returned))
                        .collect();
                    live.sort_by_key(|l| l.1);
                    live.get((next(&mut rng) % 3) as usize)
                        .map(|&(i, _)| (i, t[i].0.clone(), t[i].1.events))
                };
                let Some((i, id, events)) = pick else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                let start = Instant::now();
                let r = log.append_expecting_blocking(&id, "t", events, &[payload.as_slice()]);
                let returned = Instant::now();
                let mut t = tracked.lock().unwrap();
                match r {
                    Ok(_) => {
                        let x = &mut t[i].1;
                        x.events += 1;
                        x.start = start;
                        x.returned = returned;
                    }
                    Err(Error::Conflict { .. } | Error::Erasing { .. }) => t[i].1.dead = true,
                    Err(e) => panic!("{e}"),
                }
                drop(t);
                std::thread::sleep(Duration::from_micros(500 + next(&mut rng) % 1500));
            }
        })
    };
    // Sample the log's size: once over the limit, never far under it again.
    let mut min_after_limit = u64::MAX;
    let mut reached = false;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let b = local_bytes(&log);
        if b > limit {
            reached = true;
        }
        if reached {
            min_after_limit = min_after_limit.min(b);
        }
        std::thread::sleep(Duration::from_micros(300));
    }
    stop.store(true, Ordering::Release);
    creator.join().unwrap();
    toucher.join().unwrap();
    let stats = log.stats().retention;
    let tracked = tracked.lock().unwrap().clone();
    let mut gone: Vec<(String, Tracked)> = Vec::new();
    let mut kept: Vec<(String, Tracked)> = Vec::new();
    for (id, x) in tracked {
        let n = log.read(&id).unwrap().len() as u64;
        if n == 0 {
            gone.push((id, x));
        } else {
            assert_eq!(
                n, x.events,
                "{id} partly erased ({n} of {} events)",
                x.events
            );
            assert!(!x.dead, "{id} seen erased yet present");
            kept.push((id, x));
        }
    }
    let mut wrong = Vec::new();
    for (g, gx) in &gone {
        for (k, kx) in &kept {
            if kx.returned < gx.start {
                wrong.push(format!(
                    "{g} erased (last append started {:?} after {k}'s returned) while {k} kept",
                    gx.start - kx.returned
                ));
            }
        }
    }
    let exec_bytes = ((PAYLOAD + 64) * (PER_EXECUTION + 40)) as u64;
    eprintln!(
        "passes {}, dropped {}, gone {}, kept {}, min size after the limit {} (limit {limit})",
        stats.passes,
        stats.executions_dropped,
        gone.len(),
        kept.len(),
        min_after_limit
    );
    log.close().unwrap();
    assert!(
        wrong.is_empty(),
        "{} violations: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(stats.executions_dropped > 10, "{stats:?}");
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert!(
        !reached || min_after_limit + 3 * exec_bytes + (16 << 10) >= limit,
        "the log fell to {min_after_limit} bytes under a limit of {limit}"
    );
}

/// Close (and dropping the last handle) while passes over a log of many records are
/// copying/sorting their views, with appends going on: never hangs.
#[test]
fn close_or_drop_during_passes_over_a_large_log_does_not_hang() {
    let fs = SimFs::new();
    {
        let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
        for i in 0..200_000u32 {
            log.append_batch_buffered(&format!("e-{}", i % 500), "t", &[b"x".as_slice()])
                .unwrap();
        }
        log.close().unwrap();
    }
    for round in 0..6u64 {
        let log = Log::open_with_fs(
            fs.clone(),
            "/log",
            Options::default().retention(
                Retention::default()
                    // Far above the log: every pass views and plans, none drops.
                    .max_log_bytes(u64::MAX / 2)
                    .max_age(Duration::from_secs(3600))
                    .interval(Duration::from_millis(1)),
            ),
        )
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let appender = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Acquire) {
                    match log.append_batch_buffered(
                        &format!("e-{}", n % 500),
                        "t",
                        &[b"y".as_slice()],
                    ) {
                        Ok(_) => {}
                        Err(Error::Closed) => return,
                        Err(e) => panic!("{e}"),
                    }
                    n += 1;
                }
            })
        };
        std::thread::sleep(Duration::from_millis(20 + round * 7));
        let (tx, rx) = mpsc::channel();
        let closer = log.clone();
        std::thread::spawn(move || {
            let r = if round % 2 == 0 {
                closer.close().map_err(|e| e.to_string())
            } else {
                drop(closer);
                Ok(())
            };
            let _ = tx.send(r);
        });
        if round % 2 == 1 {
            // The last handles go while a pass may hold one.
            stop.store(true, Ordering::Release);
            appender.join().unwrap();
            drop(log);
            // Reopening must succeed soon (the pass ends and lets go of the directory).
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match Log::open_with_fs(fs.clone(), "/log", Options::default()) {
                    Ok(l) => {
                        l.close().unwrap();
                        break;
                    }
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("round {round}: the dropped log kept its directory: {e}"),
                }
            }
            rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
        } else {
            rx.recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("round {round}: close hung during retention passes"))
                .unwrap();
            stop.store(true, Ordering::Release);
            appender.join().unwrap();
        }
    }
}
