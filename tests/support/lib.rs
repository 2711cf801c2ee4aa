//! Shared pieces of the workspace-level tests: the protocol between the crash-test child
//! and its parent, real kernel file systems to run them on, the protocol of the
//! failed-writeback child, and the entry points of the fuzz targets.

#![allow(clippy::panic)] // test support: a failed check is a panic.

pub mod fuzz_entry;
pub mod kernel_fs;
pub mod segment_snapshot;
pub mod writeback_protocol;

/// A child process that is killed (SIGKILL) and reaped when dropped, so that a failing test
/// leaves no process behind — nor one holding files on a mount the test must unmount.
#[derive(Debug)]
pub struct KilledOnDrop(pub std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Options of the crash tests: small segments, so kills land around rollovers and
/// checkpoint writes too.
pub fn crash_options() -> seglog::Options {
    seglog::Options::default()
        .segment_size_bytes(256 << 10)
        .max_record_size_bytes(Some(64 << 10))
}

/// Payload of event `seq` of the per-thread execution `exec`: the parent can recompute it.
pub fn own_payload(exec: &str, seq: u64) -> String {
    format!("{exec}#{seq}")
}

/// One line the child prints after an acknowledged append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The execution.
    pub execution: String,
    /// First sequence of the append.
    pub first_seq: u64,
    /// Events in it.
    pub count: u64,
    /// Payload of its first event.
    pub payload: String,
}

impl Ack {
    /// `ack <execution> <first_seq> <count> <payload>`.
    pub fn to_line(&self) -> String {
        format!(
            "ack {} {} {} {}",
            self.execution, self.first_seq, self.count, self.payload
        )
    }

    /// Parses a line printed by [`Ack::to_line`]; `None` for anything else (a line the kill
    /// cut short, for example).
    pub fn parse(line: &str) -> Option<Ack> {
        let mut it = line.split(' ');
        if it.next()? != "ack" {
            return None;
        }
        let execution = it.next()?.to_string();
        let first_seq = it.next()?.parse().ok()?;
        let count = it.next()?.parse().ok()?;
        let payload = it.next()?.to_string();
        it.next().is_none().then_some(Ack {
            execution,
            first_seq,
            count,
            payload,
        })
    }
}

/// Acknowledgements a child printed, split at the moment of the cut.
#[derive(Debug, Default)]
pub struct Acks {
    /// Read before the cut: their fsyncs returned before it.
    pub before_cut: Vec<Ack>,
    /// Read after the cut. After a process kill these are as good as the others. After a
    /// file-system shutdown they are not evidence: an fdatasync racing the shutdown ioctl can
    /// return success for data the aborted journal never committed (ext4's
    /// `jbd2_complete_transaction` returns 0 for a transaction the abort already disposed of).
    /// A real power cut has no "after".
    pub after_cut: Vec<Ack>,
    /// Executions the child erased (its `compact` returned Ok), read before the cut.
    pub erased_before_cut: Vec<String>,
    /// The same, read after the cut (evidence after a kill, not after a shutdown).
    pub erased_after_cut: Vec<String>,
    /// Records the child's global reader saw (`--global-reader`), in the order it saw them,
    /// before and after the cut.
    pub seen: Vec<Seen>,
}

/// A record the child's global reader saw: `seen <lsn> <execution> <first_seq> <count>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its global position.
    pub lsn: u64,
    /// Its execution.
    pub execution: String,
    /// Its first sequence.
    pub first_seq: u64,
    /// Its events.
    pub count: u64,
}

impl Seen {
    /// The line the child prints.
    pub fn to_line(&self) -> String {
        format!(
            "seen {} {} {} {}",
            self.lsn, self.execution, self.first_seq, self.count
        )
    }

