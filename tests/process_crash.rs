//! Process crashes: a child appends from 8 threads and reports each acknowledgement; the
//! parent SIGKILLs it at a random moment, reopens the log and checks the contract:
//! every acknowledged event is there with its bytes, sequences are dense, batches whole.
//! Then it starts the child again on the same log, for many cycles.
//!
//! CI runs a short version; `SEGLOG_CRASH_CYCLES=500 cargo test -p seglog-tests --test
//! process_crash --release` runs a long one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::Rng;
use seglog::Log;
use seglog_tests::{crash_options, own_payload, Ack};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn cycles() -> usize {
    std::env::var("SEGLOG_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// Runs the child until a random moment, kills it, returns the acks it printed.
fn run_and_kill(dir: &std::path::Path, rng: &mut impl Rng) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seglog-crash-child"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait until the child has opened the log, then let it run a random while.
    let ready = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(ready, "ready");
    let run_for = Duration::from_millis(rng.random_range(20..400));
    let started = Instant::now();
    let mut acks = Vec::new();
    while started.elapsed() < run_for {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(5)) {
            acks.extend(Ack::parse(&line));
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines the child printed before dying are acknowledgements too.
    reader.join().unwrap();
    acks.extend(rx.try_iter().filter_map(|l| Ack::parse(&l)));
    acks
}

#[test]
fn acknowledged_appends_survive_sigkill_at_random_moments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut rng = rand::rng();
    let mut all_acks: Vec<Ack> = Vec::new();
    let mut total_acks = 0;
    for cycle in 0..cycles() {
        let acks = run_and_kill(&dir, &mut rng);
        total_acks += acks.len();
        all_acks.extend(acks);
        let log = Log::open_blocking(&dir, crash_options()).unwrap();
        for exec in log.list_executions("tenant", usize::MAX, 0).unwrap() {
            let events = log.read(&exec).unwrap();
            for (i, e) in events.iter().enumerate() {
                assert_eq!(e.seq, i as u64 + 1, "cycle {cycle}: {exec} has a hole");
                if exec.starts_with("own-") {
                    assert_eq!(
                        String::from_utf8_lossy(&e.payload),
                        own_payload(&exec, e.seq),
                        "cycle {cycle}: {exec} event {} has wrong bytes",
                        e.seq
                    );
                }
            }
        }
        for ack in &all_acks {
            let events = log
                .read_range(&ack.execution, ack.first_seq, ack.count as usize)
                .unwrap();
            assert_eq!(
                events.len() as u64,
                ack.count,
                "cycle {cycle}: acknowledged {ack:?} lost"
            );
            assert_eq!(
                String::from_utf8_lossy(&events[0].payload),
                ack.payload,
                "cycle {cycle}: {ack:?}"
            );
        }
        log.close().unwrap();
    }
    assert!(
        total_acks > 100,
        "the child acknowledged only {total_acks} appends"
    );
}
