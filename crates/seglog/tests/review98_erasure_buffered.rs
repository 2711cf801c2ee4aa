//! Review 98: the policies' view now lists executions whose appends are buffered or in
//! flight (commit 91933a9). Attacks on the erasure of such executions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CheckpointMode, CompactOptions, Log, Options};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const GONE: &str = "gone-tenant";
const KEPT: &str = "kept-tenant";

fn small() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
}

fn counts(log: &Log) -> BTreeMap<String, usize> {
    let view = log.compaction_view(false).unwrap();
    view.executions
        .iter()
        .map(|e| (e.id.clone(), log.read(&e.id).unwrap().len()))
        .collect()
}

/// Buffered appends of the erased tenant spread over segments the writer has not created
/// yet (the queue is larger than a segment). A dry run previews the erasure, the real run
/// erases every one of them, and the log reopens to the same content.
#[test]
fn erasure_of_buffered_appends_spanning_uncreated_segments() {
    erase_buffered_spanning(small().buffered_write_bytes(1 << 20));
}

/// The same with appends acknowledged unsynced, and with queued bytes written early.
#[test]
fn erasure_of_buffered_appends_sync_never_and_small_write_queue() {
    erase_buffered_spanning(
        small()
            .buffered_write_bytes(1500)
            .sync_mode(seglog::SyncMode::Never),
    );
}

fn erase_buffered_spanning(opts: Options) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), opts.clone()).unwrap();
    log.append_blocking("kept-0", KEPT, b"durable").unwrap();
    let payload = vec![b'x'; 600];
    for i in 0..40 {
        log.append_batch_buffered(&format!("gone-{}", i % 3), GONE, &[&payload])
            .unwrap();
        log.append_batch_buffered(&format!("kept-{}", i % 2), KEPT, &[&payload])
            .unwrap();
    }
    let view = log.compaction_view(true).unwrap();
    let gone: u64 = view
        .executions
        .iter()
        .filter(|e| e.tenant == GONE)
        .map(|e| e.events)
        .sum();
    assert_eq!(gone, 40, "{view:?}");
    let plan = policy::drop_tenant(&view, GONE);
    let preview = log
        .compact_blocking(
            &plan,
            CompactOptions::default().dry_run(true),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(preview.events_dropped, 40);
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.events_dropped, 40);
    log.sync_blocking().unwrap();
    for i in 0..3 {
        assert!(!log.exists(&format!("gone-{i}")).unwrap());
    }
    assert_eq!(log.read("kept-0").unwrap().len(), 21);
    assert_eq!(log.read("kept-1").unwrap().len(), 20);
    let before = counts(&log);
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), opts).unwrap();
    assert_eq!(counts(&log), before);
    log.close().unwrap();
}

/// Durable appends creating executions of two tenants race repeated erasures of one of
/// them. Every acknowledged event of the kept tenant must survive; the index and the disk
/// must agree after a reopen; nothing but `Erasing` may fail.
#[test]
fn erasures_racing_first_appends_of_new_executions() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let kept_acked = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let mut appenders = Vec::new();
    for t in 0..2 {
        let log = log.clone();
        let stop = stop.clone();
        let kept_acked = kept_acked.clone();
        appenders.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (tenant, exec) = if i.is_multiple_of(2) {
                    (GONE, format!("g-{t}-{}", i % 7))
                } else {
                    (KEPT, format!("k-{t}-{}", i % 5))
                };
                let r = if i.is_multiple_of(3) {
                    log.append_batch_buffered(&exec, tenant, &[b"e".as_slice()])
                } else {
                    log.append_blocking(&exec, tenant, format!("{i}").as_bytes())
                };
                match r {
                    Ok(_) => {
                        if tenant == KEPT {
                            *kept_acked.lock().unwrap().entry(exec).or_default() += 1;
                        }
                    }
                    Err(seglog::Error::Erasing { .. }) if tenant == GONE => {}
                    Err(e) => panic!("{exec}: {e}"),
                }
            }
        }));
    }
    let t0 = std::time::Instant::now();
    let mut erasures = 0;
    while t0.elapsed() < std::time::Duration::from_secs(4) {
        let view = log.compaction_view(erasures % 2 == 0).unwrap();
        let plan = policy::drop_tenant(&view, GONE);
        log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
            .unwrap();
        erasures += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for a in appenders {
        a.join().unwrap();
    }
    log.sync_blocking().unwrap();
    for (exec, n) in kept_acked.lock().unwrap().iter() {
        assert_eq!(log.read(exec).unwrap().len() as u64, *n, "{exec}");
        assert_eq!(log.tenant_of(exec).unwrap().as_deref(), Some(KEPT));
    }
    let before = counts(&log);
    for e in log.compaction_view(false).unwrap().executions {
        assert_eq!(e.events as usize, before[&e.id], "{}", e.id);
    }
    log.close().unwrap();
    let log = Log::open_blocking(dir.path(), small()).unwrap();
    assert_eq!(counts(&log), before, "after {erasures} erasures");
    log.close().unwrap();
}
