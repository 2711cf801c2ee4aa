//! `seglog tail` following a log another handle appends to: new events in order, and only
//! once something proves them durable.

use super::*;
use seglog::{Log, Options};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A running `seglog tail`, its output read line by line as it comes.
struct Tail {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// How long a test waits for output it expects before it fails.
const DEADLINE: Duration = Duration::from_secs(20);

impl Tail {
    fn spawn(args: &[&str]) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seglog"))
            .arg("tail")
            .args(args)
            .args(["--poll", "10ms", "--timeout", "30s"])
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Tail {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits until tail says it is following (the events already there are skipped).
    fn wait_until_following(&self) {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains("following") => return,
                Ok(_) => {}
                Err(e) => panic!("tail never said it was following: {e}"),
            }
        }
    }

    /// The seq of each of the next `n` JSON lines on stdout.
    fn next_seqs(&self, n: usize) -> Vec<u64> {
        let until = Instant::now() + DEADLINE;
        (0..n)
            .map(|i| {
                let left = until.saturating_duration_since(Instant::now());
                let line = self
                    .stdout
                    .recv_timeout(left)
                    .unwrap_or_else(|e| panic!("event {i} of {n} never came: {e}"));
                serde_json::from_str::<serde_json::Value>(&line).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `seglog tail --json` prints for `args` before it stops, and the seqs of its lines.
pub(super) fn tail_output(args: &[&str]) -> (Output, Vec<u64>) {
    let o = seglog(&[&["tail"][..], args, &["--json", "--poll", "10ms"]].concat());
    let seqs = text(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    (o, seqs)
}

/// The seqs `seglog tail --json` prints for `args` before it stops (exit status 0).
fn tail_seqs(args: &[&str]) -> Vec<u64> {
    let (o, seqs) = tail_output(args);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    seqs
}

#[test]
fn tail_follows_appends_from_another_process_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    log.append_encoded_blocking("e", "t", None, 0, &[b"before"])
        .unwrap();
    log.append_encoded_blocking("other", "t", None, 0, &[b"vouches for it"])
        .unwrap();
    let tail = Tail::spawn(&[dir, "e", "--max-events", "5", "--json"]);
    tail.wait_until_following();
    for i in 0..5 {
        log.append_encoded_blocking("e", "t", None, 0, &[format!("live {i}").as_bytes()])
            .unwrap();
        // The next commit round's record proves the one before it durable.
        log.append_encoded_blocking("other", "t", None, 0, &[b"noise"])
            .unwrap();
    }
    assert_eq!(
        tail.next_seqs(5),
        vec![2, 3, 4, 5, 6],
        "only the new events, in order"
    );
    log.close().unwrap();
}

#[test]
fn tail_holds_back_a_record_no_later_record_vouches_for_while_the_log_is_live() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    // Appended one after another, each record carries the LSN of the one before it as
    // durable: the last one has nothing after it that says it was synced.
    for i in 1..=3 {
        log.append_encoded_blocking("e", "t", None, 0, &[format!("event {i}").as_bytes()])
            .unwrap();
    }
    let seqs = tail_seqs(&[dir, "e", "--from-seq", "0", "--timeout", "1s"]);
    assert_eq!(seqs, vec![1, 2], "event 3 is not proven durable yet");

    // A tail that is already following shows it as soon as a later commit vouches for it.
    let tail = Tail::spawn(&[dir, "e", "--from-seq", "0", "--json"]);
    assert_eq!(tail.next_seqs(2), vec![1, 2]);
    log.append_encoded_blocking("other", "t", None, 0, &[b"next round"])
        .unwrap();
    assert_eq!(tail.next_seqs(1), vec![3]);

    // Once the writer has closed the log, its last record is final too.
    log.close().unwrap();
    let seqs = tail_seqs(&[
        dir,
        "other",
        "--from-seq",
        "0",
        "--max-events",
        "1",
        "--timeout",
        "20s",
    ]);
    assert_eq!(seqs, vec![1]);
}

#[test]
fn tail_shows_every_record_of_a_segment_a_later_segment_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    for i in 1..=3 {
        log.append_encoded_blocking("e", "t", None, 0, &[format!("event {i}").as_bytes()])
            .unwrap();
    }
    // The writer creates the next segment only after sealing (and syncing) this one. Its
    // header alone, as right after a roll, proves every record before it durable.
    let header = seglog_segment::format::SegmentHeader {
        segment_number: 2,
        first_lsn: 4,
        created_unix_nanos: 0,
        salt: 7,
        compacted: false,
        clustered: false,
    };
    std::fs::write(
        tmp.path()
            .join(seglog_segment::format::segment_file_name(4)),
        header.encode(),
    )
    .unwrap();
    let seqs = tail_seqs(&[
        dir,
        "e",
        "--from-seq",
        "0",
        "--max-events",
        "3",
        "--timeout",
        "20s",
    ]);
    assert_eq!(seqs, vec![1, 2, 3]);
    log.close().unwrap();
}

/// The `(lsn, execution, seq)` of each JSON line `seglog tail --all` printed.
pub(super) fn all_lines(out: &str) -> Vec<(u64, String, u64)> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["lsn"].as_u64().unwrap(),
                v["execution"].as_str().unwrap().to_owned(),
                v["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn tail_all_follows_every_execution_in_global_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let opts = Options::default().segment_size_bytes(4096);
    let log = Log::open_blocking(tmp.path(), opts.clone()).unwrap();
    for i in 0..150u32 {
        let exec = format!("e{}", i % 3);
        let payload = format!("event {i} {}", "p".repeat((i % 80) as usize));
        if i % 5 == 0 {
            log.append_batch_blocking(&exec, "t", &[payload.as_bytes(), b"second"])
                .unwrap();
        } else {
            log.append_blocking(&exec, "t", payload.as_bytes()).unwrap();
        }
    }
    log.close().unwrap();
    // The expected global order, event by event.
    let log = Log::open_blocking(tmp.path(), opts).unwrap();
    let want: Vec<(u64, String, u64)> = log
        .read_global(0, usize::MAX)
        .unwrap()
        .iter()
        .flat_map(|r| {
            (0..r.payloads.len() as u64).map(move |i| (r.lsn, r.execution.clone(), r.first_seq + i))
        })
        .collect();
    assert!(log.segments().len() > 2);
    log.close().unwrap();
    let o = seglog(&[
        "tail",
        dir,
        "--all",
        "--from-lsn",
        "0",
        "--json",
        "--poll",
        "10ms",
        "--max-events",
        &want.len().to_string(),
        "--timeout",
        "20s",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(all_lines(&text(&o)), want);
    // From the middle: the position itself and what follows (--from-lsn is inclusive).
    let middle = want[want.len() / 2].0;
    let o = seglog(&[
        "tail",
        dir,
        "--all",
        "--from-lsn",
        &middle.to_string(),
        "--json",
        "--poll",
        "10ms",
        "--timeout",
        "1s",
    ]);
    let after: Vec<_> = want.iter().filter(|w| w.0 >= middle).cloned().collect();
    assert!(after.first().is_some_and(|w| w.0 == middle));
    assert_eq!(all_lines(&text(&o)), after);
    // --max-events stops mid-poll, mid-record (the first record is a batch of two).
    for n in [1usize, 5] {
        let o = seglog(&[
            "tail",
            dir,
            "--all",
            "--from-lsn",
            "0",
            "--json",
            "--max-events",
            &n.to_string(),
            "--timeout",
            "20s",
        ]);
        assert_eq!(all_lines(&text(&o)), want[..n], "--max-events {n}");
    }
    let o = seglog(&[
        "tail",
        dir,
        "e1",
        "--from-seq",
        "0",
        "--json",
        "--max-events",
        "3",
        "--timeout",
        "20s",
    ]);
    assert_eq!(
        text(&o).lines().count(),
        3,
        "--max-events 3 of one execution"
    );
    // An execution and --all do not go together.
    assert_eq!(
        seglog(&["tail", dir, "e1", "--all"]).status.code(),
        Some(64)
    );
}

#[test]
fn tail_all_shows_new_records_of_every_execution_once_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    log.append_blocking("old", "t", b"before").unwrap();
    log.append_blocking("old", "t", b"vouches for it").unwrap();
    let tail = Tail::spawn(&[dir, "--all", "--max-events", "7", "--json"]);
    tail.wait_until_following();
    for i in 0..6 {
        log.append_blocking(&format!("live-{}", i % 2), "t", b"x")
            .unwrap();
    }
    // The last one waits for a record that vouches for it.
    log.append_blocking("closer", "t", b"y").unwrap();
    let until = Instant::now() + DEADLINE;
    let lines: Vec<(u64, String, u64)> = (0..7)
        .map(|_| {
            let line = tail
                .stdout
                .recv_timeout(until.saturating_duration_since(Instant::now()))
                .unwrap();
            all_lines(&line).remove(0)
        })
        .collect();
    assert!(lines.windows(2).all(|w| w[0].0 < w[1].0), "{lines:?}");
    let execs: Vec<&str> = lines.iter().map(|l| l.1.as_str()).collect();
    // The last record there at the start was not yet proven durable (nothing vouched for
    // it), so it is not skipped: it shows once the next commit vouches for it.
    assert_eq!(
        execs,
        ["old", "live-0", "live-1", "live-0", "live-1", "live-0", "live-1"],
        "only the records not yet shown, in order"
    );
    assert_eq!(
        lines[0].2, 2,
        "the first record, already durable, was skipped"
    );
    log.close().unwrap();
}

/// Sends `signal` (STOP, CONT) to the tail process.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
}

/// Compaction writes its first output of a run under the run's first LSN, i.e. the same file
/// name as the segment it replaces, with a new salt and new offsets. A tail that had shown
/// part of that segment (its last record not yet vouched for) must still show the surviving
/// records it had not shown yet, and only once.
#[test]
fn tail_all_shows_every_surviving_record_of_a_segment_compacted_under_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let log = Log::open_blocking(tmp.path(), Options::default()).unwrap();
    log.append_blocking("keep", "t", b"a1").unwrap();
    log.append_blocking("doomed", "t", b"d1").unwrap();
    // Nothing vouches for this one yet: tail holds it back, its cursor stops before it.
    log.append_blocking("keep", "t", b"a2").unwrap();
    let tail = Tail::spawn(&[
        dir,
        "--all",
        "--from-lsn",
        "0",
        "--max-events",
        "5",
        "--json",
    ]);
    let until = Instant::now() + DEADLINE;
    let mut seen: Vec<(u64, String, u64)> = (0..2)
        .map(|_| {
            let line = tail
                .stdout
                .recv_timeout(until.saturating_duration_since(Instant::now()))
                .unwrap();
            all_lines(&line).remove(0)
        })
        .collect();
    // Holds tail between two polls while the segment it is in the middle of is replaced.
    signal(&tail.child, "STOP");
    let plan = seglog::compaction::Plan {
        drop_executions: ["doomed".to_owned()].into(),
        ..Default::default()
    };
    let report = log
        .compact_blocking(&plan, seglog::CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(report.rolled_active_segment);
    log.append_blocking("keep", "t", b"a3").unwrap();
    log.append_blocking("keep", "t", b"a4").unwrap();
    log.close().unwrap();
    signal(&tail.child, "CONT");
    while seen.len() < 5 {
        match tail
            .stdout
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            Ok(line) => seen.push(all_lines(&line).remove(0)),
            Err(_) => break,
        }
    }
    let shown: Vec<(&str, u64)> = seen.iter().map(|(_, e, s)| (e.as_str(), *s)).collect();
    assert_eq!(
        shown,
        [
            ("keep", 1),
            ("doomed", 1),
            ("keep", 2),
            ("keep", 3),
            ("keep", 4)
        ],
        "keep's second event was acknowledged and survives the compaction"
    );
}
