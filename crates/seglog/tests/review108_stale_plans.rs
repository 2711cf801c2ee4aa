//! Review 108: plans made before a reopen. A plan names the incarnations it drops
//! (`Plan::drop_incarnations`): the LSN of each execution's first record. LSNs are not unique
//! across a reopen while a record is not durable: the writer resumes after the last *durable*
//! LSN, so an LSN handed to an append lost before it was synced (buffered, then a power cut
//! or a failed write) is handed out again. The view lists such appends on purpose (an erasure
//! must cover them), and a plan made from it erased, after the reopen, another tenant's new
//! execution that had the same id and took the same LSN. Such incarnations are now bound to
//! the open of the log whose view saw them (`Incarnation::unsettled_in`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::{policy, Plan};
use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CompactOptions, Log, Options};

fn compact(log: &Log<SimFs>, plan: &Plan) -> seglog::CompactionReport {
    log.compact_blocking(plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap()
}

/// Durable throughout: an erasure removes the log's last record, the log is closed and
/// reopened, and another tenant creates the same id. The erased record's LSN was durable, so
/// it is never handed out again, and the stale plan names nothing the log holds.
#[test]
fn stale_tenant_erasure_after_an_erasure_and_reopen_keeps_another_tenants_execution() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("other", "gamma", b"unrelated").unwrap();
    log.append_blocking("run-1", "acme", b"acme's").unwrap();
    let view = log.compaction_view(false).unwrap();
    let acme_erasure = policy::drop_tenant(&view, "acme");
    let retention = policy::drop_executions(&view, ["run-1"]);
    compact(&log, &retention);
    log.close().unwrap();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("run-1", "beta", b"beta's, acknowledged")
        .unwrap();
    let created = log
        .compaction_view(false)
        .unwrap()
        .executions
        .iter()
        .find(|e| e.id == "run-1")
        .unwrap()
        .incarnation
        .created_lsn;
    eprintln!(
        "plan's incarnations {:?}, beta's run-1 created at {created}",
        acme_erasure.drop_incarnations
    );
    let report = compact(&log, &acme_erasure);
    assert_eq!(
        log.tenant_of("run-1").unwrap().as_deref(),
        Some("beta"),
        "erasing tenant acme erased tenant beta's execution run-1 ({} events dropped)",
        report.events_dropped
    );
    log.close().unwrap();
}

/// As above, through a crash: acme's buffered (not yet durable) append is in the view, so a
/// plan covers it; a power cut loses it; after reopen beta's first append takes its LSN.
#[test]
fn stale_tenant_erasure_after_a_crash_keeps_another_tenants_execution() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("other", "gamma", b"unrelated").unwrap();
    log.append_batch_buffered("run-1", "acme", &[b"acme's".as_slice()])
        .unwrap();
    let view = log.compaction_view(false).unwrap();
    let acme_erasure = policy::drop_tenant(&view, "acme");
    assert!(acme_erasure.drop_executions.contains("run-1"));
    let crashed = fs.crash(CrashMode::LoseUnsynced);
    drop(log);
    let log = Log::open_with_fs(crashed, "/log", Options::default()).unwrap();
    log.append_blocking("run-1", "beta", b"beta's, acknowledged")
        .unwrap();
    let beta = log.compaction_view(false).unwrap();
    let beta = beta.executions.iter().find(|e| e.id == "run-1").unwrap();
    eprintln!(
        "acme's plan names run-1 at {:?}; beta's run-1 was created at LSN {}",
        acme_erasure.drop_incarnations.get("run-1"),
        beta.incarnation.created_lsn
    );
    let report = compact(&log, &acme_erasure);
    assert_eq!(
        log.tenant_of("run-1").unwrap().as_deref(),
        Some("beta"),
        "erasing tenant acme erased tenant beta's execution run-1 ({} events dropped)",
        report.events_dropped
    );
    log.close().unwrap();
}

