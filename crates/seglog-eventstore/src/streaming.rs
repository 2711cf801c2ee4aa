//! [`SeglogStreamStore`]: enact-core's *streaming* `EventStore`
//! (`enact_core::streaming::EventStore`, behind `EventLog` and `StorageContext`) over
//! `seglog::Log`.
//!
//! Each `ExecutionEvent` is one record of the event's execution, its tenant taken from the
//! event's context, the whole event stored as MessagePack with field names
//! ([`codec::ENCODING_EXECUTION_EVENT_MSGPACK`]). The trait's global sequence is the record's
//! global position in the log (its LSN, docs/design.md "Global order"): strictly increasing
//! across all executions, never reused, stable across restarts and compaction, but not dense
//! (it skips). `get_after` reads the log in global order from that position
//! (`Log::read_global`); `get_by_execution` goes through the per-execution index.
//!
//! Invariants: an append returns only once durable; readers see only durable events.

use crate::codec::{self, ENCODING_EXECUTION_EVENT_MSGPACK};
use crate::deep_json;
use anyhow::Context;
use async_trait::async_trait;
use enact_core::kernel::{ExecutionEvent, ExecutionId};
use enact_core::streaming::{EventLogEntry, EventStore};
use seglog::io::{FileSystem, StdFs};
use seglog::{Log, LogRecord, Options};
use std::path::PathBuf;

/// The seglog tenant of an event whose context names none, when its execution has no tenant
/// yet. Events keep their context as it was (reads give back `tenant_id: None`); this only
/// names the group such executions are listed, retained and erased under
/// (`policy::drop_tenant(view, NO_TENANT)`).
pub const NO_TENANT: &str = "~no-tenant";

/// enact-core's streaming event store in a seglog log directory.
///
/// - `append` is durable (fdatasync) when it returns; its entry's `sequence` is the event's
///   global position: strictly increasing across all executions, never reused, the same
///   after a restart or a compaction, **not dense**. (enact-core's `InMemoryEventStore`
///   numbers from 0 and densely, `JsonlEventStore` from 1: callers should only compare
///   sequences and pass them back to `get_after`.)
/// - `get_after(after, limit)`: the events stored after position `after`, all executions,
///   in global order; `get_after(0, n)` starts at the beginning.
/// - `latest_sequence`: the position of the last durable event, 0 when there is none.
/// - An execution belongs to the tenant of its first event. A later event without a tenant
///   joins it (also while the first is still on its way to disk); one naming another tenant
///   is refused (nothing is written). An execution whose first event has no tenant is kept
///   under [`NO_TENANT`], a name no event may give as its tenant (such an append is
///   refused).
/// - Execution and tenant ids must be 1 to 255 bytes (seglog's limit; enact-core's stores
///   take any string), and an event may nest arrays and objects at most
///   [`codec::MAX_NESTING`] levels deep (deeper ones would not read back); another append
///   fails and writes nothing.
/// - Reads fail on a record `append` would not have written (through [`Self::log`], a tool,
///   a crafted file): one holding more than one event, or an event whose context names
///   another execution or tenant than the record's. They never hand it out under a sequence
///   it shares, or as another execution's or tenant's event.
///
/// Give it a log directory of its own: the kernel store ([`crate::SeglogEventStore`]) numbers
/// each execution's events densely, and the two kinds of event would share (and break) that
/// numbering if one log held both for the same execution ids.
///
/// Cheap to clone; `Arc<dyn EventStore>` works.
#[derive(Debug)]
pub struct SeglogStreamStore<F: FileSystem = StdFs> {
    log: Log<F>,
}

impl<F: FileSystem> Clone for SeglogStreamStore<F> {
    fn clone(&self) -> Self {
        SeglogStreamStore {
            log: self.log.clone(),
        }
    }
}

impl SeglogStreamStore<StdFs> {
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
        Ok(SeglogStreamStore {
            log: Log::open(path.into(), options).await?,
        })
    }
}

impl<F: FileSystem> SeglogStreamStore<F> {
    /// A store over a log opened elsewhere (on any file system).
    pub fn from_log(log: Log<F>) -> Self {
        SeglogStreamStore { log }
    }

    /// The underlying log (statistics, `subscribe_global`, compaction, tools).
    pub fn log(&self) -> &Log<F> {
        &self.log
    }

    /// Flushes and closes the log, releasing its directory.
    ///
    /// # Errors
    /// A poisoned log reports its poisoning here (it is closed anyway).
    pub fn close(&self) -> anyhow::Result<()> {
        self.log
            .close()
            .context("seglog streaming store did not close cleanly")
    }
}

