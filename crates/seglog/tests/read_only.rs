//! `Log::open_read_only`: a reader that does not own the log sees only what the writer
//! acknowledged, catches up with `refresh`, survives the writer's compactions without ever
//! returning wrong data, refuses appends, and leaves the directory byte for byte unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::io::sim::SimFs;
use seglog::io::FileSystem;
use seglog::{CheckpointMode, CompactOptions, Error, Log, Options};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

fn small(checkpoints: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(checkpoints)
}

fn payload(exec: &str, seq: u64) -> Vec<u8> {
    format!("{exec}/{seq}/{}", "x".repeat((seq % 40) as usize)).into_bytes()
}

/// Every file of `dir`: name → contents.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Reads `exec` and checks it is seq 1..=n with the payloads the writer wrote; returns n.
fn check_prefix<F: FileSystem>(log: &Log<F>, exec: &str) -> u64 {
    let events = log.read(exec).unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            i as u64 + 1,
            "{exec}: sequences must be dense from 1"
        );
        assert_eq!(
            &e.payload[..],
            &payload(exec, e.seq)[..],
            "{exec}: wrong payload"
        );
    }
    events.len() as u64
}

#[test]
fn a_concurrent_readers_view_is_always_a_prefix_of_what_the_writer_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), small(CheckpointMode::Background)).unwrap();
    writer
        .append_blocking("e0", "t", &payload("e0", 1))
        .unwrap();
    const EXECS: usize = 3;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..EXECS).map(|_| AtomicU64::new(0)).collect());
    acked[0].store(1, Ordering::SeqCst);
    let done = Arc::new(AtomicBool::new(false));
    let writing = {
        let (writer, acked, done) = (writer.clone(), acked.clone(), done.clone());
        std::thread::spawn(move || {
            // One thread, one append at a time: an event is acknowledged (and counted)
            // before the next record, the first that can vouch for it, is written.
            for i in 1..600u64 {
                let k = (i % EXECS as u64) as usize;
                let exec = format!("e{k}");
                let seq = acked[k].load(Ordering::SeqCst) + 1;
                let got = writer
                    .append_blocking(&exec, "t", &payload(&exec, seq))
                    .unwrap();
                assert_eq!(got, seq);
                acked[k].store(seq, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    let mut refreshes = 0;
    let mut grew = 0;
    let mut last_seen = [0u64; EXECS];
    while !done.load(Ordering::SeqCst) {
        reader.refresh().unwrap();
        refreshes += 1;
        for (k, seen_before) in last_seen.iter_mut().enumerate() {
            let exec = format!("e{k}");
            let seen = check_prefix(&reader, &exec);
            // Read after the read: the writer may only have moved on.
            let acknowledged = acked[k].load(Ordering::SeqCst);
            assert!(
                seen <= acknowledged,
                "{exec}: the reader sees {seen} events, the writer acknowledged {acknowledged}"
            );
            assert!(seen >= *seen_before, "{exec}: a refresh went backwards");
            grew += u64::from(seen > *seen_before);
            *seen_before = seen;
        }
    }
    writing.join().unwrap();
    assert!(
        refreshes > 1 && grew > 0,
        "the reader never saw the log grow"
    );
    writer.close().unwrap();
    // The close's commit marker vouches for everything: the refresh sees every event.
    reader.refresh().unwrap();
    for (k, count) in acked.iter().enumerate() {
        let exec = format!("e{k}");
        assert_eq!(check_prefix(&reader, &exec), count.load(Ordering::SeqCst));
    }
    assert!(
        reader.segments().len() > 3,
        "the test should span several segments"
    );
}

#[test]
fn refresh_sees_events_acknowledged_before_the_writers_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), Options::default()).unwrap();
    for seq in 1..=10 {
        writer
            .append_blocking("a", "t", &payload("a", seq))
            .unwrap();
    }
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    // The tenth is acknowledged, but nothing after it proves it durable yet.
    assert_eq!(check_prefix(&reader, "a"), 9);
    for seq in 11..=20 {
        writer
            .append_blocking("a", "t", &payload("a", seq))
            .unwrap();
    }
    assert_eq!(check_prefix(&reader, "a"), 9, "no refresh, no new events");
    reader.refresh().unwrap();
    assert_eq!(check_prefix(&reader, "a"), 19);
    assert_eq!(reader.latest_seq("a").unwrap(), Some(19));
    writer.append_blocking("b", "t", &payload("b", 1)).unwrap();
    reader.refresh().unwrap();
    assert_eq!(check_prefix(&reader, "a"), 20);
    assert_eq!(
        reader.list_executions("t", 10, 0).unwrap(),
        vec!["a".to_string()]
    );
    writer.close().unwrap();
    reader.refresh().unwrap();
    assert_eq!(check_prefix(&reader, "b"), 1);
    assert_eq!(
        reader.list_executions("t", 10, 0).unwrap(),
        vec!["b".to_string(), "a".to_string()]
    );
}

#[test]
fn appends_syncs_and_compactions_on_a_read_only_log_fail_with_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), Options::default()).unwrap();
    writer.append_blocking("a", "t", b"x").unwrap();
    writer.close().unwrap();
    let before = files(dir.path());
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    assert!(reader.is_read_only());
    let err = reader.append_blocking("a", "t", b"y").unwrap_err();
    assert!(matches!(err, Error::ReadOnly), "{err:?}");
    assert!(err.is_read_only());
    let err = reader
        .append_batch_blocking("new", "t", &[b"y".as_slice()])
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly), "{err:?}");
    assert!(matches!(
        reader.sync_blocking().unwrap_err(),
        Error::ReadOnly
    ));
    let plan = policy::drop_tenant(&reader.compaction_view(false).unwrap(), "t");
    let err = reader
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly), "{err:?}");
    // A failed append leaves no trace.
    assert_eq!(reader.read("a").unwrap().len(), 1);
    assert_eq!(reader.latest_seq("new").unwrap(), None);
    reader.close().unwrap();
    assert_eq!(files(dir.path()), before);
}

