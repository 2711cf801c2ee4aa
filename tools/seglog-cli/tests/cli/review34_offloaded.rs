//! Review 34: the CLI on directories with offload stubs.

use super::*;

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

fn opts() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .checkpoints(CheckpointMode::Inline)
}

/// Offloads every sealed segment but the last two; returns (number, path, bytes) of each.
fn offload_all_but_two(dir: &Path) -> Vec<(u64, PathBuf, Vec<u8>)> {
    let log = seglog::Log::open_blocking(dir, opts()).unwrap();
    log.set_segment_source(std::sync::Arc::new(NoBucket));
    let segments = log.segments();
    let mut out = Vec::new();
    for s in segments.iter().take(segments.len().saturating_sub(2)) {
        let bytes = std::fs::read(&s.path).unwrap();
        let target = seglog::OffloadTarget {
            location: format!("logs/p0/segments/{}", s.number),
            len: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        log.offload_segment(s.number, &target).unwrap();
        out.push((s.number, s.path.clone(), bytes));
    }
    log.close().unwrap();
    out
}

/// An execution whose events are all in offloaded segments, asked from the `--from-seq` the
/// refusal names: the log holds the execution (the same question on the directory before
/// the offload exits 0), so "no events for execution" / exit 4 (not found) is wrong.
#[test]
fn events_past_an_all_offloaded_execution_are_not_reported_as_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let log = seglog::Log::open_blocking(dir, opts()).unwrap();
        for i in 0..5 {
            log.append_blocking("early", "t", format!("early {i}").as_bytes())
                .unwrap();
        }
        for i in 0..150 {
            log.append_blocking(
                "late",
                "t",
                format!("late {i} {}", "x".repeat(100)).as_bytes(),
            )
            .unwrap();
        }
        log.close().unwrap();
    }
    let d = dir.to_str().unwrap();
    let before = seglog(&["events", d, "early", "--from-seq", "6"]);
    assert_eq!(before.status.code(), Some(0), "before: {}", err(&before));

    let offloaded = offload_all_but_two(dir);
    assert!(offloaded.len() >= 2);
    let o = seglog(&["events", d, "early"]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("--from-seq 6"), "{}", err(&o));
    // As told: --from-seq 6.
    let o = seglog(&["events", d, "early", "--from-seq", "6"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the execution exists (its events are offloaded); stderr: {}",
        err(&o)
    );
}

/// A crash during an offload after the stub was made durable (or during a rehydration after
/// the file was renamed in) leaves both `<lsn>.off` and `<lsn>.seg` (docs: the next open
/// finishes the offload). The log holds that segment once; `stats` counts it twice.
#[test]
fn stats_counts_a_segment_with_both_stub_and_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let offloaded = offload_all_but_two(tmp.path());
    // The file of the first offloaded segment comes back, as a crash leaves it.
    let (_, path, bytes) = &offloaded[0];
    std::fs::write(path, bytes).unwrap();

    let o = seglog(&["stats", d, "--json"]);
    let s: serde_json::Value = serde_json::from_str(&text(&o)).unwrap();
    // What the log opens to: the same 121 records (the open finishes the offload).
    let log = seglog::Log::open_read_only_with_fs(seglog::io::StdFs, tmp.path()).unwrap();
    let all = log.all_segments().len() as u64;
    drop(log);
    assert_eq!(
        (
            s["records"].as_u64(),
            s["events"].as_u64(),
            s["segments"].as_u64()
        ),
        (Some(121), Some(121), Some(all)),
        "{s}"
    );
}

/// An offloaded segment whose checkpoint is gone: its records are nowhere in the directory
/// and the log does not open (verify and stats exit 2). `dump` exits 0 ("the log is clean").
#[test]
fn dump_of_an_offloaded_segment_without_checkpoint_is_not_clean() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let d = tmp.path().to_str().unwrap();
    let offloaded = offload_all_but_two(tmp.path());
    let first = seglog::offloaded_segments_in(tmp.path()).unwrap()[0].clone();
    assert_eq!(first.number, offloaded[0].0);
    std::fs::remove_file(
        tmp.path()
            .join(seglog_index::checkpoint::checkpoint_file_name(
                first.first_lsn,
            )),
    )
    .unwrap();
    let stats = seglog(&["stats", d]);
    assert_eq!(stats.status.code(), Some(2), "stats: {}", err(&stats));
    let o = seglog(&["dump", d]);
    assert_eq!(o.status.code(), Some(2), "dump: {}\n{}", err(&o), text(&o));
}