/// Durable throughout: acme's run-1 (the log's last record) is erased by a retention plan,
/// then the power goes; after the reopen beta creates run-1, and acme's older plan runs.
#[test]
fn stale_tenant_erasure_after_an_erasure_and_power_cut_keeps_another_tenants_execution() {
    for mode in [CrashMode::LoseUnsynced, CrashMode::KeepUnsynced] {
        let fs = SimFs::new();
        let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
        log.append_blocking("other", "gamma", b"unrelated").unwrap();
        log.append_blocking("run-1", "acme", b"acme's").unwrap();
        let view = log.compaction_view(false).unwrap();
        let acme_erasure = policy::drop_tenant(&view, "acme");
        compact(&log, &policy::drop_executions(&view, ["run-1"]));
        let crashed = fs.crash(mode);
        drop(log);
        let log = Log::open_with_fs(crashed, "/log", Options::default()).unwrap();
        assert!(!log.exists("run-1").unwrap());
        log.append_blocking("run-1", "beta", b"beta's, acknowledged")
            .unwrap();
        let report = compact(&log, &acme_erasure);
        assert_eq!(
            log.tenant_of("run-1").unwrap().as_deref(),
            Some("beta"),
            "{mode:?}: erasing tenant acme erased tenant beta's execution run-1 ({} events dropped)",
            report.events_dropped
        );
        log.close().unwrap();
    }
}

/// Without a power cut: a full disk fails acme's buffered append's write, the log is
/// reopened in the same process (the plan still in memory), and beta's first append takes
/// the LSN acme's lost record had.
#[test]
fn stale_tenant_erasure_after_a_failed_write_keeps_another_tenants_execution() {
    use seglog::io::sim::{Fault, FaultKind, Op};
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("other", "gamma", b"unrelated").unwrap();
    fs.inject(Fault {
        op: Some(Op::Write),
        nth: 1,
        kind: FaultKind::Enospc,
        persistent: true,
    });
    log.append_batch_buffered("run-1", "acme", &[b"acme's".as_slice()])
        .unwrap();
    let acme_erasure = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    assert!(acme_erasure.drop_executions.contains("run-1"));
    assert!(log.sync_blocking().is_err());
    drop(log);
    fs.clear_faults();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("run-1", "beta", b"beta's, acknowledged")
        .unwrap();
    let beta = log.compaction_view(false).unwrap();
    let beta = beta.executions.iter().find(|e| e.id == "run-1").unwrap();
    eprintln!(
        "acme's plan names run-1 at {:?}; beta's run-1 was created at LSN {}",
        acme_erasure.drop_incarnations.get("run-1"),
        beta.incarnation.created_lsn
    );
    let report = compact(&log, &acme_erasure);
    assert_eq!(
        log.tenant_of("run-1").unwrap().as_deref(),
        Some("beta"),
        "erasing tenant acme erased tenant beta's execution run-1 ({} events dropped)",
        report.events_dropped
    );
    log.close().unwrap();
}

/// What the binding must not take away: on the open whose view saw it, a plan erases an
/// execution whose first append was buffered (synced since or not); and a plan from before a
/// clean reopen still erases an execution that was durable when its view was taken.
#[test]
fn plans_still_erase_buffered_executions_on_their_open_and_durable_ones_after_a_reopen() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("kept", "gamma", b"unrelated").unwrap();
    log.append_batch_buffered("buffered", "acme", &[b"not synced".as_slice()])
        .unwrap();
    log.append_batch_buffered("synced", "acme", &[b"synced later".as_slice()])
        .unwrap();
    let view = log.compaction_view(false).unwrap();
    let unsettled: Vec<_> = view
        .executions
        .iter()
        .filter(|e| e.incarnation.unsettled_in.is_some())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(unsettled, ["buffered", "synced"], "{view:?}");
    let erasure = policy::drop_tenant(&view, "acme");
    log.sync_blocking().unwrap();
    let report = compact(&log, &erasure);
    assert_eq!(report.executions_dropped, 2, "{report:?}");
    assert!(!log.exists("buffered").unwrap() && !log.exists("synced").unwrap());

    log.append_blocking("durable", "acme", b"acknowledged")
        .unwrap();
    let erasure = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    assert!(erasure.drop_incarnations["durable"]
        .iter()
        .all(|i| i.unsettled_in.is_none()));
    log.close().unwrap();
    let log = Log::open_with_fs(fs, "/log", Options::default()).unwrap();
    let report = compact(&log, &erasure);
    assert_eq!(report.executions_dropped, 1, "{report:?}");
    assert!(!log.exists("durable").unwrap());
    assert_eq!(log.tenant_of("kept").unwrap().as_deref(), Some("gamma"));
    log.close().unwrap();
}