/// The entry of a record the streaming store wrote: one event, of the record's execution
/// and tenant.
fn entry(record: &LogRecord) -> anyhow::Result<EventLogEntry> {
    let [payload] = record.payloads.as_slice() else {
        anyhow::bail!(
            "the record at global position {} holds {} events; the streaming store writes one per record",
            record.lsn,
            record.payloads.len()
        );
    };
    let event = codec::decode_execution_event(record.encoding, payload, record.lsn)?;
    check_context(&event, record.lsn, &record.execution, Some(&record.tenant))?;
    Ok(EventLogEntry::new(record.lsn, event))
}

/// Refuses an event whose context names another execution than the record it sits in, or
/// another tenant (an event without one joins its execution's, see the type's
/// documentation). `append` never writes one; a record written otherwise (through
/// [`SeglogStreamStore::log`], a tool, a crafted file) is refused rather than read back as
/// another execution's or another tenant's event. `tenant`: the record's, where known.
fn check_context(
    event: &ExecutionEvent,
    lsn: u64,
    execution: &str,
    tenant: Option<&str>,
) -> anyhow::Result<()> {
    let named = event.context.execution_id.as_str();
    anyhow::ensure!(
        named == execution,
        "the event at global position {lsn} names execution {named:?} but is stored under {execution:?}"
    );
    if let (Some(named), Some(stored)) = (&event.context.tenant_id, tenant) {
        anyhow::ensure!(
            named.as_str() == stored,
            "the event at global position {lsn} names tenant {:?} but is stored under {stored:?}",
            named.as_str()
        );
    }
    Ok(())
}

#[async_trait]
impl<F: FileSystem> EventStore for SeglogStreamStore<F> {
    async fn append(&self, mut event: ExecutionEvent) -> anyhow::Result<EventLogEntry> {
        let payload = match codec::encode_execution_event(&event) {
            Ok(payload) => payload,
            Err(refused) => {
                // The payload may nest too deep to drop recursively.
                if let Some(json) = event.payload.take() {
                    deep_json::drop_flat(json);
                }
                return Err(refused);
            }
        };
        let execution = event.context.execution_id.as_str();
        let receipt = match &event.context.tenant_id {
            Some(tenant) => {
                // The name is reserved for executions without a tenant: an event naming it
                // would join (and a retention policy for it would erase) every such execution.
                anyhow::ensure!(
                    tenant.as_str() != NO_TENANT,
                    "the tenant id {NO_TENANT:?} is reserved for executions without a tenant"
                );
                self.log
                    .append_encoded_at(
                        execution,
                        tenant.as_str(),
                        None,
                        ENCODING_EXECUTION_EVENT_MSGPACK,
                        &[payload],
                    )
                    .await?
            }
            // Joins its execution's tenant, also while that execution's first event is on
            // its way to disk.
            None => {
                self.log
                    .append_encoded_joining_at(
                        execution,
                        NO_TENANT,
                        ENCODING_EXECUTION_EVENT_MSGPACK,
                        &[payload],
                    )
                    .await?
            }
        };
        Ok(EventLogEntry::new(receipt.lsn, event))
    }

    async fn get_by_execution(
        &self,
        execution_id: &ExecutionId,
    ) -> anyhow::Result<Vec<EventLogEntry>> {
        let execution = execution_id.as_str();
        // The tenant from the same records (never looked up apart: the execution may be
        // erased and created again in between), and off the runtime's threads when
        // offloaded segments are read through their (blocking) source.
        let (events, tenant) = self
            .log
            .read_range_with_tenant_async(execution, 1, usize::MAX)
            .await?;
        // Events of one record share its position: the store writes one event per record,
        // and the trait's sequence must not repeat (as `get_after` refuses such a record).
        if let Some(pair) = events.windows(2).find(|w| w[0].lsn == w[1].lsn) {
            anyhow::bail!(
                "the record at global position {} holds more than one event; the streaming store writes one per record",
                pair[0].lsn
            );
        }
        events
            .into_iter()
            .map(|e| {
                let event = codec::decode_execution_event(e.encoding, &e.payload, e.lsn)?;
                check_context(&event, e.lsn, execution, tenant.as_deref())?;
                Ok(EventLogEntry::new(e.lsn, event))
            })
            .collect()
    }

    async fn get_after(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> anyhow::Result<Vec<EventLogEntry>> {
        self.log
            .read_global(after_sequence, limit)?
            .iter()
            .map(entry)
            .collect()
    }

    async fn latest_sequence(&self) -> anyhow::Result<u64> {
        Ok(self.log.latest_lsn()?)
    }
}
