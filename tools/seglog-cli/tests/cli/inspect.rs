//! dump, verify, stats and events on logs made here, and on hostile files.

use super::*;
use proptest::prelude::*;
use seglog::{Log, Options};

#[test]
fn dump_lists_every_record_and_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    assert!(segs.len() >= 3);
    let dir = tmp.path().to_str().unwrap();
    let o = seglog(&["dump", dir]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = text(&o);
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 121, "{out}");
    assert!(
        out.lines().all(|l| l.chars().count() <= 100),
        "line over 100 columns"
    );
    assert!(
        out.contains("evil\\u{1b}"),
        "control characters not escaped"
    );
    assert!(
        !out.contains('\x1b'),
        "a raw control character reached the terminal"
    );
    let o = seglog(&["dump", dir, "--execution", "exec-1", "--json", "--decode"]);
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 40);
    assert!(rows
        .iter()
        .all(|r| r["execution"] == "exec-1" && r["checksum"] == "ok"));
    assert_eq!(rows[0]["events"][0]["type"], "execution_paused");
    assert_eq!(rows[0]["events"][0]["reason"], "reason 1");
    let o = seglog(&["dump", dir, "--tenant", "tenant-1", "--json"]);
    assert_eq!(text(&o).lines().count(), 40);
    let o = seglog(&["dump", dir, "--from-lsn", "10", "--to-lsn", "19", "--json"]);
    let lsns: Vec<u64> = text(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["lsn"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(lsns, (10..=19).collect::<Vec<_>>());
    let o = seglog(&["dump", segs[1].to_str().unwrap(), "--header", "--json"]);
    let first: serde_json::Value = serde_json::from_str(text(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["segment"], 2);
}

#[test]
fn verify_exit_codes_follow_the_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let o = seglog(&["verify", dir]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("clean"));
    assert!(text(&o).contains("checkpoint: ok"));

    // A torn tail: the last record cut short.
    let last = segs.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let end = seglog_segment::inspect::analyze_segment(&bytes, 0).data_end as usize;
    std::fs::write(last, &bytes[..end - 7]).unwrap();
    let o = seglog(&["verify", dir]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("torn tail"));
    std::fs::write(last, &bytes).unwrap();

    // A bit flipped in a sealed segment.
    let mut sealed = std::fs::read(&segs[0]).unwrap();
    sealed[200] ^= 0x20;
    std::fs::write(&segs[0], &sealed).unwrap();
    let o = seglog(&["verify", dir]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("CORRUPT"));
    let o = seglog(&["dump", dir]);
    assert_eq!(o.status.code(), Some(2));
}

/// A sealed segment file as the index layer describes it (for writing its checkpoint), and
/// its header.
fn sealed_segment_info(
    path: &Path,
) -> (
    seglog_segment::SegmentInfo,
    seglog_segment::format::SegmentHeader,
) {
    let bytes = seglog_segment::inspect::read_file(&seglog_segment::io::StdFs, path).unwrap();
    let a = seglog_segment::inspect::analyze_segment(&bytes, 0);
    let h = a.header.clone().unwrap();
    let info = seglog_segment::SegmentInfo {
        number: h.segment_number,
        first_lsn: h.first_lsn,
        last_lsn: a.last_lsn,
        path: path.to_path_buf(),
        data_end: bytes.len() as u64,
        sealed: true,
        created_unix_nanos: 0,
        record_salt: h.record_salt(),
        clustered: h.clustered,
    };
    (info, h)
}

#[test]
fn a_damaged_checkpoint_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let (info, h) = sealed_segment_info(&segs[0]);
    // A well-formed checkpoint whose record points past the end of the segment.
    let cp = seglog_index::checkpoint::DecodedCheckpoint {
        strings: vec!["exec-0".into(), "tenant-0".into()],
        records: vec![seglog_index::checkpoint::CheckpointRecord {
            execution: 0,
            tenant: 1,
            offset: u32::MAX,
            event_count: 1,
            first_seq: 1,
            lsn: 1,
            timestamp_unix_nanos: 0,
        }],
    };
    let path = tmp
        .path()
        .join(seglog_index::checkpoint::checkpoint_file_name(h.first_lsn));
    std::fs::write(&path, seglog_index::checkpoint::encode(&info, &cp)).unwrap();
    let o = seglog(&["verify", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("checkpoint: DAMAGED"), "{}", text(&o));
    // The log itself still opens: the checkpoint is ignored, the segment scanned.
    let log = Log::open_blocking(tmp.path(), Options::default().segment_size_bytes(4096)).unwrap();
    assert_eq!(log.count("exec-0").unwrap(), 40);
    assert_eq!(
        log.stats().recovery.checkpoints_loaded + 2,
        log.segments().len()
    );
}

#[test]
fn stats_and_events_describe_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let o = seglog(&["stats", dir, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let s: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
    assert_eq!(
        (
            s["records"].as_u64(),
            s["events"].as_u64(),
            s["executions"].as_u64(),
            s["tenants"].as_u64()
        ),
        (Some(121), Some(121), Some(4), Some(2))
    );
    assert_eq!(
        s["checkpoints"]["with_valid_checkpoint"],
        s["checkpoints"]["sealed_segments"]
    );
    assert!(s["torn_tail"].is_null());
    let o = seglog(&["stats", dir]);
    assert!(text(&o).contains("executions  4"));
    let o = seglog(&["events", dir, "exec-2", "--json"]);
    let rows: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
    assert_eq!(rows[39]["event"]["reason"], "reason 119");
    let o = seglog(&["events", dir, "exec-2"]);
    assert!(
        text(&o)
            .lines()
            .nth(1)
            .unwrap()
            .contains("execution_paused reason=reason 2"),
        "{}",
        text(&o)
    );
}

#[test]
fn hostile_files_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("00000000000000000001.seg");
    // Random bytes.
    std::fs::write(
        &f,
        (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_clean_failure(&seglog(&["dump", f.to_str().unwrap()]), 2);
    // A valid header, then a record claiming 4 GiB.
    let header = seglog_segment::format::SegmentHeader {
        segment_number: 1,
        first_lsn: 1,
        created_unix_nanos: 0,
        salt: 7,
        compacted: false,
        clustered: false,
    }
    .encode();
    let mut b = header.to_vec();
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&[7u8; 100]);
    std::fs::write(&f, &b).unwrap();
    let o = seglog(&["dump", f.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a lone file's bad tail is a torn tail: {}",
        text(&o)
    );
    assert!(text(&o).contains("impossible record length"));
    // Truncated inside the header: a segment whose creation a crash cut, which the next
    // open removes (a leftover, as a torn tail)...
    std::fs::write(&f, &header[..30]).unwrap();
    assert_clean_failure(&seglog(&["verify", tmp.path().to_str().unwrap()]), 1);
    // ...but not with data after where the header would be.
    let mut b = header[..30].to_vec();
    b.resize(200, 7);
    std::fs::write(&f, &b).unwrap();
    assert_clean_failure(&seglog(&["verify", tmp.path().to_str().unwrap()]), 2);
    // Not there at all; not a log directory.
    assert_clean_failure(&seglog(&["dump", "/nonexistent/seglog"]), 3);
    let empty = tempfile::tempdir().unwrap();
    assert_clean_failure(&seglog(&["stats", empty.path().to_str().unwrap()]), 3);
    // Usage errors.
    assert_eq!(seglog(&["dump"]).status.code(), Some(64));
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        "demo", "dump", "verify", "stats", "events", "tail", "compact",
    ] {
        let o = seglog(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(text(&o).contains("Example"), "{cmd} --help has no example");
        assert!(
            text(&o).lines().all(|l| l.chars().count() <= 100),
            "{cmd} --help wider than 100 columns"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_bytes_never_crash_the_cli(bytes in proptest::collection::vec(any::<u8>(), 0..2000), with_header in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("00000000000000000001.seg");
        let mut content = Vec::new();
        if with_header {
            content.extend_from_slice(&seglog_segment::format::SegmentHeader { segment_number: 1, first_lsn: 1, created_unix_nanos: 0, salt: 7, compacted: false, clustered: false }.encode());
        }
        content.extend_from_slice(&bytes);
        std::fs::write(&f, &content).unwrap();
        let d = tmp.path().to_str().unwrap();
        for args in [
            vec!["dump", f.to_str().unwrap(), "--decode"],
            vec!["verify", d],
            vec!["stats", d],
            vec!["tail", d, "e", "--from-seq", "0", "--timeout", "0s"],
            vec!["compact", d, "--drop-tenant", "t", "--merge-small", "--dry-run"],
        ] {
            let o = seglog(&args);
            let code = o.status.code();
            prop_assert!(matches!(code, Some(0..=2)), "{args:?} exited {code:?}: {}", err(&o));
            prop_assert!(!err(&o).contains("panicked"));
        }
        // An execution the log does not hold: 4, unless damage outranks it.
        let o = seglog(&["events", d, "e"]);
        prop_assert!(matches!(o.status.code(), Some(2 | 4)), "events exited {:?}: {}", o.status.code(), err(&o));
        // Repair last (it writes): it fixes what it can and says so, or refuses cleanly; a
        // repair that reports success leaves a log that verifies clean.
        let o = seglog(&["repair", d, "--yes"]);
        let code = o.status.code();
        prop_assert!(matches!(code, Some(0 | 2 | 3)), "repair exited {code:?}: {}", err(&o));
        prop_assert!(!err(&o).contains("panicked"));
        if code == Some(0) && f.exists() {
            let v = seglog(&["verify", d]);
            prop_assert_eq!(v.status.code(), Some(0), "repaired but not clean: {}", text(&v));
        }
    }
}

#[test]
fn a_record_whose_sequence_would_overflow_fails_no_command() {
    // A well-formed, checksummed record claiming events u64::MAX and u64::MAX + 1.
    let tmp = tempfile::tempdir().unwrap();
    let header = seglog_segment::format::SegmentHeader {
        segment_number: 1,
        first_lsn: 1,
        created_unix_nanos: 0,
        salt: 1,
        compacted: false,
        clustered: false,
    };
    let batch = seglog_segment::format::EventBatch {
        encoding: 0,
        execution_id: b"e",
        tenant_id: b"t",
        first_seq: u64::MAX,
        timestamp_unix_nanos: 0,
        payloads: &[b"a".as_slice(), b"b"],
    };
    let record = seglog_segment::format::EncodedRecord::new(&batch, 1 << 20)
        .unwrap()
        .seal(1, 1, 0);
    let seg = tmp
        .path()
        .join(seglog_segment::format::segment_file_name(1));
    std::fs::write(&seg, [&header.encode()[..], &record].concat()).unwrap();
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["events", d, "e"],
        vec!["tail", d, "e", "--from-seq", "0", "--timeout", "0s"],
        vec!["dump", d, "--decode"],
        vec!["stats", d],
        vec!["compact", d, "--drop-execution", "e", "--dry-run"],
    ] {
        let o = seglog(&args);
        assert!(!err(&o).contains("panicked"), "{args:?}: {}", err(&o));
        assert!(
            matches!(o.status.code(), Some(0..=2)),
            "{args:?}: {}",
            err(&o)
        );
    }
}

#[test]
fn verify_compares_each_checkpoint_entry_with_its_record() {
    // A checkpoint that decodes and lists as many records as its segment holds, but says
    // another execution's sequence for one of them: an open would build a wrong index from it.
    let tmp = tempfile::tempdir().unwrap();
    let segs = make_log(tmp.path());
    let (info, h) = sealed_segment_info(&segs[0]);
    let path = tmp
        .path()
        .join(seglog_index::checkpoint::checkpoint_file_name(h.first_lsn));
    let mut cp = seglog_index::checkpoint::decode(&std::fs::read(&path).unwrap(), &info).unwrap();
    let o = seglog(&["verify", tmp.path().to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the real checkpoint: {}",
        text(&o)
    );
    let last = cp.records.len() - 1;
    cp.records[last].first_seq += 1000;
    std::fs::write(&path, seglog_index::checkpoint::encode(&info, &cp)).unwrap();
    let o = seglog(&["verify", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("checkpoint: DAMAGED"), "{}", text(&o));
}
