//! The protocol between the failed-writeback test and its child process
//! (`seglog-writeback-child`), and the parent's side of it.
//!
//! The child opens the log named on its command line and prints [`ready_line`] (what
//! recovery cut, how many [`BIG`] events it found) or `open-failed <error>` and exits. Then it runs the commands it reads on stdin, one per line,
//! printing an [`Ack`] line per acknowledged append and `done` after each command:
//!
//! - `append <execution> <n>`: `n` single appends of [`own_payload`]`(execution, seq)`.
//! - `until-failure`: appends [`big_payload`]s to [`BIG`] until one fails, then tries one
//!   more append.
//!
//! An append that fails prints `failed poisoned=<bool> <error>` and ends the command's
//! appends; after `until-failure` the extra append prints `then ok <seq>` or `then failed
//! poisoned=<bool> <error>`. Every line is one line: errors are printed with `{}`, which
//! never contains a newline here.

use crate::{own_payload, Ack};
use std::io::{BufRead, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The execution of `until-failure`'s appends.
pub const BIG: &str = "big";

/// Payload bytes of an `until-failure` append: 32 KiB, so the record covers at least 7 whole
/// pages and the append that fails leaves whole pages behind that were never written.
pub const BIG_PAYLOAD_BYTES: usize = 32 << 10;

/// Options of the child's log: the defaults (`SyncMode::Always`, preallocated segments) with
/// 16 MiB segments, so the test's few MiB of appends never roll over and the failed append
/// lands inside the preallocated active segment.
pub fn writeback_options() -> seglog::Options {
    seglog::Options::default()
        .segment_size_bytes(16 << 20)
        .max_record_size_bytes(Some(64 << 10))
}

/// Payload of event `seq` of [`BIG`]: its own payload padded with dots (no spaces: it goes in
/// an ack line).
pub fn big_payload(seq: u64) -> String {
    let mut p = own_payload(BIG, seq);
    p.extend(std::iter::repeat_n('.', BIG_PAYLOAD_BYTES - p.len()));
    p
}

/// What the child found when it opened the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Bytes recovery cut from a torn tail.
    pub torn_tail_bytes: u64,
    /// Events of [`BIG`] in the log.
    pub big_events: u64,
}

/// The child's first line after a successful open.
pub fn ready_line(opened: Opened) -> String {
    format!(
        "ready torn_tail_bytes={} big_events={}",
        opened.torn_tail_bytes, opened.big_events
    )
}

/// The line of a failed append.
pub fn failed_line(err: &seglog::Error) -> String {
    format!("failed poisoned={} {err}", err.is_poisoned())
}

/// A failed append as the child reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `Error::is_poisoned`.
    pub poisoned: bool,
    /// The error, displayed.
    pub error: String,
}

impl Failure {
    fn parse(rest: &str) -> Option<Failure> {
        let (flag, error) = rest.strip_prefix("poisoned=")?.split_once(' ')?;
        Some(Failure {
            poisoned: flag.parse().ok()?,
            error: error.to_owned(),
        })
    }
}

/// What one command printed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The acknowledged appends.
    pub acks: Vec<Ack>,
    /// The append that failed, if one did.
    pub failed: Option<Failure>,
    /// After `until-failure`: the append tried after the failure (`Ok(seq)` if it was
    /// acknowledged).
    pub then: Option<Result<u64, Failure>>,
}

/// Longest a command may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// The parent's handle on a running child: sends commands, reads their lines. The child is
/// killed (SIGKILL) and reaped when this is dropped, also when the test panics.
pub struct ScriptedChild {
    child: crate::KilledOnDrop,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// The child's first line: [`ready_line`] or `open-failed <error>`.
    pub first_line: String,
}

impl ScriptedChild {
    /// Starts the child (`seglog-writeback-child`, at `exe`) on the log in `dir` and waits for
    /// its first line.
    pub fn start(exe: &str, dir: &std::path::Path) -> ScriptedChild {
        Self::start_with(exe, dir, &[])
    }

    /// As [`Self::start`], with more arguments after the directory.
    pub fn start_with(exe: &str, dir: &std::path::Path, args: &[&str]) -> ScriptedChild {
        let child = Command::new(exe)
            .arg(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let mut child = crate::KilledOnDrop(child);
        let stdin = child.0.stdin.take();
        let Some(stdout) = child.0.stdout.take() else {
            panic!("no stdout")
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // Ends when the child's stdout closes, at the latest when the child is killed.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first_line = match rx.recv_timeout(COMMAND_DEADLINE) {
            Ok(line) => line,
            Err(e) => panic!("the child printed nothing after starting: {e}"),
        };
        ScriptedChild {
            child,
            stdin,
            lines: rx,
            first_line,
        }
    }

    /// What the child found if it opened the log, or the open's error.
    pub fn opened(&self) -> Result<Opened, String> {
        let parsed = self
            .first_line
            .strip_prefix("ready torn_tail_bytes=")
            .and_then(|rest| rest.split_once(" big_events="))
            .and_then(|(torn, big)| {
                Some(Opened {
                    torn_tail_bytes: torn.parse().ok()?,
                    big_events: big.parse().ok()?,
                })
            });
        parsed.ok_or_else(|| self.first_line.clone())
    }

    /// Runs one command and collects what it printed up to `done`.
    pub fn run(&mut self, command: &str) -> Outcome {
        let Some(stdin) = self.stdin.as_mut() else {
            panic!("stdin closed")
        };
        if let Err(e) = writeln!(stdin, "{command}").and_then(|()| stdin.flush()) {
            panic!("sending {command:?}: {e}");
        }
        let deadline = Instant::now() + COMMAND_DEADLINE;
        let mut out = Outcome::default();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{command:?} did not finish within {COMMAND_DEADLINE:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the child exited during {command:?} ({:?})",
                        self.child.0.try_wait()
                    )
                }
            };
            if line == "done" {
                return out;
            }
            if let Some(ack) = Ack::parse(&line) {
                out.acks.push(ack);
            } else if let Some(f) = line.strip_prefix("failed ").and_then(Failure::parse) {
                out.failed = Some(f);
            } else if let Some(seq) = line.strip_prefix("then ok ") {
                out.then = Some(Ok(seq.parse().unwrap_or(0)));
            } else if let Some(f) = line.strip_prefix("then failed ").and_then(Failure::parse) {
                out.then = Some(Err(f));
            } else {
                panic!("unexpected line from the child during {command:?}: {line}");
            }
        }
    }
}
