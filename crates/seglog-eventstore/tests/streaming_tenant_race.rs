//! A tenantless event racing one that names its execution's tenant.
//!
//! An execution belongs to the tenant of its first event; a later event without a tenant
//! joins it. The store looks the execution's tenant up, then appends. When a new execution's
//! first two events race — one naming tenant "acme", one naming none — the one naming none
//! may look up "no execution yet" (so `NO_TENANT`) while the other creates the execution
//! under "acme". It then must still join "acme": failing it with a tenant mismatch refuses an
//! event the trait's documentation says is accepted. (The other order, the tenantless event
//! first, legitimately refuses the one naming "acme": the execution is then `NO_TENANT`'s.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::{
    ExecutionContext, ExecutionEvent, ExecutionEventType, ExecutionId, TenantId,
};
use enact_core::streaming::EventStore;
use seglog_eventstore::SeglogStreamStore;
use std::sync::Arc;

fn event(exec: &str, tenant: Option<&str>) -> ExecutionEvent {
    let mut c = ExecutionContext::new(ExecutionId::from_string(exec));
    c.tenant_id = tenant.map(TenantId::from_string);
    ExecutionEvent::new(ExecutionEventType::StepStart, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenantless_event_racing_the_first_tenant_naming_one_joins_its_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SeglogStreamStore::open(dir.path()).await.unwrap());
    let mut refused = Vec::new();
    let mut joined = Vec::new();
    for i in 0..500 {
        let exec = format!("exec-{i}");
        let named = {
            let store = store.clone();
            let exec = exec.clone();
            tokio::spawn(async move { store.append(event(&exec, Some("acme"))).await })
        };
        let tenantless = {
            let store = store.clone();
            let exec = exec.clone();
            tokio::spawn(async move { store.append(event(&exec, None)).await })
        };
        let (named, tenantless) = (named.await.unwrap(), tenantless.await.unwrap());
        match (named, tenantless) {
            (Ok(_), Ok(_)) => joined.push(exec),
            // The tenantless event came first: the execution is NO_TENANT's.
            (Err(_), Ok(_)) => {}
            (Ok(_), Err(e)) => refused.push(format!("{exec}: {e:#}")),
            (Err(a), Err(b)) => panic!("{exec}: both appends failed: {a:#} / {b:#}"),
        }
    }
    assert!(
        refused.is_empty(),
        "{} tenantless events refused after their execution was created under its tenant \
         (first: {}); {} joined",
        refused.len(),
        refused[0],
        joined.len()
    );
    assert!(
        !joined.is_empty(),
        "no tenantless event raced a tenant-naming one"
    );
    // The tenantless event joined "acme": both events are read back as that execution's.
    for exec in &joined {
        assert_eq!(
            store.log().tenant_of(exec).unwrap().as_deref(),
            Some("acme")
        );
        let events = store
            .get_by_execution(&ExecutionId::from_string(exec))
            .await
            .unwrap();
        assert_eq!(events.len(), 2, "{exec}");
    }
    store.close().unwrap();
}
