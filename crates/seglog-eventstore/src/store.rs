//! [`SeglogEventStore`]: enact-core's `EventStore` and `StorageBackend` over `seglog::Log`.

use crate::codec::{self, ENCODING_MSGPACK_NAMED};
use crate::deep_json;
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use enact_core::kernel::persistence::{
    EventStore, ExecutionEventData, StorageBackend, StoredEvent,
};
use enact_core::kernel::{ExecutionId, TenantId};
use seglog::io::{FileSystem, StdFs};
use seglog::{Log, Options};
use std::path::PathBuf;

/// An enact-core event store kept in a seglog log directory.
///
/// Every guarantee of the trait holds: an append is durable (fdatasync) when it returns;
/// sequences are dense per execution from 1; a batch is atomic with consecutive sequences;
/// an execution belongs to the tenant of its first append and other tenants cannot append
/// to it or see it in their listing. An event nesting arrays and objects deeper than
/// [`crate::codec::MAX_NESTING`] levels is refused (it would not read back); nothing is
/// written. Cheap to clone; `Arc<dyn EventStore>` works.
#[derive(Debug)]
pub struct SeglogEventStore<F: FileSystem = StdFs> {
    log: Log<F>,
    /// The claim and the background shipping of a store opened from a bucket.
    #[cfg(feature = "tier")]
    bucket: Option<std::sync::Arc<crate::bucket::Attached>>,
}

impl<F: FileSystem> Clone for SeglogEventStore<F> {
    fn clone(&self) -> Self {
        SeglogEventStore {
            log: self.log.clone(),
            #[cfg(feature = "tier")]
            bucket: self.bucket.clone(),
        }
    }
}

fn timestamp(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

impl SeglogEventStore<StdFs> {
    /// Opens (or creates) the store in `path` with seglog's default options.
    ///
    /// # Errors
    /// [`seglog::Error`]: the log cannot be opened (locked by another process — see
    /// [`seglog::Error::is_locked`] — damaged, I/O); its message names the directory.
    pub async fn open(path: impl Into<PathBuf>) -> seglog::Result<Self> {
        Self::open_with(path, Options::default()).await
    }

    /// Opens (or creates) the store in `path` with the given options.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub async fn open_with(path: impl Into<PathBuf>, options: Options) -> seglog::Result<Self> {
        Ok(Self::from_log(Log::open(path.into(), options).await?))
    }

    #[cfg(feature = "tier")]
    pub(crate) fn with_bucket(log: Log, bucket: std::sync::Arc<crate::bucket::Attached>) -> Self {
        SeglogEventStore {
            log,
            bucket: Some(bucket),
        }
    }
}

impl<F: FileSystem> SeglogEventStore<F> {
    /// A store over a log opened elsewhere (on any file system).
    pub fn from_log(log: Log<F>) -> Self {
        SeglogEventStore {
            log,
            #[cfg(feature = "tier")]
            bucket: None,
        }
    }

    #[cfg(feature = "tier")]
    pub(crate) fn bucket(&self) -> Option<&crate::bucket::Attached> {
        self.bucket.as_deref()
    }

    /// The underlying log (statistics, subscriptions, tools).
    pub fn log(&self) -> &Log<F> {
        &self.log
    }

    async fn append_encoded(
        &self,
        execution_id: &ExecutionId,
        tenant_id: &TenantId,
        payloads: &[Vec<u8>],
    ) -> anyhow::Result<u64> {
        #[cfg(feature = "tier")]
        if let Some(remote) = self.bucket().and_then(|b| b.remote.as_ref()) {
            // Durability::Remote: returns once the event is in the bucket.
            return Ok(remote
                .append_encoded(
                    execution_id.as_str(),
                    tenant_id.as_str(),
                    None,
                    ENCODING_MSGPACK_NAMED,
                    payloads,
                )
                .await?);
        }
        let first = self
            .log
            .append_encoded(
                execution_id.as_str(),
                tenant_id.as_str(),
                None,
                ENCODING_MSGPACK_NAMED,
                payloads,
            )
            .await?;
        Ok(first)
    }

