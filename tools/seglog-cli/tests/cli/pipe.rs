//! Output into a pipe whose reader went away (`seglog dump ./log | head`): the command ends
//! quietly with status 0, as `cat` and `grep` do, and never panics. And the text tables line
//! their rows up under their headers.

use crate::{err, make_log, seglog, text};
use std::process::{Command, Stdio};

/// Runs `seglog args` with stdout a pipe that is closed before the command writes, so its
/// first write fails with EPIPE (Rust ignores SIGPIPE: the write returns the error).
fn run_into_closed_pipe(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seglog"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    child.wait_with_output().unwrap()
}

fn assert_quiet_success(args: &[&str]) {
    let o = run_into_closed_pipe(args);
    let e = err(&o);
    assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
    assert!(
        !e.contains("Broken pipe"),
        "{args:?} reported the pipe: {e}"
    );
    assert_eq!(o.status.code(), Some(0), "{args:?}: stderr {e}");
}

#[test]
fn commands_end_quietly_with_status_0_when_the_reader_of_stdout_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let d = dir.path().to_str().unwrap();
    assert_quiet_success(&["dump", d]);
    assert_quiet_success(&["dump", d, "--json", "--decode"]);
    assert_quiet_success(&["events", d, "exec-1"]);
    assert_quiet_success(&["events", d, "exec-1", "--json"]);
    assert_quiet_success(&["stats", d]);
    assert_quiet_success(&["verify", d]);
    assert_quiet_success(&["tail", d, "exec-1", "--from-seq", "0", "--timeout", "5s"]);
    assert_quiet_success(&["verify", d, "--json"]);
    assert_quiet_success(&["repair", d, "--dry-run"]);
}

/// `remote status` (review 108: it printed with `println!`, which panics on EPIPE), whose
/// exit status is its verdict, and `restore`, which must still finish and leave a log that
/// verifies.
#[test]
fn remote_commands_end_quietly_when_the_reader_of_stdout_goes_away() {
    let root = tempfile::tempdir().unwrap();
    let (url, _) = crate::remote::shipped(root.path());
    assert_quiet_success(&["remote", "status", &url]);
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let no_manifest = format!("file://{}", empty.display());
    // Its exit status is a verdict ("nothing shipped there"): it stands without a reader.
    let o = run_into_closed_pipe(&["remote", "status", &no_manifest]);
    assert!(!err(&o).contains("panicked"), "{}", err(&o));
    assert_eq!(
        o.status.code(),
        seglog(&["remote", "status", &no_manifest]).status.code()
    );
    let dest = root.path().join("restored");
    assert_quiet_success(&["restore", &url, dest.to_str().unwrap()]);
    assert_eq!(
        seglog(&["verify", dest.to_str().unwrap()]).status.code(),
        Some(0)
    );
}

#[test]
fn repair_goes_on_when_the_reader_of_stdout_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let segs = make_log(dir.path());
    let mut sealed = std::fs::read(&segs[1]).unwrap();
    sealed[300] ^= 0x10;
    std::fs::write(&segs[1], &sealed).unwrap();
    let d = dir.path().to_str().unwrap();
    // The plan's first line fails to print; the repair the user asked for still happens,
    // and its status says how it went.
    assert_quiet_success(&["repair", d, "--yes"]);
    assert_eq!(seglog(&["verify", d]).status.code(), Some(0));
}

#[test]
fn stats_rows_line_up_under_the_header() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let o = seglog(&["stats", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o);
    let mut lines = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("segment "));
    let header = lines.next().expect("a per-segment header");
    // The right edge of each numeric column in the header.
    let edges: Vec<usize> = ["segment", "bytes", "records", "events"]
        .iter()
        .map(|h| header.find(&format!(" {h}")).map_or(0, |i| i + 1) + h.len())
        .collect();
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() > 2, "{out}");
    for row in rows {
        for &edge in &edges {
            let before = &row[..edge];
            assert!(
                before.ends_with(|c: char| c.is_ascii_digit()) && row[edge..].starts_with(' '),
                "column ending at {edge} not aligned in {row:?} under {header:?}"
            );
        }
    }
}
