//! Every row of the exit-status table (`seglog --help`, README), for every command it names.

use super::*;

/// The last segment's last record cut short: a torn tail.
fn tear(segs: &[PathBuf]) {
    let last = segs.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let end = seglog_segment::inspect::analyze_segment(&bytes, 0).data_end as usize;
    std::fs::write(last, &bytes[..end - 7]).unwrap();
}

/// A bit flipped in a record of the first (sealed) segment.
fn corrupt(segs: &[PathBuf]) {
    let mut sealed = std::fs::read(&segs[0]).unwrap();
    sealed[200] ^= 0x20;
    std::fs::write(&segs[0], &sealed).unwrap();
}

fn code(args: &[&str]) -> Option<i32> {
    let o = seglog(args);
    assert!(!err(&o).contains("panicked"), "{args:?}: {}", err(&o));
    o.status.code()
}

#[test]
fn the_help_prints_the_table() {
    let o = seglog(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = text(&o);
    for row in [
        "0   done",
        "1   torn tail",
        "2   corruption",
        "3   other errors",
    ] {
        assert!(help.contains(row), "{row:?} missing from:\n{help}");
    }
    for row in ["4   not found", "5   declined", "64  usage"] {
        assert!(help.contains(row), "{row:?} missing from:\n{help}");
    }
}

#[test]
fn status_0_for_every_command_on_a_clean_log() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["dump", d],
        vec!["verify", d],
        vec!["stats", d],
        vec!["events", d, "exec-1"],
        vec!["repair", d, "--yes"],
        vec!["repair", d, "--dry-run"],
        vec!["compact", d, "--drop-tenant", "nobody", "--dry-run"],
    ] {
        assert_eq!(code(&args), Some(0), "{args:?}");
    }
}

#[test]
fn status_1_for_a_torn_tail_from_dump_verify_stats_and_events() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    tear(&segs);
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["dump", d],
        vec!["verify", d],
        vec!["stats", d],
        vec!["stats", d, "--json"],
        vec!["events", d, "exec-1"],
    ] {
        assert_eq!(code(&args), Some(1), "{args:?}");
    }
}

/// Files under segment names that hold no record and that the next open removes without
/// loss (format.md §4, step 1): a last segment whose creation a crash cut, and a file of
/// zeros inside the log where no record is missing. Not corruption; the open agrees.
#[test]
fn status_1_for_files_the_next_open_removes_without_loss() {
    use seglog_segment::format::{parse_segment_file_name, segment_file_name};
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let lsn_of = |p: &std::path::Path| {
        parse_segment_file_name(p.file_name().unwrap().to_str().unwrap())
            .unwrap()
            .unwrap()
    };
    std::fs::write(tmp.path().join(segment_file_name(1 << 40)), []).unwrap();
    let zeros = tmp.path().join(segment_file_name(lsn_of(&segs[1]) - 1));
    std::fs::write(&zeros, vec![0u8; 8192]).unwrap();
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["dump", d],
        vec!["dump", d, "--json"],
        vec!["verify", d],
        vec!["verify", d, "--json"],
        vec!["stats", d],
        vec!["events", d, "exec-1"],
    ] {
        assert_eq!(code(&args), Some(1), "{args:?}");
    }
    // The same zeros where records are missing (a segment whose contents were lost):
    // corruption.
    std::fs::write(&segs[1], vec![0u8; 4096]).unwrap();
    for args in [vec!["dump", d], vec!["verify", d], vec!["stats", d]] {
        assert_eq!(code(&args), Some(2), "{args:?}");
    }
}

#[test]
fn status_2_for_corruption_from_every_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    corrupt(&segs);
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["dump", d],
        vec!["verify", d],
        vec!["verify", d, "--json"],
        vec!["stats", d],
        vec!["events", d, "exec-1"],
        // Corruption outranks "not found": the execution's records may be behind it.
        vec!["events", d, "no-such-execution"],
        // tail stops at the damage in a sealed segment, says so, and ends with 2.
        vec!["tail", d, "--all", "--from-lsn", "1", "--timeout", "200ms"],
        vec!["tail", d, "exec-1", "--from-seq", "1", "--timeout", "200ms"],
    ] {
        assert_eq!(code(&args), Some(2), "{args:?}");
    }
    // A file that is not a segment at all.
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, b"not a segment").unwrap();
    assert_eq!(code(&["dump", junk.to_str().unwrap()]), Some(2));
}

