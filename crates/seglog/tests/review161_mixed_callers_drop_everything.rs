//! Review 161 (held): every kind of caller at once on one log — spawned tasks (some appends
//! cancelled at once with `timeout(ZERO)`, some after a few microseconds), root futures of
//! `Handle::block_on` from plain threads (multi-thread runtime: they sleep on the bell and
//! lead in place), `append_blocking` from plain threads and from `spawn_blocking` on a pool
//! capped at 2 threads — then every handle dropped (no close), the runtime dropped, and the
//! directory reopened at once. Nothing may hang (40 s limit per flavour), the reopen must not
//! find the directory locked, and every acknowledged append must read back. On both runtime
//! flavours (on a current-thread runtime the plain threads' `block_on` roots register wakers
//! and spawned tasks' rounds go to the round runner). Held on the current code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Acked = Arc<Mutex<Vec<(String, u64, Vec<u8>)>>>;

fn record(acked: &Acked, exec: &str, seq: u64, payload: Vec<u8>) {
    acked.lock().unwrap().push((exec.to_string(), seq, payload));
}

fn body(rt: tokio::runtime::Runtime, iter: u64) {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::default().segment_size_bytes(1 << 20);
    let log = Log::open_blocking(dir.path(), options()).unwrap();
    let acked: Acked = Arc::default();
    let mut threads = Vec::new();
    // Plain threads: block_on roots and blocking appends.
    for t in 0..2usize {
        let log = log.clone();
        let acked = acked.clone();
        let handle = rt.handle().clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..30usize {
                let exec = format!("root{t}");
                let payload = vec![b'r'; 100 + i];
                if let Ok(seq) = handle.block_on(log.append(&exec, "t", &payload)) {
                    record(&acked, &exec, seq, payload);
                }
                let exec = format!("thread{t}");
                let payload = vec![b'b'; 100 + i];
                if let Ok(seq) = log.append_blocking(&exec, "t", &payload) {
                    record(&acked, &exec, seq, payload);
                }
            }
        }));
    }
    rt.block_on({
        let log = log.clone();
        let acked = acked.clone();
        async move {
            let mut tasks = Vec::new();
            for t in 0..4usize {
                let log = log.clone();
                let acked = acked.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..40usize {
                        let exec = format!("task{t}");
                        let payload = vec![b'a' + t as u8; 200 + i];
                        let limit = match (i + t) % 5 {
                            0 => Some(Duration::ZERO),
                            1 => Some(Duration::from_micros(30 * (iter % 7))),
                            _ => None,
                        };
                        let fut = log.append(&exec, "t", &payload);
                        let r = match limit {
                            Some(d) => match tokio::time::timeout(d, fut).await {
                                Ok(r) => r,
                                Err(_) => continue,
                            },
                            None => fut.await,
                        };
                        if let Ok(seq) = r {
                            record(&acked, &exec, seq, payload);
                        }
                    }
                }));
            }
            for t in 0..2usize {
                let log = log.clone();
                let acked = acked.clone();
                tasks.push(tokio::task::spawn_blocking(move || {
                    for i in 0..20usize {
                        let exec = format!("pool{t}");
                        let payload = vec![b'p'; 50 + i];
                        if let Ok(seq) = log.append_blocking(&exec, "t", &payload) {
                            record(&acked, &exec, seq, payload);
                        }
                    }
                }));
            }
            // The last task's append is given up at once: its round may still run when
            // every handle is gone.
            let last = log.clone();
            tasks.push(tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::ZERO, last.append("gone", "t", &[7; 4096]))
                    .await;
            }));
            for task in tasks {
                task.await.unwrap();
            }
        }
    });
    for t in threads {
        t.join().unwrap();
    }
    drop(log);
    drop(rt);
    let log = Log::open_blocking(dir.path(), options())
        .expect("reopen right after the log and its runtime were dropped");
    for (exec, seq, payload) in acked.lock().unwrap().iter() {
        let events = log.read(exec).unwrap();
        let e = events
            .iter()
            .find(|e| e.seq == *seq)
            .unwrap_or_else(|| panic!("acknowledged {exec}/{seq} lost"));
        assert_eq!(&e.payload[..], &payload[..]);
    }
    log.close().unwrap();
}

fn with_timeout(name: &'static str, make: fn() -> tokio::runtime::Runtime) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        for iter in 0..6 {
            body(make(), iter);
        }
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(40)) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => t.join().unwrap(),
        Err(_) => panic!("{name}: hung"),
    }
}

#[test]
fn mixed_callers_multi_thread() {
    with_timeout("multi-thread", || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
}

#[test]
fn mixed_callers_current_thread() {
    with_timeout("current-thread", || {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
}
