//! `RecoveryMode::Salvage` on a log damaged in the middle: it must end in a log that opens —
//! now and later in the default mode — keeping exactly the undamaged prefix, and say what it
//! dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::small_inline_opts as opts;

use seglog::{Log, RecoveryMode};
use seglog_segment::inspect::analyze_segment;

#[test]
fn salvage_keeps_the_undamaged_prefix_and_the_log_opens_again_in_the_default_mode() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail)).unwrap();
    // Four executions interleaved over several segments.
    let mut written = Vec::new();
    for i in 0..120u64 {
        let exec = format!("exec-{}", i % 4);
        let body = format!("event {i} {}", "y".repeat((i * 7 % 80) as usize));
        let seq = log
            .append_blocking(&exec, "tenant", body.as_bytes())
            .unwrap();
        written.push((exec, seq, body));
    }
    let segments = log.segments();
    assert!(segments.len() >= 4);
    log.close().unwrap();
    // A bit flips in the middle of the second segment.
    let victim = &segments[1];
    let mut bytes = std::fs::read(&victim.path).unwrap();
    let offsets = analyze_segment(&bytes, 0).record_offsets;
    let damaged_at = offsets[offsets.len() / 2];
    bytes[damaged_at as usize + 50] ^= 0x01;
    std::fs::write(&victim.path, &bytes).unwrap();
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::Salvage))
        .unwrap_or_else(|e| panic!("salvage did not open the log: {e}"));
    // What the salvage cut is in the log's statistics: the damaged segment, where, and
    // every later segment it removed.
    let recovery = log.stats().recovery;
    assert_eq!(recovery.salvaged.len(), 1, "{recovery:?}");
    assert_eq!(recovery.salvaged[0].segment, victim.number, "{recovery:?}");
    assert_eq!(recovery.salvaged[0].offset, damaged_at, "{recovery:?}");
    assert_eq!(
        recovery.salvage_removed.len(),
        segments.len() - 2,
        "{recovery:?}"
    );
    let kept: Vec<(String, u64, String)> = (0..4)
        .flat_map(|e| {
            let exec = format!("exec-{e}");
            log.read(&exec)
                .unwrap()
                .into_iter()
                .map(move |ev| {
                    (
                        exec.clone(),
                        ev.seq,
                        String::from_utf8(ev.payload.to_vec()).unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // Exactly what was written before the damaged record, in every execution.
    let before_damage: Vec<_> = written
        .iter()
        .take_while(|(_, _, body)| !bytes_contain(&bytes, damaged_at, body))
        .cloned()
        .collect();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    let mut expected = before_damage.clone();
    expected.sort();
    assert_eq!(kept_sorted, expected);
    assert!(!before_damage.is_empty() && before_damage.len() < written.len());
    // Appends continue each execution's sequence.
    let next = log
        .append_blocking("exec-0", "tenant", b"after salvage")
        .unwrap();
    let had = before_damage
        .iter()
        .filter(|(e, _, _)| e == "exec-0")
        .count() as u64;
    assert_eq!(next, had + 1);
    log.close().unwrap();
    // And the default mode opens it from now on.
    let log = Log::open_blocking(dir.path(), opts(RecoveryMode::TolerateTornTail))
        .unwrap_or_else(|e| panic!("after salvage the log does not open normally: {e}"));
    assert_eq!(log.count("exec-0").unwrap(), had + 1);
    log.close().unwrap();
}

/// True when the record at `offset` of a segment's bytes holds `body`.
fn bytes_contain(segment: &[u8], offset: u64, body: &str) -> bool {
    let rec = &segment[offset as usize..];
    let len = u32::from_le_bytes(rec[..4].try_into().unwrap()) as usize;
    rec[..len.min(rec.len())]
        .windows(body.len())
        .any(|w| w == body.as_bytes())
}
