//! An EventStore over a log with local retention zero: every sealed segment is shipped to
//! the bucket and dropped locally, so every read of a sealed segment goes to the bucket
//! (issue 17, acceptance 5). It is `SeglogEventStore` itself, with a roll, a ship and an
//! offload pass after each append and before each read: every event is then in a sealed
//! segment that only the bucket holds when it is read (asserted: no sealed segment on disk
//! at a read), and the data spans as many segments as there were appends.

use async_trait::async_trait;
use enact_core::kernel::persistence::{
    EventStore, ExecutionEventData, StorageBackend, StoredEvent,
};
use enact_core::kernel::{ExecutionId, TenantId};
use seglog_eventstore::SeglogEventStore;
use seglog_tier::object_store::path::Path as Key;
use seglog_tier::object_store::ObjectStore;
use seglog_tier::{ReadThrough, ReadThroughOptions, Tier};
use std::path::Path;
use std::sync::Arc;

/// Room for the conformance data's largest event (~3 MiB); segments are rolled after
/// every append anyway.
pub fn options() -> seglog::Options {
    seglog::Options::default()
        .segment_size_bytes(4 << 20)
        .max_record_size_bytes(Some((4 << 20) - 64))
}

/// `SeglogEventStore` over a log whose sealed segments live in the bucket only.
#[derive(Debug)]
pub struct TieredStore {
    inner: SeglogEventStore,
    tier: Tier,
    read_through: ReadThrough,
}

/// Opens the store in `dir`, its log shipped under `prefix` of `bucket` (claiming it: a
/// reopen fences the closed store's claim).
pub async fn open_tiered(bucket: Arc<dyn ObjectStore>, prefix: Key, dir: &Path) -> TieredStore {
    let log = seglog::Log::open(dir, options()).await.unwrap();
    let tier = Tier::claim(bucket.clone(), prefix).await.unwrap();
    let read_through =
        ReadThrough::new(bucket, ReadThroughOptions::default().keep_local_segments(0)).unwrap();
    read_through.attach(&log);
    let store = TieredStore {
        inner: SeglogEventStore::from_log(log),
        tier,
        read_through,
    };
    store.ship_and_offload().await;
    store
}

impl TieredStore {
    /// The log (as `SeglogEventStore::log`).
    pub fn log(&self) -> &seglog::Log {
        self.inner.log()
    }

    /// The read-through's counters.
    pub fn read_through(&self) -> &ReadThrough {
        &self.read_through
    }

    /// Seals the active segment, ships every sealed segment and drops it locally (no-op on
    /// a closed log).
    pub async fn ship_and_offload(&self) {
        let log = self.inner.log();
        if log.is_closed() || log.is_poisoned() {
            return;
        }
        log.roll().await.unwrap();
        self.read_through
            .ship_and_offload(&self.tier, log)
            .await
            .unwrap();
    }

    /// Before a read: no sealed segment is left on the local disk.
    async fn before_read(&self) {
        self.ship_and_offload().await;
        let log = self.inner.log();
        if !log.is_closed() {
            let local_sealed = log.segments().iter().filter(|s| s.sealed).count();
            assert_eq!(local_sealed, 0, "a sealed segment is still local");
        }
    }
}

#[async_trait]
impl StorageBackend for TieredStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn requires_network(&self) -> bool {
        self.inner.requires_network()
    }

    async fn health_check(&self) -> anyhow::Result<()> {
        self.inner.health_check().await
    }

    async fn shutdown(&self) -> anyhow::Result<()> {
        self.ship_and_offload().await;
        self.inner.shutdown().await
    }
}

#[async_trait]
impl EventStore for TieredStore {
    async fn append(
        &self,
        execution_id: &ExecutionId,
        tenant_id: &TenantId,
        event: ExecutionEventData,
    ) -> anyhow::Result<u64> {
        let seq = self.inner.append(execution_id, tenant_id, event).await?;
        self.ship_and_offload().await;
        Ok(seq)
    }

    async fn append_batch(
        &self,
        execution_id: &ExecutionId,
        tenant_id: &TenantId,
        events: Vec<ExecutionEventData>,
    ) -> anyhow::Result<u64> {
        let seq = self
            .inner
            .append_batch(execution_id, tenant_id, events)
            .await?;
        self.ship_and_offload().await;
        Ok(seq)
    }

    async fn load_events(&self, execution_id: &ExecutionId) -> anyhow::Result<Vec<StoredEvent>> {
        self.before_read().await;
        self.inner.load_events(execution_id).await
    }

    async fn load_events_after(
        &self,
        execution_id: &ExecutionId,
        after_seq: u64,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        self.before_read().await;
        self.inner.load_events_after(execution_id, after_seq).await
    }

    async fn get_latest_sequence(&self, execution_id: &ExecutionId) -> anyhow::Result<Option<u64>> {
        self.inner.get_latest_sequence(execution_id).await
    }

    async fn execution_exists(&self, execution_id: &ExecutionId) -> anyhow::Result<bool> {
        self.inner.execution_exists(execution_id).await
    }

    async fn list_executions(
        &self,
        tenant_id: &TenantId,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<ExecutionId>> {
        self.inner.list_executions(tenant_id, limit, offset).await
    }

    async fn count_events(&self, execution_id: &ExecutionId) -> anyhow::Result<u64> {
        self.inner.count_events(execution_id).await
    }
}