#[test]
fn a_read_only_open_leaves_the_directory_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), small(CheckpointMode::Inline)).unwrap();
    for i in 0..200u64 {
        let exec = format!("e{}", i % 4);
        let seq = i / 4 + 1;
        writer
            .append_blocking(&exec, "t", &payload(&exec, seq))
            .unwrap();
    }
    writer.close().unwrap();
    // What an open would clean up or cut: a torn tail, a leftover temporary checkpoint, an
    // orphan checkpoint, a stale checkpoint, a leftover compaction output; and no LOCK file.
    std::fs::remove_file(dir.path().join("LOCK")).unwrap();
    let mut segments: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let last = segments.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    bytes.extend_from_slice(&[0xAB; 100]);
    std::fs::write(last, &bytes).unwrap();
    std::fs::write(dir.path().join("00000000000000000001.idx.tmp"), b"junk").unwrap();
    std::fs::write(dir.path().join("00000000000099999999.idx"), b"orphan").unwrap();
    std::fs::write(
        dir.path().join("00000000000099999999.seg.compacting"),
        b"half a compaction",
    )
    .unwrap();
    let before = files(dir.path());
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    for k in 0..4 {
        assert_eq!(check_prefix(&reader, &format!("e{k}")), 50);
    }
    reader.refresh().unwrap();
    assert!(reader.scrub().unwrap().is_clean());
    let stats = reader.stats();
    assert!(
        stats.recovery.checkpoints_loaded > 0,
        "checkpoints are used"
    );
    reader.close().unwrap();
    drop(reader);
    assert_eq!(
        files(dir.path()),
        before,
        "the reader changed the directory"
    );
    // The writer's next open still cuts the tail and cleans up: nothing was done for it.
    let reopened = Log::open_blocking(dir.path(), small(CheckpointMode::Inline)).unwrap();
    assert!(reopened.stats().recovery.torn_tail_bytes >= 100);
    assert_eq!(check_prefix(&reopened, "e3"), 50);
}

