//! A log directory with offloaded segments (their files in object storage, offload stubs in
//! their place): `events`, `dump` and `stats` never present what the directory holds as the
//! whole log. `events` refuses an execution whose asked-for events are partly offloaded
//! (rather than list them from a gap), `dump` names each offloaded segment, `stats` counts
//! their records from their checkpoints.

use super::*;

/// A source that is never read here (offloading needs one set).
#[derive(Debug)]
struct NoBucket;

impl seglog::SegmentSource for NoBucket {
    fn read_ranges(
        &self,
        _segment: &seglog::OffloadedSegment,
        _ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>, seglog::SourceError> {
        Err("no bucket in this test".into())
    }
}

/// `make_log`'s log with every sealed segment before the last two offloaded (the bytes
/// vouched for by the file itself: nothing is read from the "bucket" here). Returns the
/// offloaded segments' count.
fn offloaded_log(dir: &Path) -> usize {
    make_log(dir);
    let log = seglog::Log::open_blocking(
        dir,
        Options::default()
            .segment_size_bytes(4096)
            .checkpoints(CheckpointMode::Inline),
    )
    .unwrap();
    log.set_segment_source(std::sync::Arc::new(NoBucket));
    let segments = log.segments();
    let mut n = 0;
    for s in segments.iter().take(segments.len().saturating_sub(2)) {
        let bytes = std::fs::read(&s.path).unwrap();
        let target = seglog::OffloadTarget {
            location: format!("logs/p0/segments/{}", s.number),
            len: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        log.offload_segment(s.number, &target).unwrap();
        n += 1;
    }
    log.close().unwrap();
    n
}

#[test]
fn events_of_an_execution_partly_offloaded_are_refused_not_listed_from_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let offloaded = offloaded_log(tmp.path());
    assert!(offloaded >= 2, "{offloaded}");
    let dir = tmp.path().to_str().unwrap();
    let o = seglog(&["events", dir, "exec-2"]);
    assert_clean_failure(&o, 3);
    assert!(err(&o).contains("offloaded"), "{}", err(&o));
    assert!(text(&o).is_empty(), "nothing listed: {}", text(&o));
    // The message names where the local events start: from there, they are all shown.
    let from = err(&o)
        .split("--from-seq ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a --from-seq to use");
    assert!(from > 1 && from <= 40, "{from}");
    let o = seglog(&[
        "events",
        dir,
        "exec-2",
        "--from-seq",
        &from.to_string(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let seqs: Vec<u64> = text(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (from..=40).collect::<Vec<_>>());
    // An execution with no offloaded event is listed as before.
    let o = seglog(&["events", dir, "evil\x1b[31m\nid"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn dump_names_offloaded_segments_and_stats_counts_their_records() {
    let tmp = tempfile::tempdir().unwrap();
    let offloaded = offloaded_log(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let o = seglog(&["dump", dir, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let lines: Vec<serde_json::Value> = text(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let named = lines
        .iter()
        .filter(|l| l["kind"] == "offloaded_segment")
        .count();
    assert_eq!(named, offloaded);
    assert!(err(&o).contains("offloaded"), "{}", err(&o));

    // The same totals as before the offload: records of offloaded segments counted from
    // their checkpoints.
    let o = seglog(&["stats", dir, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let s: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
    assert_eq!(
        (
            s["records"].as_u64(),
            s["events"].as_u64(),
            s["executions"].as_u64(),
            s["tenants"].as_u64(),
            s["offloaded_segments"].as_u64()
        ),
        (
            Some(121),
            Some(121),
            Some(4),
            Some(2),
            Some(offloaded as u64)
        )
    );
}
