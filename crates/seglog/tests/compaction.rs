//! `Log::compact` on real files: erasure reaches the bytes on disk, survivors keep their
//! sequences, tenants and creation order, the log keeps serving while it runs, and every
//! answer is the same after a reopen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use seglog::compaction::{policy, IndexView, Plan};
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::path::Path;
use std::time::Duration;

const TENANTS: [&str; 3] = ["acme", "bolt", "core"];
const MARKER: &str = "SECRET-MARKER-7f3a";

fn opts(checkpoints: CheckpointMode) -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(checkpoints)
}

/// Three tenants, interleaved, many segments; only acme's payloads carry the marker.
fn fill(log: &Log) {
    for i in 0..600u32 {
        let t = TENANTS[(i % 3) as usize];
        let exec = format!("{t}-run-{}", i % 12);
        let payload = if t == "acme" {
            format!("{MARKER} step {i}")
        } else {
            format!("step {i} {}", "p".repeat((i % 50) as usize))
        };
        if i % 7 == 0 {
            log.append_batch_blocking(&exec, t, &[payload.as_bytes(), b"second"])
                .unwrap();
        } else {
            log.append_blocking(&exec, t, payload.as_bytes()).unwrap();
        }
    }
}

fn marker_on_disk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        // A background checkpoint's temp file may be renamed between listing and reading.
        let bytes = match std::fs::read(entry.path()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", entry.path().display()),
        };
        if bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()) {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

fn no_compact_progress() -> impl FnMut(u64, u64) {
    |_, _| {}
}

#[test]
fn erased_tenant_is_gone_from_reads_and_from_every_byte_on_disk() {
    for mode in [
        CheckpointMode::Inline,
        CheckpointMode::Background,
        CheckpointMode::Off,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open_blocking(dir.path(), opts(mode)).unwrap();
        fill(&log);
        let before = common::dump(&log, &TENANTS);
        assert!(!marker_on_disk(dir.path()).is_empty());
        let view = log.compaction_view(false).unwrap();
        let plan = policy::drop_tenant(&view, "acme");
        assert_eq!(plan.drop_executions.len(), 4);
        let report = log
            .compact_blocking(&plan, CompactOptions::default(), &mut no_compact_progress())
            .unwrap();
        assert_eq!(report.executions_dropped, 4);
        assert_eq!(report.events_dropped, 200 + 29);
        assert!(
            report.rolled_active_segment,
            "acme had records in the active segment"
        );
        assert!(report.bytes_reclaimed > 0);

        let mut expected = before.clone();
        expected.insert("acme".into(), Vec::new());
        assert_eq!(common::dump(&log, &TENANTS), expected, "{mode:?}");
        assert!(log.read("acme-run-0").unwrap().is_empty());
        // The ids are free again: a new execution starts at 1 and may change tenant.
        assert_eq!(
            log.append_blocking("acme-run-0", "core", b"reborn")
                .unwrap(),
            1
        );
        log.close().unwrap();
        assert_eq!(marker_on_disk(dir.path()), Vec::<String>::new());

        let log = Log::open_blocking(dir.path(), opts(mode)).unwrap();
        let mut after = common::dump(&log, &TENANTS);
        let reborn = after
            .get_mut("core")
            .unwrap()
            .iter()
            .position(|r| r.0 == "acme-run-0")
            .unwrap();
        after.get_mut("core").unwrap().remove(reborn);
        assert_eq!(after, expected, "{mode:?} after reopen");
        if mode == CheckpointMode::Inline {
            assert!(log.stats().recovery.checkpoints_loaded > 0);
        }
        log.close().unwrap();
    }
}

#[test]
fn merging_small_segments_keeps_every_event_and_fewer_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Inline)).unwrap();
    fill(&log);
    let before = common::dump(&log, &TENANTS);
    let segments_before = log.segments().len();
    let view = log.compaction_view(false).unwrap();
    let plan = policy::merge_small_segments(&view, 5 * 1024, 64 * 1024);
    assert!(plan.rewrite_segments.len() >= 4);
    let report = log
        .compact_blocking(
            &plan,
            CompactOptions::default().target_segment_bytes(Some(64 * 1024)),
            &mut no_compact_progress(),
        )
        .unwrap();
    assert_eq!(report.rewrite.records_dropped, 0);
    assert!(log.segments().len() < segments_before);
    assert_eq!(common::dump(&log, &TENANTS), before);
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Inline)).unwrap();
    assert_eq!(common::dump(&log, &TENANTS), before);
    assert_eq!(
        log.stats().recovery.segments_scanned,
        1,
        "merged segments have checkpoints"
    );
}

