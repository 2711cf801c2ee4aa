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
