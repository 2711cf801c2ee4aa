//! JSON output: every line of every command is one JSON object with `"schema": 1` and a
//! `kind`, and the kinds carry their documented fields.

use super::*;
use std::collections::BTreeSet;

/// The JSON lines `args` printed (status 0 or 1 expected), each checked for schema and kind;
/// with the set of kinds seen.
fn json_lines(args: &[&str]) -> (Vec<serde_json::Value>, BTreeSet<String>) {
    let o = seglog(args);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{args:?}: {:?} {}",
        o.status.code(),
        err(&o)
    );
    let mut kinds = BTreeSet::new();
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: {e}: {l:?}"));
            assert_eq!(v["schema"], 1, "{args:?}: no schema 1 in {l}");
            let kind = v["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{args:?}: no kind in {l}"));
            kinds.insert(kind.to_string());
            v
        })
        .collect();
    assert!(!rows.is_empty(), "{args:?} printed nothing");
    (rows, kinds)
}

fn set(kinds: &[&str]) -> BTreeSet<String> {
    kinds.iter().map(|k| k.to_string()).collect()
}

#[test]
fn every_json_line_of_every_command_has_a_schema_and_a_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let (rows, kinds) = json_lines(&["dump", d, "--json", "--header", "--decode"]);
    assert_eq!(kinds, set(&["record", "segment_header"]));
    let record = rows.iter().find(|r| r["kind"] == "record").unwrap();
    for field in [
        "segment",
        "offset",
        "lsn",
        "execution",
        "tenant",
        "first_seq",
        "timestamp",
    ] {
        assert!(!record[field].is_null(), "record without {field}: {record}");
    }
    assert!(record["events"].is_array());
    let (rows, kinds) = json_lines(&["stats", d, "--json"]);
    assert_eq!((rows.len(), kinds), (1, set(&["stats"])));
    assert_eq!(rows[0]["health"], "clean");
    assert_eq!(rows[0]["events"], 121);
    let (rows, kinds) = json_lines(&["events", d, "exec-2", "--json"]);
    assert_eq!((rows.len(), kinds), (40, set(&["event"])));
    assert_eq!(rows[0]["execution"], "exec-2");
    let (rows, kinds) = json_lines(&["verify", d, "--json"]);
    assert_eq!(kinds, set(&["verdict", "verified_segment"]));
    assert_eq!(rows.len(), segs.len() + 1);
    let verdict = rows.last().unwrap();
    assert_eq!(
        (verdict["kind"].as_str(), verdict["health"].as_str()),
        (Some("verdict"), Some("clean"))
    );
    assert_eq!(rows[0]["checkpoint"]["status"], "ok");
    let (_, kinds) = json_lines(&[
        "tail",
        d,
        "exec-0",
        "--json",
        "--from-seq",
        "1",
        "--max-events",
        "2",
        "--timeout",
        "20s",
    ]);
    assert_eq!(kinds, set(&["event"]));
    let (rows, kinds) = json_lines(&[
        "compact",
        d,
        "--drop-tenant",
        "tenant-1",
        "--dry-run",
        "--json",
    ]);
    assert_eq!((rows.len(), kinds), (1, set(&["compaction_estimate"])));
    assert_eq!(rows[0]["events_dropped"], 40);
    let dest = tmp.path().join("copy");
    let (rows, kinds) = json_lines(&["backup", d, dest.to_str().unwrap(), "--json"]);
    assert_eq!((rows.len(), kinds), (1, set(&["backup"])));
    assert_eq!(rows[0]["segments"], segs.len());
    let (_, kinds) = json_lines(&["repair", d, "--dry-run", "--json"]);
    assert_eq!(kinds, set(&["repair_plan"]));
    let (rows, kinds) = json_lines(&["compact", d, "--drop-tenant", "tenant-1", "--yes", "--json"]);
    assert_eq!(kinds, set(&["compaction", "compaction_estimate"]));
    let done = rows.iter().find(|r| r["kind"] == "compaction").unwrap();
    assert_eq!(done["events_dropped"], 40);
    assert!(
        humantime::parse_duration(done["duration"].as_str().unwrap()).is_ok(),
        "duration not in humantime's style: {done}"
    );
}

#[test]
fn damage_is_a_json_line_of_its_own_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let last = segs.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let end = seglog_segment::inspect::analyze_segment(&bytes, 0).data_end as usize;
    std::fs::write(last, &bytes[..end - 7]).unwrap();
    let d = tmp.path().to_str().unwrap();
    let (rows, kinds) = json_lines(&["dump", d, "--json"]);
    assert_eq!(kinds, set(&["damage", "record"]));
    let damage = rows.last().unwrap();
    assert_eq!(damage["status"], "torn_tail");
    let (rows, _) = json_lines(&["verify", d, "--json"]);
    assert_eq!(rows.last().unwrap()["health"], "torn_tail");
    let torn = rows
        .iter()
        .find(|r| r["damage"]["status"] == "torn_tail")
        .unwrap_or_else(|| panic!("no torn segment in {rows:?}"));
    assert_eq!(torn["damage"]["offset"], damage["offset"]);
    let (rows, _) = json_lines(&["stats", d, "--json"]);
    assert_eq!(rows[0]["health"], "torn_tail");
    assert_eq!(rows[0]["torn_tail"]["offset"], damage["offset"]);
}

#[test]
fn a_segment_header_line_reports_the_segments_own_format_version() {
    // A log an older build wrote (format version 4), next to one this build writes.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/v4/checkpoints2");
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    let d = tmp.path().to_str().unwrap();
    let (rows, _) = json_lines(&["dump", d, "--json", "--header"]);
    let headers: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["kind"] == "segment_header")
        .collect();
    assert_eq!(headers.len(), 3);
    for h in headers {
        assert_eq!(h["format_version"], 4, "{h}");
    }
    let now = tempfile::tempdir().unwrap();
    make_log(now.path());
    let (rows, _) = json_lines(&["dump", now.path().to_str().unwrap(), "--json", "--header"]);
    let h = rows.iter().find(|r| r["kind"] == "segment_header").unwrap();
    assert_eq!(
        h["format_version"],
        seglog_segment::format::FORMAT_VERSION,
        "{h}"
    );
}