    /// The events of `execution_id` from `from_seq`, labelled with the tenant their own
    /// records carry (never one read separately: the execution may have been erased and
    /// created again under another tenant in between). A log with offloaded segments (read
    /// through object storage, whose reads block) is read off the runtime's worker threads.
    async fn stored(
        &self,
        execution_id: &ExecutionId,
        from_seq: u64,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let (events, tenant) = self
            .log
            .read_range_with_tenant_async(execution_id.as_str(), from_seq, usize::MAX)
            .await?;
        let Some(tenant) = tenant else {
            return Ok(Vec::new());
        };
        let tenant_id = TenantId::from_string(tenant);
        events
            .into_iter()
            .map(|e| {
                Ok(StoredEvent {
                    sequence: e.seq,
                    execution_id: execution_id.clone(),
                    tenant_id: tenant_id.clone(),
                    event: codec::decode(e.encoding, &e.payload, execution_id.as_str(), e.seq)?,
                    timestamp: timestamp(e.timestamp_unix_nanos),
                })
            })
            .collect()
    }
}

#[async_trait]
impl<F: FileSystem> StorageBackend for SeglogEventStore<F> {
    fn name(&self) -> &str {
        "seglog"
    }

    /// True for a store opened from a bucket (it ships there), false for a local one.
    fn requires_network(&self) -> bool {
        #[cfg(feature = "tier")]
        if self.bucket().is_some() {
            return true;
        }
        false
    }

    async fn health_check(&self) -> anyhow::Result<()> {
        if self.log.is_closed() {
            anyhow::bail!("seglog event store is shut down");
        }
        if self.log.is_poisoned() {
            anyhow::bail!("seglog event store is poisoned by an I/O failure; reopen it");
        }
        Ok(())
    }

    async fn shutdown(&self) -> anyhow::Result<()> {
        // The shipper's last round ships what the log holds; a fence is reported.
        #[cfg(feature = "tier")]
        let shipped = match self.bucket() {
            Some(bucket) => bucket.stop().await,
            None => Ok(()),
        };
        let closed = self
            .log
            .close()
            .context("seglog event store did not shut down cleanly");
        // A fence (or the last round's failure) says more than the close of a log it
        // poisoned: it is reported first.
        #[cfg(feature = "tier")]
        shipped.context("seglog event store: shipping to the bucket failed")?;
        closed
    }
}

#[async_trait]
impl<F: FileSystem> EventStore for SeglogEventStore<F> {
    async fn append(
        &self,
        execution_id: &ExecutionId,
        tenant_id: &TenantId,
        event: ExecutionEventData,
    ) -> anyhow::Result<u64> {
        let payload = match codec::encode(&event) {
            Ok(payload) => payload,
            Err(refused) => {
                // It may nest too deep to drop recursively.
                deep_json::dispose(event);
                return Err(refused);
            }
        };
        self.append_encoded(execution_id, tenant_id, &[payload])
            .await
    }

    async fn append_batch(
        &self,
        execution_id: &ExecutionId,
        tenant_id: &TenantId,
        events: Vec<ExecutionEventData>,
    ) -> anyhow::Result<u64> {
        if events.is_empty() {
            anyhow::bail!("append_batch needs at least one event; nothing was written");
        }
        let payloads: Vec<Vec<u8>> = match events.iter().map(codec::encode).collect() {
            Ok(payloads) => payloads,
            Err(refused) => {
                // One may nest too deep to drop recursively.
                events.into_iter().for_each(deep_json::dispose);
                return Err(refused);
            }
        };
        self.append_encoded(execution_id, tenant_id, &payloads)
            .await
    }

    async fn load_events(&self, execution_id: &ExecutionId) -> anyhow::Result<Vec<StoredEvent>> {
        self.stored(execution_id, 1).await
    }

    async fn load_events_after(
        &self,
        execution_id: &ExecutionId,
        after_seq: u64,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        self.stored(execution_id, after_seq.saturating_add(1)).await
    }

    async fn get_latest_sequence(&self, execution_id: &ExecutionId) -> anyhow::Result<Option<u64>> {
        Ok(self.log.latest_seq(execution_id.as_str())?)
    }

    async fn execution_exists(&self, execution_id: &ExecutionId) -> anyhow::Result<bool> {
        Ok(self.log.exists(execution_id.as_str())?)
    }

    async fn list_executions(
        &self,
        tenant_id: &TenantId,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<ExecutionId>> {
        Ok(self
            .log
            .list_executions(tenant_id.as_str(), limit, offset)?
            .into_iter()
            .map(ExecutionId::from_string)
            .collect())
    }

    /// Sequences are dense from 1, so the count is the latest sequence (as the default).
    async fn count_events(&self, execution_id: &ExecutionId) -> anyhow::Result<u64> {
        Ok(self.log.count(execution_id.as_str())?)
    }
}
