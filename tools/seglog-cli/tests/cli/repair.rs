//! `seglog repair`: says exactly what it cuts (segment, offset, bytes, records) before it
//! cuts, cuts exactly that, refuses without --yes off a terminal and on a log in use, and
//! leaves a log `seglog verify` reports clean.

use super::*;
use seglog_segment::inspect::analyze_segment;

/// Flips a bit in record `k` of the segment; returns that record's offset and the number of
/// records in the segment.
fn damage_record(path: &Path, k: usize) -> (u64, usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    bytes[offsets[k] as usize + 50] ^= 0x08;
    std::fs::write(path, &bytes).unwrap();
    (offsets[k], offsets.len())
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn records_in(p: &Path) -> u64 {
    analyze_segment(&std::fs::read(p).unwrap(), 0)
        .record_offsets
        .len() as u64
}

#[test]
fn repair_says_what_it_cuts_cuts_exactly_that_and_verifies_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    assert!(segs.len() >= 4);
    let (offset, in_segment) = damage_record(&segs[1], 2);
    let removed_records: u64 = segs[2..].iter().map(|p| records_in(p)).sum();
    let first = std::fs::read(&segs[0]).unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_eq!(seglog(&["verify", d]).status.code(), Some(2));

    // The dry run says it, and changes nothing.
    let before = snapshot(tmp.path());
    let o = seglog(&["repair", d, "--dry-run", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_same_files(&before, &snapshot(tmp.path()));
    let plan: serde_json::Value = serde_json::from_str(text(&o).lines().next().unwrap()).unwrap();
    assert_eq!(plan["kind"], "repair_plan");
    assert_eq!(plan["cut"]["file"], name(&segs[1]));
    assert_eq!(plan["cut"]["offset"], offset);
    assert_eq!(plan["cut"]["records_kept"], 2);
    assert_eq!(plan["cut"]["records_dropped"], in_segment as u64 - 3);
    assert_eq!(plan["cut"]["acknowledged"], true);
    let removed: Vec<String> = plan["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        removed,
        segs[2..].iter().map(|p| name(p)).collect::<Vec<_>>()
    );
    assert_eq!(
        plan["records_dropped"],
        in_segment as u64 - 3 + removed_records
    );

    // The repair prints the same plan, in words, then does it.
    let o = seglog(&["repair", d, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!(
            "cut segment 2 ({}) at offset {offset}",
            name(&segs[1])
        )),
        "{out}"
    );
    for later in &segs[2..] {
        assert!(out.contains(&format!("({})", name(later))), "{out}");
        assert!(!later.exists(), "{} survived", later.display());
    }
    assert!(out.contains("verifies clean"), "{out}");
    // Exactly the planned prefix is left.
    assert_eq!(std::fs::read(&segs[0]).unwrap(), first);
    assert_eq!(records_in(&segs[1]), 2);
    let cut_bytes = std::fs::read(&segs[1]).unwrap();
    assert_eq!(analyze_segment(&cut_bytes, 0).data_end, {
        // The records kept end where the damaged one began (a commit marker may follow).
        let a = analyze_segment(&cut_bytes, 0);
        a.data_end.max(offset)
    });
    assert!(cut_bytes.len() as u64 <= offset + seglog_segment::format::COMMIT_MARKER_LEN as u64);
    let o = seglog(&["verify", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A second repair has nothing to do.
    let before = snapshot(tmp.path());
    let o = seglog(&["repair", d, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(text(&o).contains("nothing to repair"), "{}", text(&o));
    assert_same_files(&before, &snapshot(tmp.path()));
}

#[test]
fn repair_of_a_torn_tail_says_it_was_never_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let last = segs.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let last_record = *analyze_segment(&bytes, 0).record_offsets.last().unwrap();
    let torn = &bytes[..last_record as usize + 30];
    std::fs::write(last, torn).unwrap();
    // Bytes up to the last non-zero one count (zeros read as preallocated space).
    let nonzero = torn[last_record as usize..]
        .iter()
        .rposition(|&b| b != 0)
        .unwrap()
        + 1;
    let d = tmp.path().to_str().unwrap();
    let o = seglog(&["repair", d, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = text(&o);
    assert!(out.contains("never acknowledged"), "{out}");
    assert!(out.contains(&format!("at offset {last_record}")), "{out}");
    assert!(out.contains(&format!("({nonzero} bytes)")), "{out}");
    assert_eq!(seglog(&["verify", d]).status.code(), Some(0));
}

#[test]
fn repair_refuses_what_salvage_cannot_cut_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    bytes[0] ^= 0xff; // a sealed segment's header
    std::fs::write(&segs[1], &bytes).unwrap();
    let before = snapshot(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let o = seglog(&["repair", d, "--yes"]);
    assert_clean_failure(&o, 2);
    assert!(err(&o).contains("salvage cannot repair"), "{}", err(&o));
    assert_same_files(&before, &snapshot(tmp.path()));
}

#[test]
fn repair_never_touches_a_log_a_writer_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let holder = seglog::Log::open_blocking(tmp.path(), Options::default()).unwrap();
    damage_record(&segs[1], 1);
    let before = snapshot(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let o = seglog(&["repair", d, "--yes"]);
    assert_clean_failure(&o, 3);
    assert!(err(&o).contains("open in another process"), "{}", err(&o));
    assert!(text(&o).is_empty(), "planned a log in use: {}", text(&o));
    assert_same_files(&before, &snapshot(tmp.path()));
    holder.close().unwrap();
}

#[test]
fn repair_of_a_directory_without_a_log_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    assert_clean_failure(&seglog(&["repair", d, "--yes"]), 3);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// A damaged `LOG_ID`: `verify` calls it corruption, `stats` says so, a plain repair refuses
/// (naming `--log-id`) and changes nothing, `repair --log-id <hex>` writes that identity back
/// and the log opens with it; `--new-log-id` draws a new one.
#[test]
fn a_damaged_identity_is_reported_and_repair_log_id_writes_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let id_path = tmp.path().join(seglog_segment::format::LOG_ID_FILE_NAME);
    let id = seglog_segment::format::LogId::decode(&std::fs::read(&id_path).unwrap()).unwrap();
    let mut bytes = std::fs::read(&id_path).unwrap();
    bytes[13] ^= 0x20;
    std::fs::write(&id_path, &bytes).unwrap();

    let verified = seglog(&["verify", d]);
    assert_eq!(verified.status.code(), Some(2));
    assert!(text(&verified).contains("identity:"), "{}", text(&verified));
    // In JSON, the damage is its own kind (not an index problem), and the verdict counts it.
    let json = seglog(&["verify", d, "--json"]);
    assert_eq!(json.status.code(), Some(2));
    let lines: Vec<serde_json::Value> = text(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let identity: Vec<_> = lines
        .iter()
        .filter(|l| l["kind"] == "identity_problem")
        .collect();
    assert_eq!(identity.len(), 1, "{}", text(&json));
    let problem = identity[0]["problem"].as_str().unwrap();
    assert!(problem.contains("LOG_ID"), "{problem}");
    assert!(
        !problem.contains("segment 0"),
        "not a segment's damage: {problem}"
    );
    assert!(!lines.iter().any(|l| l["kind"] == "index_problem"));
    let verdict = lines.iter().find(|l| l["kind"] == "verdict").unwrap();
    assert_eq!(verdict["health"], "corruption", "{verdict}");
    assert_eq!(verdict["identity_problem"], true, "{verdict}");
    let stats = seglog(&["stats", d]);
    assert!(
        text(&stats).contains("log id      damaged"),
        "{}",
        text(&stats)
    );
    let before = snapshot(tmp.path());
    let refused = seglog(&["repair", d, "--yes"]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(err(&refused).contains("--log-id"), "{}", err(&refused));
    assert_eq!(
        snapshot(tmp.path()),
        before,
        "a refused repair changed the log"
    );
    let bad = seglog(&["repair", d, "--yes", "--log-id", "not-hex"]);
    assert_ne!(bad.status.code(), Some(0));
    assert_eq!(snapshot(tmp.path()), before);

    let mended = seglog(&["repair", d, "--yes", "--log-id", &id.to_string()]);
    assert_eq!(mended.status.code(), Some(0), "{}", err(&mended));
    assert_eq!(seglog(&["verify", d]).status.code(), Some(0));
    let log = seglog::Log::open_blocking(tmp.path(), seglog::Options::default()).unwrap();
    assert_eq!(log.log_id(), Some(id));
    log.close().unwrap();
    drop(log);

    let renewed = seglog(&["repair", d, "--yes", "--new-log-id"]);
    assert_eq!(renewed.status.code(), Some(0), "{}", err(&renewed));
    let log = seglog::Log::open_blocking(tmp.path(), seglog::Options::default()).unwrap();
    assert!(log.log_id().is_some_and(|new| new != id));
    log.close().unwrap();
}
