//! Reading big executions a chunk at a time: `Log::events` and `Log::read_bounded`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::{policy, Plan};
use seglog::{CheckpointMode, CompactOptions, Error, Log, Options};

fn open(dir: &std::path::Path) -> Log {
    Log::open_blocking(
        dir,
        Options::default()
            .segment_size_bytes(1 << 20)
            .checkpoints(CheckpointMode::Inline),
    )
    .unwrap()
}

fn fill(log: &Log, execution: &str, events: u64) {
    for first in (1..=events).step_by(100) {
        let batch: Vec<Vec<u8>> = (first..(first + 100).min(events + 1))
            .map(|s| format!("{execution}-{s}").into_bytes())
            .collect();
        log.append_batch_blocking(execution, "t", &batch).unwrap();
    }
}

#[test]
fn the_iterator_returns_every_event_in_order_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill(&log, "big", 2_500);
    fill(&log, "other", 10);
    let all: Vec<_> = log.events("big", 1).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 2_500);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(e.payload.as_ref(), format!("big-{}", e.seq).as_bytes());
    }
    assert_eq!(all, log.read("big").unwrap());
    // From inside, from past the end, from 0, and of an unknown execution.
    let tail: Vec<u64> = log.events("big", 2_000).map(|e| e.unwrap().seq).collect();
    assert_eq!(tail, (2_000..=2_500).collect::<Vec<_>>());
    assert_eq!(log.events("big", 2_501).count(), 0);
    assert_eq!(log.events("big", 0).count(), 2_500);
    assert_eq!(log.events("nobody", 1).count(), 0);
    // read_range collects through the same chunks.
    let range = log.read_range("big", 1_000, 1_500).unwrap();
    assert_eq!(range.len(), 1_500);
    assert_eq!(range.first().unwrap().seq, 1_000);
    assert_eq!(range.last().unwrap().seq, 2_499);
}

#[test]
fn a_bounded_read_stops_at_its_byte_budget_but_returns_at_least_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    for i in 0..10u8 {
        log.append_blocking("e", "t", &[i; 100]).unwrap();
    }
    let first = log.read_bounded("e", 1, 350).unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let next = log.read_bounded("e", 4, 350).unwrap();
    assert_eq!(next.first().unwrap().seq, 4);
    assert_eq!(log.read_bounded("e", 1, 1).unwrap().len(), 1);
    assert_eq!(log.read_bounded("e", 1, usize::MAX).unwrap().len(), 10);
    assert!(log.read_bounded("e", 11, 350).unwrap().is_empty());
}

#[test]
fn an_execution_erased_between_chunks_ends_the_iteration_with_erased() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill(&log, "big", 3_000);
    let mut reader = log.events("big", 1);
    for seq in 1..=1_024 {
        assert_eq!(reader.next().unwrap().unwrap().seq, seq);
    }
    // Erase it, and create it again with as many events: the next chunk would be the new
    // incarnation's events 1025.., which belong to another execution.
    let view = log.compaction_view(false).unwrap();
    let plan: Plan = policy::drop_executions(&view, ["big"]);
    log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    fill(&log, "big", 3_000);
    assert!(matches!(
        reader.next(),
        Some(Err(Error::Erased { execution })) if execution == "big"
    ));
    assert!(reader.next().is_none());
    // A fresh reader reads the new incarnation; a whole read of it is consistent.
    assert_eq!(log.events("big", 1).count(), 3_000);
    assert_eq!(log.read("big").unwrap().len(), 3_000);
}

#[test]
fn bounded_reads_page_through_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    for i in 0..100u8 {
        log.append_blocking("e", "t", &[i; 4096]).unwrap();
    }
    // Pages of two events: every event exactly once, in order, across the page boundaries.
    let mut seqs = Vec::new();
    let mut next = 1;
    loop {
        let page = log.read_bounded("e", next, 8192).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        next = page.last().unwrap().seq + 1;
        seqs.extend(page.iter().map(|e| e.seq));
    }
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
}