#[test]
fn status_2_when_stats_finds_a_damaged_checkpoint_as_verify_does() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let cp = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
        .unwrap();
    let mut bytes = std::fs::read(&cp).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&cp, &bytes).unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_eq!(code(&["verify", d]), Some(2));
    assert_eq!(code(&["stats", d]), Some(2));
}

#[test]
fn status_3_for_a_missing_path_and_for_a_log_another_process_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let m = missing.to_str().unwrap();
    for args in [
        vec!["dump", m],
        vec!["verify", m],
        vec!["stats", m],
        vec!["events", m, "e"],
        vec!["tail", m, "e", "--timeout", "1s"],
        vec!["backup", m, tmp.path().join("b").to_str().unwrap()],
        vec!["repair", m, "--yes"],
        vec!["compact", m, "--drop-tenant", "t", "--yes"],
    ] {
        let o = seglog(&args);
        assert_clean_failure(&o, 3);
    }
    assert!(!missing.exists(), "a command created the missing directory");
    make_log(tmp.path());
    let holder = seglog::Log::open_blocking(tmp.path(), Options::default()).unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_clean_failure(&seglog(&["repair", d, "--yes"]), 3);
    assert_clean_failure(
        &seglog(&["compact", d, "--drop-tenant", "tenant-1", "--yes"]),
        3,
    );
    holder.close().unwrap();
}

#[test]
fn status_4_for_events_of_an_execution_the_log_does_not_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let o = seglog(&["events", d, "no-such-execution"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(err(&o).contains("no events for execution"), "{}", err(&o));
    assert_eq!(code(&["events", d, "no-such-execution", "--json"]), Some(4));
    // A known execution with nothing at or after --from-seq is found, just empty.
    assert_eq!(
        code(&["events", d, "exec-1", "--from-seq", "1000"]),
        Some(0)
    );
    // Not found outranks a torn tail.
    tear(&segs);
    assert_eq!(code(&["events", d, "no-such-execution"]), Some(4));
}

/// Runs `args` with a terminal as standard input (util-linux `script`), typing `typed`.
fn on_a_terminal(args: &[&str], typed: &str) -> Option<i32> {
    use std::io::Write;
    let command = std::iter::once(env!("CARGO_BIN_EXE_seglog").to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs commands on a pseudo-terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(typed.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().status.code()
}

#[test]
fn status_5_when_the_question_is_answered_no_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    corrupt(&segs);
    let before = snapshot(tmp.path());
    let d = tmp.path().to_str().unwrap();
    assert_eq!(on_a_terminal(&["repair", d], "n\n"), Some(5));
    assert_same_files(&before, &snapshot(tmp.path()));
    let tmp2 = tempfile::tempdir().unwrap();
    make_log(tmp2.path());
    let before = snapshot(tmp2.path());
    let d2 = tmp2.path().to_str().unwrap();
    assert_eq!(
        on_a_terminal(&["compact", d2, "--drop-tenant", "tenant-1"], "no\n"),
        Some(5)
    );
    assert_same_files(&before, &snapshot(tmp2.path()));
    // And a "y" on the terminal does go ahead.
    assert_eq!(on_a_terminal(&["repair", d], "y\n"), Some(0));
    assert!(seglog::verify_dir(tmp.path()).unwrap().is_clean());
}

#[test]
fn status_64_for_bad_usage_and_for_a_question_nobody_can_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["dump"],
        vec!["no-such-command"],
        vec!["tail", d, "e", "--timeout", "5"], // a duration needs its unit
        vec!["tail", d, "e", "--poll", "soon"],
        vec!["compact", d, "--older-than", "30"],
        vec!["dump", d, "--from-lsn", "-1"],
    ] {
        assert_eq!(code(&args), Some(64), "{args:?}");
    }
    // Standard input is not a terminal here, and there is no --yes.
    let before = snapshot(tmp.path());
    assert_eq!(code(&["compact", d, "--drop-tenant", "tenant-1"]), Some(64));
    assert_same_files(&before, &snapshot(tmp.path()));
    corrupt(&segs);
    let before = snapshot(tmp.path());
    let o = seglog(&["repair", d]);
    assert_eq!(o.status.code(), Some(64), "{}", err(&o));
    assert!(err(&o).contains("--yes"), "{}", err(&o));
    assert_same_files(&before, &snapshot(tmp.path()));
}