    /// Parses a line printed by [`Seen::to_line`]; `None` for anything else (a line the kill
    /// cut short: the count is the last field, one digit).
    pub fn parse(line: &str) -> Option<Seen> {
        let mut it = line.split(' ');
        if it.next()? != "seen" {
            return None;
        }
        let seen = Seen {
            lsn: it.next()?.parse().ok()?,
            execution: it.next()?.to_string(),
            first_seq: it.next()?.parse().ok()?,
            count: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(seen)
    }
}

/// The line the child prints once `compact` has erased `execution`.
pub fn erased_line(execution: &str) -> String {
    format!("erased {execution}")
}

/// Marker bytes in every payload of the child's doomed execution `execution`: after the
/// erasure no file of the log may contain them.
pub fn doomed_marker(execution: &str) -> String {
    format!("MARKER<{execution}>")
}

impl Acks {
    fn take(&mut self, line: &str, before_cut: bool) {
        if line.starts_with("seen ") {
            self.seen.extend(Seen::parse(line));
            return;
        }
        match (line.strip_prefix("erased "), before_cut) {
            (Some(e), true) => self.erased_before_cut.push(e.to_owned()),
            (Some(e), false) => self.erased_after_cut.push(e.to_owned()),
            (None, true) => self.before_cut.extend(Ack::parse(line)),
            (None, false) => self.after_cut.extend(Ack::parse(line)),
        }
    }
}

/// Checks that every execution in `erased` is gone: no event in the reopened log, and its
/// marker bytes in no file of `dir`.
pub fn check_erased(log: &seglog::Log, dir: &std::path::Path, erased: &[String], what: &str) {
    // A file that cannot be read is not a file without the marker: only one that vanished
    // between the listing and the read (a checkpoint's temp file renamed) is skipped.
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{what}: cannot list {}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{what}: cannot list {}: {e}", dir.display()));
        match std::fs::read(entry.path()) {
            Ok(bytes) => files.push((entry.file_name().to_string_lossy().into_owned(), bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{what}: cannot read {}: {e}", entry.path().display()),
        }
    }
    assert!(
        files.iter().any(|(name, _)| name.ends_with(".seg")),
        "{what}: no segment file in {}",
        dir.display()
    );
    for exec in erased {
        let events = log
            .read(exec)
            .unwrap_or_else(|e| panic!("{what}: cannot read erased {exec}: {e}"));
        assert!(
            events.is_empty(),
            "{what}: erased {exec} came back with {} events",
            events.len()
        );
    }
    // One pass per file: every marker found names its execution, which must not be erased.
    let erased: std::collections::HashSet<&str> = erased.iter().map(String::as_str).collect();
    let open = doomed_marker("");
    let open = &open.as_bytes()[..open.len() - 1];
    for (name, bytes) in &files {
        let mut at = 0;
        while let Some(found) = bytes[at..].windows(open.len()).position(|w| w == open) {
            let start = at + found + open.len();
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'>')
                .map_or(bytes.len(), |p| start + p);
            let exec = String::from_utf8_lossy(&bytes[start..end]);
            assert!(
                !erased.contains(exec.as_ref()),
                "{what}: erased {exec}'s bytes are still in {name}"
            );
            at = start;
        }
    }
}

/// Runs the crash child (`seglog-crash-child`, at `child_exe`) on `dir` (with `child_args`,
/// such as `--compact`) for `run_for`, then calls `cut` (SIGKILL, a file-system shutdown …)
/// while it runs, and returns the acknowledgements it printed, split at the cut.
///
/// # Panics
/// As [`run_child`].
pub fn run_child_until(
    child_exe: &str,
    dir: &std::path::Path,
    child_args: &[&str],
    run_for: std::time::Duration,
    cut: impl FnOnce(),
) -> Acks {
    let when = CutWhen {
        run_for,
        min_acks: 0,
        min_erased: 0,
    };
    run_child(child_exe, dir, child_args, when, cut)
}

/// When [`run_child`] cuts the child: once it ran for `run_for` *and* printed at least
/// `min_acks` acknowledgements and `min_erased` erasures. The minimums make "the test saw
/// something happen" hold on a slow machine too, instead of depending on its speed.
#[derive(Debug, Clone, Copy)]
pub struct CutWhen {
    /// Least time from "ready" to the cut.
    pub run_for: std::time::Duration,
    /// Least `ack` lines before the cut.
    pub min_acks: usize,
    /// Least `erased` lines before the cut (the child must run with `--compact`).
    pub min_erased: usize,
}

/// How long [`run_child`] waits for the child to reach `CutWhen`'s minimums.
const CHILD_PROGRESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the crash child (`seglog-crash-child`, at `child_exe`) on `dir` (with `child_args`,
/// such as `--compact`) until `when`, then calls `cut` (SIGKILL, a file-system shutdown …)
/// while it runs, and returns the acknowledgements it printed, split at the cut.
///
/// # Panics
/// With the child's exit status and its stderr, when the child does not start, does not
/// open the log, exits before the cut (a child that dies early has not been cut at all), or
/// does not reach `when`'s minimums within a minute.
pub fn run_child(
    child_exe: &str,
    dir: &std::path::Path,
    child_args: &[&str],
    when: CutWhen,
    cut: impl FnOnce(),
) -> Acks {
    use std::io::{BufRead, Read};
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::{Duration, Instant};
    let mut child = std::process::Command::new(child_exe)
        .arg(dir)
        .args(child_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {child_exe}: {e}"));
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        panic!("no stdout or stderr")
    };
    let stderr_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(line) if line == "ready" => {}
        other => child_failed(
            child,
            stderr_reader,
            &format!("the child did not open the log: {other:?} (cut planned {when:?})"),
        ),
    }
    let mut acks = Acks::default();
    let started = Instant::now();
    let due = |acks: &Acks| {
        started.elapsed() >= when.run_for
            && acks.before_cut.len() >= when.min_acks
            && acks.erased_before_cut.len() >= when.min_erased
    };
    while !due(&acks) {
        if started.elapsed() > when.run_for + CHILD_PROGRESS_TIMEOUT {
            child_failed(
                child,
                stderr_reader,
                &format!(
                    "the child printed {} acks and {} erasures in {:?}, wanted {when:?}",
                    acks.before_cut.len(),
                    acks.erased_before_cut.len(),
                    started.elapsed()
                ),
            );
        }
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => acks.take(&line, true),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => child_failed(
                child,
                stderr_reader,
                &format!("the child closed its stdout (exited) before the cut ({when:?})"),
            ),
        }
    }
    // Whatever is already in the pipe was printed before the cut.
    for line in rx.try_iter() {
        acks.take(&line, true);
    }
    match child.try_wait() {
        Ok(None) => {}
        Ok(Some(status)) => child_failed(
            child,
            stderr_reader,
            &format!("the child exited before the cut ({when:?}): {status}"),
        ),
        Err(e) => child_failed(
            child,
            stderr_reader,
            &format!("cannot check on the child: {e}"),
        ),
    }
    cut();
    // The cut may have left it running (a file-system shutdown): it goes now.
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    // After the cut the child may fail (its file system is gone): not a finding, and its
    // stderr is left to the reader thread, which ends with the child.
    for line in rx.try_iter() {
        acks.take(&line, false);
    }
    acks
}

