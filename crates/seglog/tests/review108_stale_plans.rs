//! Review 108: plans made before a reopen. A plan names the incarnations it drops
//! (`Plan::drop_incarnations`). It used to name them by the LSN of each execution's first
//! record, and LSNs are not unique across a reopen while a record is not durable: the writer
//! resumes after the last *durable* LSN, so an LSN handed to an append lost before it was
//! synced (buffered, then a power cut or a failed write; or cut by a salvage) is handed out
//! again. The view lists such appends on purpose (an erasure must cover them), and a plan
//! made from it erased, after the reopen, another tenant's new execution that had the same
//! id and took the same LSN. An incarnation now carries its tenant too. (A first fix bound
//! unsynced incarnations to the open of the log that saw them; review 109 showed that this
//! made plans from before a clean reopen, or from a read-only open, erase nothing, and
//! missed salvages: those cases are here too.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::{policy, Plan};
use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CompactOptions, Log, Options, SyncMode};
use std::time::Duration;

fn never() -> Options {
    Options::default().sync_mode(SyncMode::Never)
}

fn compact(log: &Log<SimFs>, plan: &Plan) -> seglog::CompactionReport {
    log.compact_blocking(plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap()
}

/// Tenant beta creates `run-1` (taking the LSN a lost or erased record of acme's had, when
/// one did), then acme's stale erasure runs: beta's execution must stay.
fn beta_keeps_run_1_through(log: Log<SimFs>, acme_erasure: &Plan, what: &str) {
    log.append_blocking("run-1", "beta", b"beta's, acknowledged")
        .unwrap();
    let view = log.compaction_view(false).unwrap();
    let beta = view.executions.iter().find(|e| e.id == "run-1").unwrap();
    eprintln!(
        "{what}: acme's plan names run-1 at {:?}; beta's run-1 was created at LSN {}",
        acme_erasure.drop_incarnations.get("run-1"),
        beta.created_lsn
    );
    let report = compact(&log, acme_erasure);
    assert_eq!(
        log.tenant_of("run-1").unwrap().as_deref(),
        Some("beta"),
        "{what}: erasing tenant acme erased tenant beta's execution run-1 ({} events dropped)",
        report.events_dropped
    );
    log.close().unwrap();
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
    beta_keeps_run_1_through(log, &acme_erasure, "clean reopen");
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
    beta_keeps_run_1_through(log, &acme_erasure, "power cut");
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
        beta_keeps_run_1_through(log, &acme_erasure, &format!("{mode:?}"));
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
    beta_keeps_run_1_through(log, &acme_erasure, "failed write");
}

/// What the incarnation check must not take away: a plan erases an execution whose first
/// append was buffered (synced since or not); and a plan from before a clean reopen still
/// erases an execution that was durable when its view was taken.
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
    let erasure = policy::drop_tenant(&view, "acme");
    log.sync_blocking().unwrap();
    let report = compact(&log, &erasure);
    assert_eq!(report.executions_dropped, 2, "{report:?}");
    assert!(!log.exists("buffered").unwrap() && !log.exists("synced").unwrap());

    log.append_blocking("durable", "acme", b"acknowledged")
        .unwrap();
    let erasure = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    log.close().unwrap();
    let log = Log::open_with_fs(fs, "/log", Options::default()).unwrap();
    let report = compact(&log, &erasure);
    assert_eq!(report.executions_dropped, 1, "{report:?}");
    assert!(!log.exists("durable").unwrap());
    assert_eq!(log.tenant_of("kept").unwrap().as_deref(), Some("gamma"));
    log.close().unwrap();
}

/// Review 109 (on the first fix, which bound unsynced incarnations to their open): under `SyncMode::Never` an append that returned from `append_blocking` is "durable"
/// (the view counts it in `durable_events`). A tenant erasure planned from that view, carried
/// out after a *clean* close and reopen (close syncs everything), must still erase it.
#[test]
fn never_mode_acknowledged_execution_is_erased_by_a_plan_from_before_a_clean_reopen() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", never()).unwrap();
    log.append_blocking("kept", "gamma", b"unrelated").unwrap();
    log.append_blocking("run-1", "acme", b"acme's, acknowledged")
        .unwrap();
    let view = log.compaction_view(false).unwrap();
    let erasure = policy::drop_tenant(&view, "acme");
    log.close().unwrap();
    drop(log);
    let log = Log::open_with_fs(fs, "/log", never()).unwrap();
    let report = compact(&log, &erasure);
    assert!(
        !log.exists("run-1").unwrap(),
        "acme's erasure, planned when run-1 was acknowledged durable, left it in place after a clean reopen ({report:?})"
    );
    log.close().unwrap();
}

/// Review 109: a plan made from a read-only open of a cleanly closed log (every record on stable
/// storage) must erase those executions when carried out on a writer's open.
#[test]
fn plan_from_a_read_only_view_of_a_closed_log_erases_on_the_writer() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("kept", "gamma", b"unrelated").unwrap();
    log.append_blocking("run-1", "acme", b"acme's").unwrap();
    log.close().unwrap();
    drop(log);
    let ro = Log::open_read_only_with_fs(fs.clone(), "/log").unwrap();
    let view = ro.compaction_view(false).unwrap();
    let erasure = policy::drop_tenant(&view, "acme");
    eprintln!("read-only plan: {:?}", erasure.drop_incarnations);
    drop(ro);
    let log = Log::open_with_fs(fs, "/log", Options::default()).unwrap();
    let report = compact(&log, &erasure);
    assert!(
        !log.exists("run-1").unwrap(),
        "an erasure planned on a read-only open of a closed log erased nothing on the writer ({report:?})"
    );
    log.close().unwrap();
}

