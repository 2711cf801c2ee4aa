//! Review 110: attacks on incarnations as `(created_lsn, tenant)` (commit 59111eb). Found: an
//! explicit plan rehydrated (downloaded) every offloaded segment of every id it named, by id
//! alone, before step 1 checked incarnations: another tenant's re-created execution was
//! downloaded, and an unreadable object of it failed the erasure of the plan's own tenant.
//! The rest held and is kept: joined (tenantless) appends, torn crashes, read-only views,
//! backup and restore, `Plan::and` of plans from different times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::offload::{location, target, MapSource};
use seglog::compaction::{policy, Plan};
use seglog::io::sim::{CrashMode, SimFs};
use seglog::{CheckpointMode, CompactOptions, Log, Options, SyncMode};
use std::sync::Arc;

const NO_TENANT: &str = "~no-tenant";

fn compact(log: &Log<SimFs>, plan: &Plan) -> seglog::CompactionReport {
    log.compact_blocking(plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap()
}

fn small() -> Options {
    Options::default()
        .segment_size_bytes(4096)
        .max_record_size_bytes(Some(1024))
        .checkpoints(CheckpointMode::Inline)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A stale plan of acme names run-1, which a retention pass erased since; beta created
/// run-1 again (a later LSN: no crash needed) and its segments were offloaded to the bucket.
/// acme's plan must drop acme's other execution `a2` and leave beta's run-1 alone, bucket
/// and all: the incarnation check keeps it off beta's run-1, but the rehydration before it
/// (`rehydrate_for(&plan.drop_executions)`) goes by id only.
fn stale_plan_over_offloaded_other_tenant(lose_object: bool) {
    let fs = SimFs::new();
    let source = Arc::new(MapSource::default());
    let log = Log::open_with_fs(fs.clone(), "/log", small()).unwrap();
    log.set_segment_source(source.clone());
    log.append_blocking("a2", "acme", b"acme's other").unwrap();
    log.append_blocking("run-1", "acme", b"acme's run-1")
        .unwrap();
    let view = log.compaction_view(false).unwrap();
    let acme_erasure = policy::drop_tenant(&view, "acme");
    assert_eq!(acme_erasure.drop_executions.len(), 2);
    compact(&log, &policy::drop_executions(&view, ["run-1"]));
    log.roll_blocking().unwrap();
    for i in 0..40 {
        log.append_blocking(
            "run-1",
            "beta",
            format!("beta {i} {}", "b".repeat(300)).as_bytes(),
        )
        .unwrap();
    }
    log.roll_blocking().unwrap();
    let a2_segments = log
        .compaction_view(false)
        .unwrap()
        .executions
        .iter()
        .find(|e| e.id == "a2")
        .unwrap()
        .segments
        .clone();
    let active = log.segments().last().unwrap().number;
    let mut offloaded = 0;
    for s in log.segments().into_iter().filter(|s| s.sealed) {
        if s.number == active || a2_segments.contains(&s.number) {
            continue;
        }
        let bytes = fs.read_file(&s.path).unwrap();
        source
            .objects
            .lock()
            .unwrap()
            .insert(location(s.number), bytes::Bytes::from(bytes));
        log.offload_segment(s.number, &target(&source, s.number))
            .unwrap();
        offloaded += 1;
    }
    assert!(offloaded >= 2, "{offloaded}");
    assert_eq!(log.offloaded_segments().len(), offloaded);
    if lose_object {
        // The bucket is unavailable for beta's objects (or lost them): nothing acme's plan
        // needs.
        source.objects.lock().unwrap().clear();
    }
    let outcome = log.compact_blocking(&acme_erasure, CompactOptions::default(), &mut |_, _| {});
    eprintln!("outcome {outcome:?}");
    assert!(
        outcome.is_ok(),
        "acme's plan failed because beta's offloaded run-1 could not be downloaded: {outcome:?}"
    );
    assert!(
        !log.exists("a2").unwrap(),
        "acme's a2 survived acme's erasure"
    );
    assert_eq!(log.tenant_of("run-1").unwrap().as_deref(), Some("beta"));
    assert_eq!(
        log.offloaded_segments().len(),
        offloaded,
        "acme's stale plan downloaded beta's offloaded segments back into the directory"
    );
    log.close().unwrap();
}

#[test]
fn stale_plan_does_not_rehydrate_another_tenants_offloaded_execution() {
    stale_plan_over_offloaded_other_tenant(false);
}

#[test]
fn stale_plan_erases_its_own_tenant_even_when_another_tenants_offloaded_segment_is_unreadable() {
    stale_plan_over_offloaded_other_tenant(true);
}

/// A read-only open of a live writer (both sync modes): a plan from its view erases acme's
/// run-1 on the writer, including appends that returned before the view but after the open.
#[test]
fn plan_from_read_only_view_of_a_live_writer_erases() {
    for mode in [SyncMode::Always, SyncMode::Never] {
        let fs = SimFs::new();
        let opts = Options::default()
            .sync_mode(mode)
            .segment_size_bytes(1 << 20);
        let log = Log::open_with_fs(fs.clone(), "/log", opts.clone()).unwrap();
        log.append_blocking("kept", "gamma", b"unrelated").unwrap();
        log.append_blocking("run-1", "acme", b"acme 1").unwrap();
        log.sync_blocking().unwrap();
        // A later commit vouches for run-1's record (a read-only open shows the newest commit
        // group only once the writer commits again: documented).
        log.append_blocking("kept", "gamma", b"vouches").unwrap();
        log.sync_blocking().unwrap();
        let ro = Log::open_read_only_with_fs(fs.clone(), "/log").unwrap();
        log.append_blocking("run-1", "acme", b"acme 2").unwrap();
        log.append_batch_buffered("run-1", "acme", &[b"acme 3".as_slice()])
            .unwrap();
        let view = ro.compaction_view(false).unwrap();
        let erasure = policy::drop_tenant(&view, "acme");
        eprintln!(
            "{mode:?}: ro view {:?}",
            view.executions
                .iter()
                .map(|e| (&e.id, &e.tenant, e.created_lsn, e.events))
                .collect::<Vec<_>>()
        );
        eprintln!(
            "{mode:?}: writer view {:?}",
            log.compaction_view(false)
                .unwrap()
                .executions
                .iter()
                .map(|e| (e.id.clone(), e.tenant.clone(), e.created_lsn, e.events))
                .collect::<Vec<_>>()
        );
        drop(ro);
        let report = compact(&log, &erasure);
        assert!(!log.exists("run-1").unwrap(), "{mode:?}: {report:?}");
        log.close().unwrap();
        let log = Log::open_with_fs(fs, "/log", opts).unwrap();
        assert!(!log.exists("run-1").unwrap(), "{mode:?} after reopen");
        assert_eq!(log.read("kept").unwrap().len(), 2);
        log.close().unwrap();
    }
}

/// A joining (tenantless) append that attached to acme's run-1, then a crash that keeps the
/// records: acme's plan from before erases all of run-1 (both modes, buffered and not).
#[test]
fn joined_appends_are_erased_after_a_crash_that_keeps_them() {
    let rt = rt();
    for mode in [SyncMode::Always, SyncMode::Never] {
        for crash in [CrashMode::KeepUnsynced, CrashMode::LoseUnsynced] {
            let fs = SimFs::new();
            let opts = Options::default()
                .sync_mode(mode)
                .segment_size_bytes(1 << 20);
            let log = Log::open_with_fs(fs.clone(), "/log", opts.clone()).unwrap();
            log.append_blocking("kept", "gamma", b"unrelated").unwrap();
            log.append_batch_buffered("run-1", "acme", &[b"acme 1".as_slice()])
                .unwrap();
            rt.block_on(log.append_encoded_joining_at("run-1", NO_TENANT, 0, &[b"joined"]))
                .unwrap();
            let view = log.compaction_view(false).unwrap();
            let erasure = policy::drop_tenant(&view, "acme");
            let no_tenant_erasure = policy::drop_tenant(&view, NO_TENANT);
            assert!(no_tenant_erasure.drop_executions.is_empty());
            let crashed = fs.crash(crash);
            drop(log);
            let log = Log::open_with_fs(crashed, "/log", opts).unwrap();
            let survived = log.exists("run-1").unwrap();
            if !survived {
                // Lost: a tenantless event creates run-1 at the LSN acme's had.
                rt.block_on(log.append_encoded_joining_at("run-1", NO_TENANT, 0, &[b"new"]))
                    .unwrap();
            }
            let report = compact(&log, &erasure);
            if survived {
                assert!(
                    !log.exists("run-1").unwrap(),
                    "{mode:?} {crash:?}: {report:?}"
                );
            } else {
                assert_eq!(
                    log.tenant_of("run-1").unwrap().as_deref(),
                    Some(NO_TENANT),
                    "{mode:?} {crash:?}: {report:?}"
                );
            }
            log.close().unwrap();
        }
    }
}

/// Torn crashes over many seeds: after the crash, acme's run-1 either survived (the plan
/// must erase it) or is gone and beta takes its id (the plan must keep beta's).
#[test]
fn torn_crashes_either_erase_or_keep() {
    for seed in 0..10u64 {
        for mode in [SyncMode::Always, SyncMode::Never] {
            let fs = SimFs::new();
            let opts = Options::default()
                .sync_mode(mode)
                .segment_size_bytes(1 << 20);
            let log = Log::open_with_fs(fs.clone(), "/log", opts.clone()).unwrap();
            log.append_blocking("kept", "gamma", b"unrelated").unwrap();
            log.sync_blocking().unwrap();
            for i in 0..3 {
                log.append_batch_buffered(
                    "run-1",
                    "acme",
                    &[format!("acme {i} {}", "x".repeat(700)).as_bytes()],
                )
                .unwrap();
                log.append_blocking("other", "gamma", &[b'o'; 600]).unwrap();
            }
            let view = log.compaction_view(false).unwrap();
            let erasure = policy::drop_tenant(&view, "acme");
            let crashed = fs.crash(CrashMode::Torn { seed });
            drop(log);
            let log = Log::open_with_fs(crashed, "/log", opts).unwrap();
            let survived = log.exists("run-1").unwrap();
            if !survived {
                log.append_blocking("run-1", "beta", b"beta's").unwrap();
            }
            let report = compact(&log, &erasure);
            if survived {
                assert!(
                    !log.exists("run-1").unwrap(),
                    "seed {seed} {mode:?}: {report:?}"
                );
            } else {
                assert_eq!(log.tenant_of("run-1").unwrap().as_deref(), Some("beta"));
            }
            log.close().unwrap();
        }
    }
}

/// Backup and restore: a plan from before the backup erases on the restored copy; a
/// restored backup from before acme's run-1 lets beta take its LSN, which acme's plan keeps.
#[test]
fn plans_across_backup_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("log");
    let early = dir.path().join("early");
    let late = dir.path().join("late");
    let log = Log::open_blocking(&src, Options::default()).unwrap();
    log.append_blocking("kept", "gamma", b"unrelated").unwrap();
    log.backup_blocking(&early).unwrap();
    log.append_blocking("run-1", "acme", b"acme's").unwrap();
    let erasure = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    log.backup_blocking(&late).unwrap();
    log.close().unwrap();

    let restored = Log::open_blocking(&late, Options::default()).unwrap();
    let r = restored
        .compact_blocking(&erasure, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(!restored.exists("run-1").unwrap(), "{r:?}");
    restored.close().unwrap();

    let restored = Log::open_blocking(&early, Options::default()).unwrap();
    restored
        .append_blocking("run-1", "beta", b"beta's")
        .unwrap();
    let r = restored
        .compact_blocking(&erasure, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(
        restored.tenant_of("run-1").unwrap().as_deref(),
        Some("beta"),
        "{r:?}"
    );
    restored.close().unwrap();
}

/// Plans from different times combined with `and`, over an erase-and-recreate by another
/// tenant on the same open, then a reopen: only acme's incarnations go.
#[test]
fn and_of_plans_from_different_times() {
    let fs = SimFs::new();
    let log = Log::open_with_fs(fs.clone(), "/log", Options::default()).unwrap();
    log.append_blocking("run-1", "acme", b"acme 1").unwrap();
    log.append_blocking("run-2", "acme", b"acme 2").unwrap();
    let old = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    compact(
        &log,
        &policy::drop_executions(&log.compaction_view(false).unwrap(), ["run-1"]),
    );
    log.append_blocking("run-1", "beta", b"beta 1").unwrap();
    log.append_blocking("run-3", "acme", b"acme 3").unwrap();
    let fresh = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    let by_hand_other = Plan {
        drop_executions: ["nonexistent".to_string()].into_iter().collect(),
        ..Plan::default()
    };
    let plan = old.and(by_hand_other).and(fresh);
    log.close().unwrap();
    let log = Log::open_with_fs(fs, "/log", Options::default()).unwrap();
    let report = compact(&log, &plan);
    assert_eq!(
        log.tenant_of("run-1").unwrap().as_deref(),
        Some("beta"),
        "{report:?}"
    );
    assert!(!log.exists("run-2").unwrap() && !log.exists("run-3").unwrap());
    log.close().unwrap();
}
