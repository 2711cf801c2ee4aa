//! Review 101: an erasure plan names executions by id only. A plan made from a view (as
//! `policy::drop_tenant` documents: view, plan, compact) that is carried out after another
//! compaction (automatic retention, say) removed one of its executions and another tenant
//! created an execution of the same id, erases that other tenant's execution.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use seglog::compaction::policy;
use seglog::{CompactOptions, Log, Options};

#[test]
fn a_tenant_erasure_planned_before_a_retention_pass_erases_another_tenants_execution() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_blocking(dir.path(), Options::default()).unwrap();
    log.append_blocking("run-1", "acme", b"acme's").unwrap();
    // The operator erases acme: view, plan ...
    let plan = policy::drop_tenant(&log.compaction_view(false).unwrap(), "acme");
    // ... meanwhile a retention pass drops run-1 (as old), and tenant beta (or, in the
    // streaming store, a tenantless event joining `~no-tenant`) creates run-1 anew.
    let retention = policy::drop_executions(&log.compaction_view(false).unwrap(), ["run-1"]);
    log.compact_blocking(&retention, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    log.append_blocking("run-1", "beta", b"beta's, acknowledged")
        .unwrap();
    // ... and acme's erasure runs.
    let report = log
        .compact_blocking(&plan, CompactOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(
        log.tenant_of("run-1").unwrap().as_deref(),
        Some("beta"),
        "erasing tenant acme erased tenant beta's execution run-1 ({} events dropped)",
        report.events_dropped
    );
    log.close().unwrap();
}