/// `SyncMode::Never`: acme's acknowledged (unsynced) append is lost in a power cut; after
/// the reopen beta's first append takes its LSN. acme's stale plan must keep beta's run-1.
#[test]
fn never_mode_lost_acknowledged_append_keeps_another_tenants_execution() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", never()).unwrap();
    log.append_blocking("other", "gamma", b"unrelated").unwrap();
    log.sync_blocking().unwrap();
    log.append_blocking("run-1", "acme", b"acme's, acknowledged unsynced")
        .unwrap();
    let view = log.compaction_view(false).unwrap();
    let erasure = policy::drop_tenant(&view, "acme");
    let crashed = fs.crash(CrashMode::LoseUnsynced);
    drop(log);
    let log = Log::open_with_fs(crashed, "/log", never()).unwrap();
    beta_keeps_run_1_through(log, &erasure, "SyncMode::Never, power cut");
}

/// Review 109: a salvage (`RecoveryMode::Salvage`, `seglog repair`) cuts durable records too,
/// so their LSNs are handed out again: acme's stale erasure, planned when its run-1 was
/// durable, must keep tenant beta's new run-1.
#[test]
fn stale_plan_after_a_salvage_keeps_another_tenants_execution() {
    use seglog::RecoveryMode;
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("other", "gamma", b"unrelated").unwrap();
    log.append_blocking(
        "run-1",
        "acme",
        b"acme's acknowledged record, damaged later",
    )
    .unwrap();
    let view = log.compaction_view(false).unwrap();
    let erasure = policy::drop_tenant(&view, "acme");
    eprintln!("acme's plan: {:?}", erasure.drop_incarnations);
    log.close().unwrap();
    drop(log);
    // Bit rot in acme's record.
    let seg = fs
        .file_names(std::path::Path::new("/log"))
        .into_iter()
        .find(|n| n.ends_with(".seg"))
        .unwrap();
    let path = std::path::Path::new("/log").join(&seg);
    let mut bytes = fs.read_file(&path).unwrap();
    let at = bytes.windows(8).position(|w| w == b"damaged ").unwrap();
    bytes[at] ^= 0xff;
    fs.replace_file(&path, bytes).unwrap();
    let salvaged = Log::open_with_fs(
        fs.clone(),
        "/log",
        Options::default().recovery_mode(RecoveryMode::Salvage),
    )
    .unwrap();
    assert!(!salvaged.exists("run-1").unwrap());
    beta_keeps_run_1_through(salvaged, &erasure, "salvage");
}

/// Views racing appends (durable and buffered), sync, roll, retention passes, compactions and
/// finally close, in both sync modes: nothing may hang.
#[test]
fn views_racing_appends_sync_roll_compaction_and_close_do_not_deadlock() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mode in [SyncMode::Always, SyncMode::Never] {
            let fs = SimFs::new();
            let opts = Options::default()
                .sync_mode(mode)
                .segment_size_bytes(8192)
                .max_record_size_bytes(Some(2048))
                .retention(
                    seglog::Retention::default()
                        .max_age(Duration::from_secs(3600))
                        .interval(Duration::from_millis(1)),
                );
            let log = Log::open_with_fs(fs, "/log", opts).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let mut threads = Vec::new();
            for w in 0..2 {
                let (log, stop) = (log.clone(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let id = format!("w{w}-{}", i % 5);
                        let r = if i.is_multiple_of(3) {
                            log.append_batch_buffered(&id, "t", &[[b'p'; 200].as_slice()])
                                .map(|_| ())
                        } else {
                            log.append_blocking(&id, "t", &[b'p'; 200]).map(|_| ())
                        };
                        if r.is_err() {
                            break;
                        }
                        i += 1;
                    }
                }));
            }
            {
                let (log, stop) = (log.clone(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let Ok(view) = log.compaction_view(false) else {
                            break;
                        };
                        if i.is_multiple_of(7) {
                            let plan = policy::drop_tenant(&view, "nobody")
                                .and(policy::merge_small_segments(&view, 8192, 16384));
                            let _ = log.compact_blocking(
                                &plan,
                                CompactOptions::default(),
                                &mut |_, _| {},
                            );
                        }
                        i += 1;
                    }
                }));
            }
            {
                let (log, stop) = (log.clone(), stop.clone());
                threads.push(std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let r = if i.is_multiple_of(2) {
                            log.sync_blocking()
                        } else {
                            log.roll_blocking().map(|_| ())
                        };
                        if r.is_err() {
                            break;
                        }
                        i += 1;
                    }
                }));
            }
            std::thread::sleep(Duration::from_millis(700));
            // Close while everything still runs.
            log.close().unwrap();
            stop.store(true, Ordering::Release);
            for t in threads {
                t.join().unwrap();
            }
        }
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("views racing appends, sync, roll, compaction and close hung");
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
    use std::time::Instant;
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
