//! Untrusted strings (ids, tenant names, payloads, decoded fields and keys) never reach the
//! terminal raw: no command prints a control character (C0, DEL, C1) other than a newline,
//! or a bidi override, in any output mode; JSON output stays valid JSON with the values intact.

use super::*;
use seglog::{Log, Options};

/// An OSC title change, a screen clear, a C1 CSI, a carriage return and a right-to-left
/// override.
const HOSTILE: &str = "a\x1b]0;pwned\x07b\x1b[2Jc\u{9b}31md\re\u{202e}f";

/// Characters that must never reach a terminal raw.
fn is_dangerous(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn assert_safe(what: &str, bytes: &[u8]) {
    let s = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    if let Some(c) = s.chars().find(|&c| is_dangerous(c)) {
        panic!("{what}: raw {c:?} in output:\n{s:?}");
    }
}

/// Runs `args` and checks stdout and stderr; returns stdout.
fn run_safe(args: &[&str]) -> String {
    let o = seglog(args);
    let what = format!("{:?}", &args[..args.len().min(3)]);
    assert!(
        // 4: an execution the log does not hold (the hostile id queried as-is).
        matches!(o.status.code(), Some(0..=2 | 4)),
        "{what} exited {:?}: {}",
        o.status.code(),
        err(&o)
    );
    assert_safe(&format!("{what} stdout"), &o.stdout);
    assert_safe(&format!("{what} stderr"), &o.stderr);
    text(&o)
}

/// A closed log with hostile ids, tenant, payloads, decoded fields and keys.
fn hostile_log(dir: &Path) -> String {
    let evil_id = format!("evil{HOSTILE}");
    let log = Log::open_blocking(dir, Options::default()).unwrap();
    let decoded = serde_json::json!({
        "type": HOSTILE,
        "reason": HOSTILE,
        (HOSTILE): 1,
        "nested": {"list": [HOSTILE]},
    });
    let msgpack = rmp_serde::to_vec_named(&decoded).unwrap();
    let ms = seglog_eventstore::codec::ENCODING_MSGPACK_NAMED;
    log.append_encoded_blocking("victim", HOSTILE, None, ms, &[&msgpack])
        .unwrap();
    let opaque = [HOSTILE.as_bytes(), b"\xff\x9b"].concat();
    log.append_encoded_blocking("victim", HOSTILE, None, 0, &[&opaque])
        .unwrap();
    log.append_encoded_blocking(&evil_id, HOSTILE, None, ms, &[&msgpack])
        .unwrap();
    log.close().unwrap();
    evil_id
}

#[test]
fn no_command_prints_a_raw_control_character_or_bidi_override() {
    let tmp = tempfile::tempdir().unwrap();
    let evil_id = hostile_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    // Each execution with its number of events.
    for (exec, events) in [("victim", "2"), (evil_id.as_str(), "1")] {
        let out = run_safe(&["events", d, exec]);
        assert!(
            out.contains("\\u{1b}]0;pwned"),
            "escaped, not dropped: {out}"
        );
        run_safe(&["events", d, exec, "--json"]);
        let follow = [
            "--from-seq",
            "0",
            "--max-events",
            events,
            "--timeout",
            "20s",
        ];
        let out = run_safe(&[&["tail", d, exec][..], &follow].concat());
        assert!(
            out.contains("\\u{1b}]0;pwned"),
            "escaped, not dropped: {out}"
        );
        run_safe(&[&["tail", d, exec, "--json"][..], &follow].concat());
    }
    let out = run_safe(&["dump", d, "--decode"]);
    assert!(out.contains("\\u{202e}"), "escaped, not dropped: {out}");
    run_safe(&["dump", d, "--decode", "--json"]);
    run_safe(&["dump", d, "--json"]);
    run_safe(&["dump", d, "--execution", &evil_id]);
    run_safe(&["stats", d]);
    run_safe(&["stats", d, "--json"]);
    run_safe(&["verify", d]);
    // An id given on the command line is quoted back in messages.
    run_safe(&["events", d, HOSTILE]);
}

#[test]
fn json_output_keeps_hostile_values_intact() {
    let tmp = tempfile::tempdir().unwrap();
    hostile_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let rows = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = run_safe(args);
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    };
    let events = rows(&["events", d, "victim", "--json"]);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"]["type"], HOSTILE);
    assert_eq!(events[0]["event"][HOSTILE], 1);
    assert_eq!(events[0]["event"]["nested"]["list"][0], HOSTILE);
    let tailed = rows(&[
        "tail",
        d,
        "victim",
        "--json",
        "--from-seq",
        "0",
        "--max-events",
        "2",
        "--timeout",
        "20s",
    ]);
    assert_eq!(tailed, events);
    let dumped = rows(&["dump", d, "--decode", "--json", "--execution", "victim"]);
    assert_eq!(dumped[0]["events"][0]["reason"], HOSTILE);
}
