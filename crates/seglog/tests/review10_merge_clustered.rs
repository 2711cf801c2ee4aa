//! Review 10 (of the locality change) (minor, not data loss): `merge_small_segments` still picks
//! small clustered segments, but the rewrite never merges a clustered input (each is rewritten
//! alone, format.md §3.5). So once small segments are clustered they can never be merged, and
//! every merge pass (e.g. a periodic maintenance job) rewrites and fsyncs them all again,
//! forever, changing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Log, Options};

#[test]
fn merging_small_clustered_segments_rewrites_them_every_time_and_merges_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline);
    let log = Log::open_blocking(tmp.path(), opts).unwrap();
    for i in 0..80u64 {
        let body = format!("event {i} {}", "z".repeat((i * 11 % 90) as usize));
        log.append_blocking(&format!("exec-{}", i % 4), "t", body.as_bytes())
            .unwrap();
    }
    let view = log.compaction_view(false).unwrap();
    log.compact_blocking(
        &policy::cluster_sealed_segments(&view),
        CompactOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let before = log.segments().len();
    let mut rewritten = Vec::new();
    for _ in 0..3 {
        let view = log.compaction_view(false).unwrap();
        let plan = policy::merge_small_segments(&view, 1 << 20, 1 << 20);
        let report = log
            .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
            .unwrap();
        rewritten.push(report.rewrite.input_segments);
    }
    let after = log.segments().len();
    assert!(
        after < before || rewritten.iter().all(|&n| n == 0),
        "3 merge passes over {before} small segments: inputs rewritten per pass {rewritten:?}, segments after {after}"
    );
}
