//! SIGKILL through enact-core's streaming `EventStore` (`SeglogStreamStore`): a child process
//! appends `ExecutionEvent`s from 8 tasks and follows the store with `get_after`, and is
//! killed at a random moment, again and again on the same directory. After each kill the
//! reopened store must hold every event whose `append` returned, under the sequence it
//! returned, and its global order (`get_after(0, …)`) must start with exactly the events the
//! child's reader saw, in the order and with the sequences it saw them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::streaming::EventStore;
use rand::Rng;
use seglog_eventstore::SeglogStreamStore;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kill cycles (`SEGLOG_CRASH_CYCLES` for a longer run).
fn cycles() -> usize {
    std::env::var("SEGLOG_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// What one run of the child printed before it was killed: `(sequence, event id)` pairs.
#[derive(Default)]
struct Printed {
    acked: Vec<(u64, String)>,
    seen: Vec<(u64, String)>,
}

/// Runs the child on `dir` for about `run_for` after it is ready (and at least until it has
/// acknowledged something), then SIGKILLs it.
fn run_and_kill(dir: &std::path::Path, run_for: Duration) -> Printed {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seglog-stream-child"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let lines = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Printed::default();
    let mut ready_at = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the child made no progress");
        if ready_at.is_some_and(|t: Instant| t.elapsed() >= run_for) && !printed.acked.is_empty() {
            break;
        }
        let Ok(line) = rx.recv_timeout(Duration::from_millis(5)) else {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the child exited ({status}) before the kill: {err}");
            }
            continue;
        };
        record(&mut printed, &line, &mut ready_at);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    lines.join().unwrap();
    // Lines the child printed before it died count too: each was printed after its event.
    while let Ok(line) = rx.try_recv() {
        record(&mut printed, &line, &mut ready_at);
    }
    printed
}

fn record(printed: &mut Printed, line: &str, ready_at: &mut Option<Instant>) {
    let mut words = line.split(' ');
    let (kind, seq, id) = (words.next(), words.next(), words.next());
    match (kind, seq.and_then(|s| s.parse().ok()), id) {
        (Some("ready"), _, _) => *ready_at = Some(Instant::now()),
        (Some("ack"), Some(seq), Some(id)) => printed.acked.push((seq, id.to_owned())),
        (Some("seen"), Some(seq), Some(id)) => printed.seen.push((seq, id.to_owned())),
        // A line cut by the kill.
        _ => {}
    }
}

#[test]
fn acknowledged_streaming_appends_and_the_order_readers_saw_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stream");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = rand::rng();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut seen_total = 0;
    for cycle in 0..cycles() {
        let run_for = Duration::from_millis(rng.random_range(20..300));
        let printed = run_and_kill(&dir, run_for);
        acked.extend(printed.acked.iter().map(|(seq, id)| (id.clone(), *seq)));
        let what = format!("cycle {cycle} (killed after {run_for:?})");
        let recovered: Vec<(u64, String)> = runtime.block_on(async {
            let store = SeglogStreamStore::open_with(&dir, seglog_tests::crash_options())
                .await
                .unwrap_or_else(|e| panic!("{what}: the store does not open: {e}"));
            let entries = store.get_after(0, usize::MAX).await.unwrap();
            let latest = store.latest_sequence().await.unwrap();
            assert_eq!(
                entries.last().map_or(0, |e| e.sequence),
                latest,
                "{what}: latest_sequence is not the last event's"
            );
            store.close().unwrap();
            entries
                .into_iter()
                .map(|e| (e.sequence, e.event.event_id))
                .collect()
        });
        assert!(
            recovered.windows(2).all(|w| w[0].0 < w[1].0),
            "{what}: sequences do not increase"
        );
        let by_id: HashMap<&str, u64> = recovered.iter().map(|(s, id)| (id.as_str(), *s)).collect();
        for (id, seq) in &acked {
            assert_eq!(
                by_id.get(id.as_str()),
                Some(seq),
                "{what}: acknowledged event {id} (sequence {seq}) lost or renumbered"
            );
        }
        let seen = &printed.seen;
        assert!(
            seen.len() <= recovered.len() && recovered[..seen.len()] == seen[..],
            "{what}: the reader saw {} events the recovered order does not start with",
            seen.len()
        );
        seen_total += seen.len();
    }
    assert!(seen_total > 0, "the reader saw nothing");
    eprintln!(
        "{} acknowledged events and {seen_total} seen by readers checked after SIGKILL",
        acked.len()
    );
}