#[test]
fn a_read_only_open_on_the_simulated_file_system_makes_no_mutating_call() {
    let fs = SimFs::new();
    let dir = Path::new("/log");
    let writer = Log::open_with_fs(fs.clone(), dir, small(CheckpointMode::Inline)).unwrap();
    for seq in 1..=120 {
        writer
            .append_blocking("a", "t", &payload("a", seq))
            .unwrap();
    }
    let ops = fs.mutating_ops();
    let reader = Log::open_read_only_with_fs(fs.clone(), dir).unwrap();
    assert_eq!(check_prefix(&reader, "a"), 119);
    reader.refresh().unwrap();
    reader.close().unwrap();
    assert_eq!(fs.mutating_ops(), ops, "the read-only open wrote");
    writer.close().unwrap();
    let reader = Log::open_read_only_with_fs(fs.clone(), dir).unwrap();
    assert_eq!(check_prefix(&reader, "a"), 120);
    // A read-only open takes no lock: a writer opens beside it.
    let again = Log::open_with_fs(fs.clone(), dir, small(CheckpointMode::Inline)).unwrap();
    again.append_blocking("a", "t", &payload("a", 121)).unwrap();
    again.append_blocking("a", "t", &payload("a", 122)).unwrap();
    reader.refresh().unwrap();
    assert_eq!(check_prefix(&reader, "a"), 121);
}

#[test]
fn a_writers_compaction_never_makes_a_reader_return_wrong_data() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), small(CheckpointMode::Background)).unwrap();
    let execs: Vec<(String, &str)> = (0..8)
        .map(|k| (format!("x{k}"), if k % 2 == 0 { "keep" } else { "gone" }))
        .collect();
    for round in 1..=40u64 {
        for (exec, tenant) in &execs {
            writer
                .append_blocking(exec, tenant, &payload(exec, round))
                .unwrap();
        }
    }
    writer
        .append_blocking("tick", "keep", &payload("tick", 1))
        .unwrap();
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    let gone_before = reader.read("x1").unwrap();
    assert_eq!(gone_before.len(), 40);

    // Readers run (refreshing as they go) while the writer erases a tenant and merges.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (reader, stop, execs) = (reader.clone(), stop.clone(), execs.clone());
            let rounds = rounds.clone();
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    if r == 0 {
                        reader.refresh().unwrap();
                    }
                    for (exec, _) in &execs {
                        check_prefix(&reader, exec);
                        reads += 1;
                    }
                    rounds[r].fetch_add(1, Ordering::SeqCst);
                }
                reads
            })
        })
        .collect();
    while rounds.iter().any(|n| n.load(Ordering::SeqCst) == 0) {
        std::thread::yield_now();
    }
    let plan = policy::drop_tenant(&writer.compaction_view(false).unwrap(), "gone");
    let report = writer
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.executions_dropped, 4);
    let view = writer.compaction_view(false).unwrap();
    let merge = policy::merge_small_segments(&view, 3000, 4096);
    writer
        .compact_blocking(&merge, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    writer
        .append_blocking("tick", "keep", &payload("tick", 2))
        .unwrap();
    writer
        .append_blocking("tick", "keep", &payload("tick", 3))
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }

    reader.refresh().unwrap();
    for (exec, tenant) in &execs {
        let n = check_prefix(&reader, exec);
        if *tenant == "gone" {
            assert_eq!(n, 0, "{exec} was erased before the refresh");
            assert_eq!(reader.tenant_of(exec).unwrap(), None);
        } else {
            assert_eq!(n, 40);
        }
    }
    assert_eq!(check_prefix(&reader, "tick"), 2);
    assert!(reader.list_executions("gone", 10, 0).unwrap().is_empty());
}