/// Kills the child (if it still runs) and fails with its exit status and its stderr.
fn child_failed(
    mut child: std::process::Child,
    stderr_reader: std::thread::JoinHandle<String>,
    why: &str,
) -> ! {
    let _ = child.kill();
    let status = child.wait();
    let stderr = stderr_reader.join().unwrap_or_default();
    panic!("{why}; the crash child: {status:?}; its stderr:\n{stderr}")
}

/// The acknowledgements of `acks` that `log` does not hold.
pub fn missing(log: &seglog::Log, acks: &[Ack]) -> usize {
    acks.iter()
        .filter(|a| {
            log.read_range(&a.execution, a.first_seq, a.count as usize)
                .map_or(true, |e| {
                    e.len() as u64 != a.count
                        || e.first()
                            .map(|x| String::from_utf8_lossy(&x.payload) != a.payload)
                            .unwrap_or(true)
                })
        })
        .count()
}

/// Checks the contract on a reopened log: every execution dense from 1, each `own-*`
/// execution's bytes as written, and every acknowledged append present with its bytes.
pub fn check_acks(log: &seglog::Log, acks: &[Ack], what: &str) {
    for exec in log
        .list_executions("tenant", usize::MAX, 0)
        .unwrap_or_else(|e| panic!("{what}: cannot list executions: {e}"))
    {
        let events = log
            .read(&exec)
            .unwrap_or_else(|e| panic!("{what}: cannot read {exec}: {e}"));
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "{what}: {exec} has a hole");
            if exec.starts_with("own-") {
                assert_eq!(
                    String::from_utf8_lossy(&e.payload),
                    own_payload(&exec, e.seq),
                    "{what}: {exec} #{}",
                    e.seq
                );
            }
        }
    }
    for ack in acks {
        let events = match log.read_range(&ack.execution, ack.first_seq, ack.count as usize) {
            Ok(events) => events,
            Err(e) => panic!("{what}: reading acknowledged {ack:?} failed: {e}"),
        };
        assert_eq!(
            events.len() as u64,
            ack.count,
            "{what}: acknowledged {ack:?} lost: the execution now ends at {:?} ({} segments: {:?})",
            log.latest_seq(&ack.execution),
            log.segments().len(),
            log.segments()
                .iter()
                .map(|s| (s.number, s.first_lsn, s.last_lsn, s.data_end, s.sealed))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            String::from_utf8_lossy(&events[0].payload),
            ack.payload,
            "{what}: {ack:?}"
        );
    }
}
