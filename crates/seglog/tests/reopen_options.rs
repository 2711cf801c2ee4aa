//! A log opened again with other options still reads everything it holds: records are read
//! by what fits in their file (docs/format.md §3.1), never by the writer's current limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::{Log, Options};

#[test]
fn records_larger_than_the_current_limit_read_back_after_a_reopen_with_smaller_segments() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![0x5au8; 300 << 10];
    let large = Options::default().segment_size_bytes(1 << 20);
    let log = Log::open_blocking(dir.path(), large).unwrap();
    // Four of them fill more than one segment: a sealed segment and the active one both hold
    // big records.
    for _ in 0..4 {
        log.append_blocking("big", "tenant", &big).unwrap();
    }
    assert!(log.segments().len() >= 2);
    log.close().unwrap();
    // `seglog compact --segment-size` and a changed config both do this: 64 KiB segments,
    // whose largest record is under 64 KiB.
    let small = Options::default().segment_size_bytes(64 << 10);
    let log = Log::open_blocking(dir.path(), small).unwrap();
    let events = log
        .read("big")
        .unwrap_or_else(|e| panic!("records written under a larger limit are unreadable: {e}"));
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.payload[..] == big[..]));
    log.close().unwrap();
}

#[test]
fn segments_opened_from_checkpoints_report_their_last_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        Options::default()
            .segment_size_bytes(4096)
            .checkpoints(seglog::CheckpointMode::Inline)
    };
    let log = Log::open_blocking(dir.path(), options()).unwrap();
    for i in 0..400u64 {
        log.append_blocking("exec", "tenant", format!("event {i}").as_bytes())
            .unwrap();
    }
    let written = log.segments();
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), options()).unwrap();
    assert!(log.stats().recovery.checkpoints_loaded >= 2);
    let reopened = log.segments();
    for (w, r) in written.iter().zip(&reopened).filter(|(w, _)| w.sealed) {
        assert_eq!(
            (r.number, r.last_lsn),
            (w.number, w.last_lsn),
            "a segment opened from its checkpoint reports another last LSN"
        );
        // And the LSNs of the segments follow each other.
        assert!(r.last_lsn >= r.first_lsn);
    }
    log.close().unwrap();
}