#[test]
fn a_reader_that_does_not_refresh_keeps_serving_its_view_through_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), small(CheckpointMode::Inline)).unwrap();
    for round in 1..=30u64 {
        for exec in ["k", "g"] {
            let tenant = if exec == "k" { "keep" } else { "gone" };
            writer
                .append_blocking(exec, tenant, &payload(exec, round))
                .unwrap();
        }
    }
    writer
        .append_blocking("k", "keep", &payload("k", 31))
        .unwrap();
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    let before: Vec<_> = ["k", "g"].iter().map(|e| reader.read(e).unwrap()).collect();
    let plan = policy::drop_tenant(&writer.compaction_view(false).unwrap(), "gone");
    writer
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    let after: Vec<_> = ["k", "g"].iter().map(|e| reader.read(e).unwrap()).collect();
    assert_eq!(before, after, "the old view changed without a refresh");
    reader.refresh().unwrap();
    assert!(reader.read("g").unwrap().is_empty());
    // The compaction rolled the active segment: sealed, its last event is proven durable.
    assert_eq!(check_prefix(&reader, "k"), 31);
}

#[test]
fn a_committed_manifest_that_stays_makes_a_read_only_open_fail_typed_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), small(CheckpointMode::Inline)).unwrap();
    for seq in 1..=50 {
        writer
            .append_blocking("a", "t", &payload("a", seq))
            .unwrap();
    }
    writer.close().unwrap();
    // What a compaction that crashed after its commit point leaves for the next writer's
    // open to finish: the reader can tell neither set is whole, and waits, then gives up.
    std::fs::write(
        dir.path().join("REPLACE"),
        b"a manifest only a writer may carry out",
    )
    .unwrap();
    let before = files(dir.path());
    let err = Log::open_read_only_blocking(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Segment(seglog_segment::Error::DirectoryChanging { .. })
        ),
        "{err:?}"
    );
    assert_eq!(files(dir.path()), before);
    // A missing directory is an error, and is not created.
    let missing = dir.path().join("nope");
    assert!(Log::open_read_only_blocking(&missing).is_err());
    assert!(!missing.exists());
}

#[test]
fn a_read_only_log_reads_the_global_order_as_the_writer_does_through_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), small(CheckpointMode::Inline)).unwrap();
    for round in 1..=40u64 {
        for (exec, tenant) in [("k", "keep"), ("g", "gone"), ("m", "keep")] {
            writer
                .append_blocking(exec, tenant, &payload(exec, round))
                .unwrap();
        }
    }
    // One more append, so that everything before it is proven durable to a reader.
    writer
        .append_blocking("k", "keep", &payload("k", 41))
        .unwrap();
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    let seen = |log: &Log| -> Vec<(u64, String, u64, Vec<u8>)> {
        log.read_global(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|r| (r.lsn, r.execution, r.first_seq, r.payloads[0].to_vec()))
            .collect()
    };
    let mut expected = seen(&writer);
    expected.pop(); // the last append: nothing vouches for it yet
    assert_eq!(seen(&reader), expected);
    assert_eq!(expected.len(), 120);
    let plan = policy::drop_tenant(&writer.compaction_view(false).unwrap(), "gone");
    writer
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(
        seen(&reader),
        expected,
        "the old view is served until a refresh"
    );
    reader.refresh().unwrap();
    let after = seen(&writer);
    assert_eq!(
        seen(&reader),
        after,
        "the compaction rolled: everything is sealed"
    );
    assert!(after.iter().all(|(_, exec, _, _)| exec != "g"));
    assert_eq!(after.len(), 81);
}

#[test]
fn global_reads_from_the_middle_of_a_long_segment_read_only_what_they_need_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open_blocking(dir.path(), Options::default()).unwrap();
    for seq in 1..=3000u64 {
        writer
            .append_blocking("long", "t", &payload("long", seq))
            .unwrap();
    }
    writer.close().unwrap();
    let reader = Log::open_read_only_blocking(dir.path()).unwrap();
    assert_eq!(reader.segments().len(), 1);
    let all = reader.read_global(0, usize::MAX).unwrap();
    assert_eq!(all.len(), 3000);
    // From the middle: the walk starts at a sample far into the segment, and reads from there.
    for at in [1000usize, 2500, 2990] {
        let got = reader.read_global(all[at].lsn - 1, 5).unwrap();
        assert_eq!(got, all[at..(at + 5).min(all.len())].to_vec());
    }
    assert_eq!(reader.latest_lsn().unwrap(), all[2999].lsn);
    assert!(reader.scrub().unwrap().is_clean());
}
