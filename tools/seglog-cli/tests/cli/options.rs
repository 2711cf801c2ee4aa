//! One meaning per option across commands: every `--from-*` is inclusive, durations are
//! humantime's, text tables show dates and fit 100 columns of display width, and colour
//! follows anstream's rules (a terminal or CLICOLOR_FORCE, never with NO_COLOR).

use super::*;

fn seqs_of(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn every_from_option_is_inclusive() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    // dump --from-lsn: the record at that LSN is the first shown.
    let o = seglog(&["dump", d, "--from-lsn", "17", "--to-lsn", "17", "--json"]);
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["lsn"], 17);
    // events --from-seq: the event with that sequence is the first shown.
    let o = seglog(&["events", d, "exec-1", "--from-seq", "38", "--json"]);
    assert_eq!(seqs_of(&text(&o)), vec![38, 39, 40]);
    // tail --from-seq: the same.
    let o = seglog(&[
        "tail",
        d,
        "exec-1",
        "--from-seq",
        "38",
        "--json",
        "--max-events",
        "3",
        "--timeout",
        "20s",
    ]);
    assert_eq!(seqs_of(&text(&o)), vec![38, 39, 40]);
    // tail --all --from-lsn: the record at that LSN is the first shown.
    let o = seglog(&[
        "tail",
        d,
        "--all",
        "--from-lsn",
        "120",
        "--json",
        "--max-events",
        "2",
        "--timeout",
        "20s",
    ]);
    let lsns: Vec<u64> = text(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["lsn"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(lsns, vec![120, 121]);
    // 0 and 1 both mean "from the start".
    let o = seglog(&["events", d, "exec-1", "--from-seq", "0", "--json"]);
    assert_eq!(seqs_of(&text(&o)).len(), 40);
    // The help says so, for each of them.
    for cmd in ["dump", "events", "tail"] {
        let help = text(&seglog(&[cmd, "--help"]));
        assert!(help.contains("inclusive"), "{cmd} --help: {help}");
    }
}

#[test]
fn durations_are_humantime_in_and_out() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let o = seglog(&[
        "tail",
        d,
        "exec-1",
        "--poll",
        "50ms",
        "--timeout",
        "1s 200ms",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1200) && took < std::time::Duration::from_secs(10),
        "--timeout 1s 200ms took {took:?}"
    );
    // The old unit-in-the-name flags are gone, and a bare number is not a duration.
    for args in [
        vec!["tail", d, "exec-1", "--timeout-secs", "1"],
        vec!["tail", d, "exec-1", "--poll-ms", "10"],
        vec!["tail", d, "exec-1", "--timeout", "1"],
    ] {
        assert_eq!(seglog(&args).status.code(), Some(64), "{args:?}");
    }
    let o = seglog(&["compact", d, "--older-than", "1d 12h", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let o = seglog(&["compact", d, "--drop-tenant", "tenant-1", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = text(&o);
    let took = out
        .rsplit(" in ")
        .next()
        .unwrap_or_else(|| panic!("no duration in {out}"));
    assert!(
        humantime::parse_duration(took.trim()).is_ok(),
        "not a humantime duration: {took:?}"
    );
}

#[test]
fn text_dump_shows_the_date_and_fits_100_columns_of_display_width() {
    let tmp = tempfile::tempdir().unwrap();
    let log = seglog::Log::open_blocking(tmp.path(), Options::default()).unwrap();
    // Wide characters: 20 of them are 40 columns, and must be cut by width, not count.
    let wide = "実行".repeat(10);
    log.append_blocking(&wide, "テナント名前長い", b"x")
        .unwrap();
    log.close().unwrap();
    let d = tmp.path().to_str().unwrap();
    let o = seglog(&["dump", d]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = text(&o);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let row = out.lines().nth(1).unwrap();
    assert!(row.contains(&today), "no date in {row:?}");
    assert!(row.contains('…'), "the wide id was not cut: {row:?}");
    use unicode_width::UnicodeWidthStr;
    for line in out.lines() {
        assert!(line.width() <= 100, "{} columns: {line:?}", line.width());
    }
    // The columns after the ids line up with the header's, whatever the ids' widths.
    let header = out.lines().next().unwrap();
    let col = |l: &str, what: &str| l[..l.find(what).unwrap()].width();
    assert_eq!(col(header, "time"), col(row, &today));
}

#[test]
fn colour_follows_anstream_rules() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_seglog"));
        c.args(["verify", d])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in envs {
            c.env(k, v);
        }
        text(&c.output().unwrap())
    };
    // Not a terminal: no colour.
    assert!(!run(&[]).contains('\x1b'));
    // Forced: coloured.
    let forced = run(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced.contains("\x1b["), "{forced:?}");
    // NO_COLOR wins.
    assert!(!run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\x1b'));
}
