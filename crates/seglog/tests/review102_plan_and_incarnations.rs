//! Review 102: `Plan::and` keeps one incarnation per execution id (`drop_incarnations` is a
//! map, and `extend` lets the later plan's entry win). Two plans that name the same id with
//! different incarnations (made from views taken at different times) combine into a plan
//! that erases at most one of them; when the stale entry wins, the execution the other plan
//! asked to erase — the one that exists — silently survives the erasure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::{policy, Plan};
use seglog::{CompactOptions, Log, Options};

/// Erasure requests queued over time and carried out together (`Plan::and` is documented
/// as the way to combine plans): the fresh request is for acme's live `run-1`.
#[test]
fn a_fresh_tenant_erasure_combined_with_a_stale_one_erases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_blocking("run-1", "acme", b"acme's first run")
        .unwrap();
    // An erasure of acme is planned (and queued) ...
    let stale = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    // ... a retention pass drops run-1 meanwhile, and acme runs run-1 again.
    let retention = policy::drop_executions(&log.compaction_view(false).unwrap(), ["run-1"]);
    log.compact_blocking(&retention, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    log.append_blocking("run-1", "acme", b"acme's personal data")
        .unwrap();
    // A fresh erasure of acme, from a view that holds acme's live run-1.
    let fresh = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    assert!(fresh.drop_executions.contains("run-1"));
    // Carried out together with the queued one.
    let combined: Plan = fresh.and(stale);
    let report = log
        .compact_blocking(&combined, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert!(
        !log.exists("run-1").unwrap(),
        "erasing tenant acme kept acme's run-1 ({} executions dropped): the combined plan \
         asks for run-1 by the stale incarnation {:?} only",
        report.executions_dropped,
        combined.drop_incarnations.get("run-1")
    );
    log.close().unwrap();
}

/// A plan written by hand drops its ids "whatever incarnation" (plan.rs); combined with a
/// policy's plan from an older view, it no longer does.
#[test]
fn a_hand_written_erasure_combined_with_an_older_policy_plan_erases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_blocking("run-1", "acme", b"acme's first run")
        .unwrap();
    let older = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    let retention = policy::drop_executions(&log.compaction_view(false).unwrap(), ["run-1"]);
    log.compact_blocking(&retention, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    log.append_blocking("run-1", "acme", b"acme's personal data")
        .unwrap();
    let mut by_hand = Plan::default();
    by_hand.drop_executions.insert("run-1".into());
    let report = log
        .compact_blocking(
            &by_hand.and(older),
            CompactOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
    assert!(
        !log.exists("run-1").unwrap(),
        "a plan naming run-1 by hand kept it ({} executions dropped)",
        report.executions_dropped
    );
    log.close().unwrap();
}