/// Stress: retention passes every millisecond (by age, an hour: they must drop nothing),
/// durable and buffered appends to tenant k's executions, tenant v's executions created and
/// erased by tenant erasures, clustered and merging compactions. Every acknowledged event of
/// tenant k must survive, in order, through a close and reopen; nothing may hang.
#[test]
fn retention_passes_racing_erasures_merges_and_appends_lose_nothing() {
    use seglog::{CheckpointMode, Retention};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let fs = SimFs::new();
    let opts = Options::default()
        .segment_size_bytes(8192)
        .max_record_size_bytes(Some(2048))
        .checkpoints(CheckpointMode::Inline)
        .retention(
            Retention::default()
                .max_age(Duration::from_secs(3600))
                .max_log_bytes(u64::MAX / 4)
                .interval(Duration::from_millis(1)),
        );
    let log = Log::open_with_fs(fs.clone(), "/log", opts.clone()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut appenders = Vec::new();
    for w in 0..2u64 {
        let (log, stop) = (log.clone(), stop.clone());
        appenders.push(std::thread::spawn(move || {
            let mut counts = vec![0u64; 4];
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                let e = (i % 4) as usize;
                let id = format!("k{w}-{e}");
                let n = counts[e] + 1;
                let payload = format!("{id}:{n}:{}", "x".repeat((i % 7 * 40) as usize));
                if i.is_multiple_of(3) {
                    log.append_batch_buffered(&id, "k", &[payload.as_bytes()])
                        .unwrap();
                } else {
                    log.append_blocking(&id, "k", payload.as_bytes()).unwrap();
                }
                counts[e] = n;
                i += 1;
            }
            counts
        }));
    }
    let eraser = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Acquire) {
                for j in 0..3 {
                    let _ = log.append_blocking(&format!("v-{j}"), "v", &[b'v'; 300]);
                }
                let view = log.compaction_view(round.is_multiple_of(2)).unwrap();
                let mut plan = policy::drop_tenant(&view, "v");
                match round % 3 {
                    0 => plan = plan.and(policy::rewrite_all_sealed(&view)),
                    1 => plan = plan.and(policy::cluster_sealed_segments(&view)),
                    _ => plan = plan.and(policy::merge_small_segments(&view, 8192, 16384)),
                }
                log.compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
                    .unwrap();
                if round.is_multiple_of(5) {
                    log.roll_blocking().unwrap();
                }
                round += 1;
            }
            round
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Release);
    let counts: Vec<Vec<u64>> = appenders.into_iter().map(|t| t.join().unwrap()).collect();
    let rounds = eraser.join().unwrap();
    log.sync_blocking().unwrap();
    let stats = log.stats().retention;
    eprintln!("erasure rounds {rounds}, retention {stats:?}");
    assert_eq!(stats.executions_dropped, 0);
    assert_eq!(stats.failures, 0, "{:?}", stats.last_error);
    let started = Instant::now();
    log.close().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(log);
    let log = Log::open_with_fs(fs, "/log", opts).unwrap();
    for (w, counts) in counts.iter().enumerate() {
        for (e, &n) in counts.iter().enumerate() {
            let id = format!("k{w}-{e}");
            let events = log.read_range(&id, 1, usize::MAX).unwrap();
            assert_eq!(events.len() as u64, n, "{id}");
            for (k, ev) in events.iter().enumerate() {
                let s = String::from_utf8_lossy(&ev.payload);
                assert!(s.starts_with(&format!("{id}:{}:", k + 1)), "{id} #{k}: {s}");
            }
        }
    }
    log.close().unwrap();
}