#[test]
fn dry_run_counts_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Inline)).unwrap();
    fill(&log);
    let before = common::dump(&log, &TENANTS);
    let files_before = std::fs::read_dir(dir.path()).unwrap().count();
    let view = log.compaction_view(false).unwrap();
    let plan = policy::drop_tenant(&view, "bolt");
    let mut calls = 0;
    let report = log
        .compact_blocking(
            &plan,
            CompactOptions::default().dry_run(true),
            &mut |done, total| {
                calls += 1;
                assert!(done <= total);
            },
        )
        .unwrap();
    assert!(calls > 0);
    assert!(report.dry_run);
    assert_eq!(report.executions_dropped, 4);
    assert_eq!(report.events_dropped, 200 + 29);
    assert_eq!(
        report.rewrite.events_dropped,
        200 + 29,
        "the active segment is counted too"
    );
    assert!(report.bytes_reclaimed > 200 * 48);
    assert_eq!(common::dump(&log, &TENANTS), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), files_before);
    // Appends to the execution were never blocked.
    log.append_blocking("bolt-run-1", "bolt", b"more").unwrap();
}

/// The age whose limit, seen from `view`'s own "now", falls exactly on `execution`'s last
/// event: executions whose last event is older are past it, `execution` itself is not. Taken
/// from the view, not the wall clock, so slow fsyncs between the appends change nothing.
fn age_sparing(view: &IndexView, execution: &str) -> Duration {
    let last = last_timestamp(view, execution);
    Duration::from_nanos(u64::try_from(view.now_unix_nanos - last).unwrap_or(0))
}

fn last_timestamp(view: &IndexView, execution: &str) -> i64 {
    view.executions
        .iter()
        .find(|e| e.id == execution)
        .unwrap_or_else(|| panic!("{execution} not in the view"))
        .last_timestamp_unix_nanos
}

#[test]
fn retention_and_finished_policies_pick_by_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Inline)).unwrap();
    log.append_blocking("old-done", "acme", b"done").unwrap();
    log.append_blocking("old-open", "acme", b"working").unwrap();
    log.append_blocking("new-done", "acme", b"done").unwrap();
    let view = log.compaction_view(true).unwrap();
    // An fsync lies between the appends: the clock moved on.
    assert!(
        last_timestamp(&view, "old-open") < last_timestamp(&view, "new-done"),
        "{view:?}"
    );
    let plan = policy::drop_finished_before(&view, age_sparing(&view, "new-done"), |e| {
        e.last_event
            .as_ref()
            .is_some_and(|l| &l.payload[..] == b"done")
    });
    assert_eq!(
        plan.drop_executions.iter().collect::<Vec<_>>(),
        vec!["old-done"]
    );
    let plan = plan.and(Plan::default());
    log.compact_blocking(&plan, CompactOptions::default(), &mut no_compact_progress())
        .unwrap();
    assert_eq!(
        log.list_executions("acme", 10, 0).unwrap(),
        vec!["new-done", "old-open"]
    );
    let view = log.compaction_view(false).unwrap();
    let plan = policy::drop_older_than(&view, age_sparing(&view, "new-done"));
    assert_eq!(
        plan.drop_executions.iter().collect::<Vec<_>>(),
        vec!["old-open"]
    );
}

/// Waits (yielding) until `done` holds; fails after a minute, naming what it waited for.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still waiting for {what} after a minute"
        );
        std::thread::yield_now();
    }
}

#[test]
fn compaction_runs_while_appends_and_reads_go_on() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Background)).unwrap();
    // Payloads say who they are, so any event read can be checked on its own.
    let payload =
        |exec: &str, seq: u64| format!("{exec}/{seq}/{}", "z".repeat((seq % 40) as usize));
    for i in 0..400u64 {
        let tenant = if i % 2 == 0 { "keep" } else { "gone" };
        let exec = format!("{tenant}-{}", i % 8);
        let seq = log.latest_seq(&exec).unwrap().unwrap_or(0) + 1;
        log.append_blocking(&exec, tenant, payload(&exec, seq).as_bytes())
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Progress counters: the compactions start once every thread is under way and the test
    // stops only after appends and reads went on past them (waiting on these, not on time).
    let appends_done = Arc::new(AtomicU64::new(0));
    let reads_done = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (log, stop, appends_done) = (log.clone(), stop.clone(), appends_done.clone());
        writers.push(std::thread::spawn(move || {
            let exec = format!("keep-{}", w * 2);
            let mut acked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let seq = log.latest_seq(&exec).unwrap().unwrap_or(0) + 1;
                log.append_encoded_blocking(
                    &exec,
                    "keep",
                    Some(seq - 1),
                    0,
                    &[payload(&exec, seq).as_bytes()],
                )
                .unwrap();
                acked = seq;
                appends_done.fetch_add(1, Ordering::Relaxed);
            }
            (exec, acked)
        }));
    }
    let erasing_seen = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut erasing = 0;
            while !stop.load(Ordering::Relaxed) {
                match log.append_blocking("gone-1", "gone", b"late") {
                    Err(seglog::Error::Erasing { .. }) => erasing += 1,
                    Err(e) => panic!("append to an execution being erased: {e}"),
                    Ok(_) => {}
                }
            }
            erasing
        })
    };
    let mut readers = Vec::new();
    for r in 0..2 {
        let (log, stop, reads_done) = (log.clone(), stop.clone(), reads_done.clone());
        readers.push(std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for k in 0..4 {
                    let exec = format!("keep-{}", (k * 2 + r) % 8);
                    let events = log.read(&exec).unwrap();
                    for (i, e) in events.iter().enumerate() {
                        assert_eq!(e.seq, i as u64 + 1);
                        assert_eq!(&e.payload[..], payload(&exec, e.seq).as_bytes());
                    }
                    reads += 1;
                }
                reads_done.fetch_add(1, Ordering::Relaxed);
            }
            reads
        }));
    }
    let progress = || {
        (
            appends_done.load(Ordering::Relaxed),
            reads_done.load(Ordering::Relaxed),
        )
    };
    wait_until("every writer and reader under way", || {
        let (appends, reads) = progress();
        appends >= 3 && reads >= 2
    });
    let mut reports = Vec::new();
    for round in 0..3 {
        let view = log.compaction_view(false).unwrap();
        let plan = if round == 0 {
            policy::drop_tenant(&view, "gone")
        } else {
            policy::merge_small_segments(&view, 8 * 1024, 32 * 1024)
        };
        reports.push(
            log.compact_blocking(&plan, CompactOptions::default(), &mut no_compact_progress())
                .unwrap(),
        );
    }
    let (appends_then, reads_then) = progress();
    wait_until("appends and reads after the compactions", || {
        let (appends, reads) = progress();
        appends >= appends_then + 3 && reads >= reads_then + 2
    });
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(String, u64)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    erasing_seen.join().unwrap();
    assert!(reads >= 2);
    assert!(reports[0].executions_dropped >= 4, "{:?}", reports[0]);

    let check = |log: &Log| {
        for (exec, last) in &acked {
            let events = log.read(exec).unwrap();
            assert!(
                events.len() as u64 >= *last,
                "{exec} lost acknowledged events"
            );
            for (i, e) in events.iter().enumerate() {
                assert_eq!(e.seq, i as u64 + 1);
                assert_eq!(&e.payload[..], payload(exec, e.seq).as_bytes());
            }
        }
        for k in [3, 5, 7] {
            assert!(log.read(&format!("gone-{k}")).unwrap().is_empty());
        }
        // gone-1 may have been re-created after the erasure; then only by "late" events.
        let reborn = log.read("gone-1").unwrap();
        assert!(reborn.iter().all(|e| &e.payload[..] == b"late"));
    };
    check(&log);
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Background)).unwrap();
    check(&log);
}

#[test]
fn events_read_before_a_compaction_keep_their_bytes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts(CheckpointMode::Off)).unwrap();
    fill(&log);
    let held = log.read("bolt-run-1").unwrap();
    let copies: Vec<Vec<u8>> = held.iter().map(|e| e.payload.to_vec()).collect();
    let view = log.compaction_view(false).unwrap();
    // Rewrite every sealed segment: the files the held events were read from are replaced
    // or removed while their bytes are still referenced.
    let plan = policy::rewrite_all_sealed(&view);
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut no_compact_progress())
        .unwrap();
    assert!(report.rewrite.input_segments >= 3);
    let after: Vec<Vec<u8>> = held.iter().map(|e| e.payload.to_vec()).collect();
    assert_eq!(after, copies);
    let reread: Vec<Vec<u8>> = log
        .read("bolt-run-1")
        .unwrap()
        .iter()
        .map(|e| e.payload.to_vec())
        .collect();
    assert_eq!(reread, copies);
}
