//! The in-memory index: execution → tenant, creation order, and where each event lives.
//!
//! Layout, chosen for memory (≈ 8–11 bytes per event, see docs/benchmarks.md):
//! - one [`Execution`] per execution in a slab, found by id through a hash map;
//! - per execution, one packed 8-byte [`Location`] per *record* (segment number and offset,
//!   both u32); events of a single-event record need nothing more;
//! - per execution with batches, a `u32` first-sequence per record (allocated the first time
//!   a batch of more than one event arrives), searched by bisection;
//! - per tenant, the executions in creation (log) order.
//!
//! Invariants: sequences of an execution are dense from 1 and follow log order; an
//! execution's tenant never changes; `visible_seq ≤ last_seq`, and only events up to
//! `visible_seq` (durable and published) are ever returned.

use crate::{Error, Result};
use seglog_segment::RecordPosition;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Maps keyed by ids: ahash is fast and, with its random keys, resists collision attacks
/// from hostile execution ids.
type IdMap<V> = HashMap<Box<str>, V, ahash::RandomState>;

/// Where a record is: segment number and byte offset, packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Segment number.
    pub segment: u32,
    /// Byte offset in the segment file.
    pub offset: u32,
}

impl Location {
    /// Packs a segment-layer position.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past 2^32 segments or 4 GiB offsets.
    pub fn from_position(p: RecordPosition) -> Result<Self> {
        Ok(Location {
            segment: u32::try_from(p.segment)
                .map_err(|_| Error::LimitExceeded("segment number"))?,
            offset: u32::try_from(p.offset).map_err(|_| Error::LimitExceeded("segment offset"))?,
        })
    }

    /// Back to a segment-layer position.
    pub fn position(self) -> RecordPosition {
        RecordPosition {
            segment: u64::from(self.segment),
            offset: u64::from(self.offset),
        }
    }
}

/// Handle of an execution inside the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecutionSlot(u32);

/// An appender's handle on one execution's visible sequence: publishing through it takes
/// no lock on the index. Once the execution is erased, the index holds a new counter and a
/// handle taken before publishes into nothing.
#[derive(Debug, Clone)]
pub struct Visibility(Arc<AtomicU64>);

impl Visibility {
    /// Makes events up to `seq` visible to readers (never lowers what is visible). Correct
    /// only when every event of the execution up to `seq` is durable and indexed.
    pub fn publish(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::AcqRel);
    }
}

/// One execution's entry.
#[derive(Debug)]
pub struct Execution {
    id: Box<str>,
    tenant: u32,
    created_lsn: u64,
    last_seq: u64,
    /// Shared with appenders ([`Visibility`]) so that they publish without the index's lock.
    visible_seq: Arc<AtomicU64>,
    last_timestamp_unix_nanos: i64,
    records: Vec<Location>,
    /// First sequence of each record, present once a record held more than one event.
    record_first_seqs: Option<Vec<u32>>,
}

impl Execution {
    /// The execution id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// LSN of its first record: its place in creation order.
    pub fn created_lsn(&self) -> u64 {
        self.created_lsn
    }
    /// Last sequence assigned (maybe not yet durable).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
    /// Last sequence that readers may see (durable and published).
    pub fn visible_seq(&self) -> u64 {
        self.visible_seq.load(Ordering::Acquire)
    }
    /// Timestamp of its last record.
    pub fn last_timestamp_unix_nanos(&self) -> i64 {
        self.last_timestamp_unix_nanos
    }
    /// The first sequence of its `i`-th record (in log order), `None` past the last.
    pub fn record_first_seq(&self, i: usize) -> Option<u64> {
        match &self.record_first_seqs {
            None => (i < self.records.len()).then_some(i as u64 + 1),
            Some(firsts) => firsts.get(i).map(|&f| u64::from(f)),
        }
    }

    /// Where its records are, in log order.
    pub fn records(&self) -> &[Location] {
        &self.records
    }

    /// True for the empty shell left by [`ExecutionIndex::remove_executions`].
    fn removed(&self) -> bool {
        self.id.is_empty()
    }

    /// Adds a record that continues this execution (the caller has checked that it does).
    fn push_record(
        &mut self,
        location: Location,
        first_seq: u64,
        event_count: u32,
        timestamp: i64,
    ) {
        if event_count > 1 && self.record_first_seqs.is_none() {
            // Until now every record held one event: record i starts at sequence i + 1.
            self.record_first_seqs = Some((1..=self.records.len() as u32).collect());
        }
        if let Some(firsts) = self.record_first_seqs.as_mut() {
            firsts.push(first_seq as u32);
        }
        self.records.push(location);
        self.last_seq = first_seq + u64::from(event_count) - 1;
        self.last_timestamp_unix_nanos = self.last_timestamp_unix_nanos.max(timestamp);
    }

    /// The record holding `seq` and the event's index inside it.
    fn locate(&self, seq: u64) -> Option<(Location, u32)> {
        if seq == 0 || seq > self.last_seq {
            return None;
        }
        match &self.record_first_seqs {
            None => self.records.get((seq - 1) as usize).map(|&l| (l, 0)),
            Some(firsts) => {
                let i = firsts
                    .partition_point(|&f| u64::from(f) <= seq)
                    .checked_sub(1)?;
                let within = seq - u64::from(firsts[i]);
                Some((*self.records.get(i)?, u32::try_from(within).ok()?))
            }
        }
    }
}

/// An event's place: its sequence, record and index within the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLocation {
    /// The event's sequence number.
    pub seq: u64,
    /// The record holding it.
    pub location: Location,
    /// Its index in the record's batch.
    pub index_in_record: u32,
}

/// A record as the index learns it (from an append, a recovery scan or a checkpoint).
#[derive(Debug, Clone, Copy)]
pub struct IndexedRecord<'a> {
    /// Execution id.
    pub execution: &'a str,
    /// Tenant id.
    pub tenant: &'a str,
    /// The record's LSN.
    pub lsn: u64,
    /// Where it is.
    pub location: Location,
    /// Sequence of its first event.
    pub first_seq: u64,
    /// Number of events.
    pub event_count: u32,
    /// Its timestamp.
    pub timestamp_unix_nanos: i64,
}

#[derive(Debug)]
struct Tenant {
    name: Box<str>,
    executions: Vec<u32>,
}

/// What an append must use, decided by [`ExecutionIndex::plan_append`] without changing
/// anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendPlan {
    /// Sequence of the first new event.
    pub first_seq: u64,
    /// Timestamp to record: the caller's clock, but never before the execution's last one.
    pub timestamp_unix_nanos: i64,
}

/// The index of every execution in the log.
#[derive(Debug, Default)]
pub struct ExecutionIndex {
    by_id: IdMap<u32>,
    executions: Vec<Execution>,
    tenant_ids: IdMap<u32>,
    tenants: Vec<Tenant>,
    events: u64,
}

impl ExecutionIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The execution named `id`, if any record of it was indexed.
    pub fn get(&self, id: &str) -> Option<&Execution> {
        self.by_id.get(id).map(|&i| &self.executions[i as usize])
    }

    /// The slot of execution `id`.
    pub fn slot(&self, id: &str) -> Option<ExecutionSlot> {
        self.by_id.get(id).map(|&i| ExecutionSlot(i))
    }

    /// The tenant id of an execution.
    pub fn tenant_of(&self, id: &str) -> Option<&str> {
        let e = self.get(id)?;
        self.tenants.get(e.tenant as usize).map(|t| &*t.name)
    }

    /// Number of executions (including ones whose first append is not yet durable).
    pub fn execution_count(&self) -> usize {
        self.by_id.len()
    }

    /// Number of tenants.
    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    /// Events indexed.
    pub fn event_count(&self) -> u64 {
        self.events
    }

    /// Registers a new tenant; the caller has checked it is new.
    fn add_tenant(&mut self, name: &str) -> Result<u32> {
        let t = u32::try_from(self.tenants.len()).map_err(|_| Error::LimitExceeded("tenants"))?;
        self.tenant_ids.insert(name.into(), t);
        self.tenants.push(Tenant {
            name: name.into(),
            executions: Vec::new(),
        });
        Ok(t)
    }

    /// Registers a new execution of `tenant`, created by the record at `created_lsn`; the
    /// caller has checked it is new.
    fn add_execution(&mut self, id: &str, tenant: u32, created_lsn: u64) -> Result<u32> {
        let i =
            u32::try_from(self.executions.len()).map_err(|_| Error::LimitExceeded("executions"))?;
        self.by_id.insert(id.into(), i);
        self.executions.push(Execution {
            id: id.into(),
            tenant,
            created_lsn,
            last_seq: 0,
            visible_seq: Arc::new(AtomicU64::new(0)),
            last_timestamp_unix_nanos: i64::MIN,
            records: Vec::new(),
            record_first_seqs: None,
        });
        self.tenants[tenant as usize].executions.push(i);
        Ok(i)
    }

    /// Checks an append of `count` events and decides its sequence and timestamp.
    ///
    /// # Errors
    /// [`Error::TenantMismatch`], [`Error::Conflict`] when `expected_last_seq` is given and
    /// differs (0 means "must not exist yet").
    pub fn plan_append(
        &self,
        execution: &str,
        tenant: &str,
        expected_last_seq: Option<u64>,
        now_unix_nanos: i64,
    ) -> Result<AppendPlan> {
        let existing = self.get(execution);
        if let Some(e) = existing {
            let same_tenant = self.tenant_ids.get(tenant).is_some_and(|&t| t == e.tenant);
            if !same_tenant {
                return Err(Error::TenantMismatch);
            }
        }
        let last = existing.map_or(0, |e| e.last_seq);
        if let Some(expected) = expected_last_seq {
            if expected != last {
                return Err(Error::Conflict {
                    expected,
                    actual: last,
                });
            }
        }
        Ok(AppendPlan {
            first_seq: last + 1,
            timestamp_unix_nanos: existing.map_or(now_unix_nanos, |e| {
                now_unix_nanos.max(e.last_timestamp_unix_nanos)
            }),
        })
    }

    /// Adds a record. Records of an execution must come in log order with dense sequences.
    ///
    /// # Errors
    /// [`Error::Inconsistent`] for a sequence gap or a tenant change,
    /// [`Error::LimitExceeded`] at the u32 limits.
    pub fn insert(&mut self, r: &IndexedRecord<'_>) -> Result<ExecutionSlot> {
        let tenant = match self.tenant_ids.get(r.tenant) {
            Some(&t) => t,
            None => self.add_tenant(r.tenant)?,
        };
        let slot = match self.by_id.get(r.execution) {
            Some(&i) => i,
            None => self.add_execution(r.execution, tenant, r.lsn)?,
        };
        let e = &mut self.executions[slot as usize];
        let inconsistent = |reason: String| Error::Inconsistent { lsn: r.lsn, reason };
        if e.tenant != tenant {
            return Err(inconsistent(format!("execution {:?} changes tenant", e.id)));
        }
        if r.first_seq != e.last_seq + 1 || r.event_count == 0 {
            return Err(inconsistent(format!(
                "execution {:?} jumps from sequence {} to {}",
                e.id, e.last_seq, r.first_seq
            )));
        }
        let last_seq = r.first_seq + u64::from(r.event_count) - 1;
        if last_seq > u64::from(u32::MAX) {
            return Err(Error::LimitExceeded("events in one execution"));
        }
        e.push_record(
            r.location,
            r.first_seq,
            r.event_count,
            r.timestamp_unix_nanos,
        );
        self.events += u64::from(r.event_count);
        Ok(ExecutionSlot(slot))
    }

    /// Adds the records of one segment's checkpoint, all or nothing. Ids are resolved once
    /// per checkpoint rather than once per record, which is what makes opening from
    /// checkpoints fast.
    ///
    /// `strings` are the checkpoint's ids; each record names its execution and tenant by
    /// index into them (indices must be in range: the decoder checks it).
    ///
    /// # Errors
    /// [`Error::Inconsistent`] when a record does not continue its execution (nothing is
    /// changed then), [`Error::LimitExceeded`].
    pub fn apply_checkpoint(
        &mut self,
        segment: u32,
        strings: &[String],
        records: &[crate::checkpoint::CheckpointRecord],
    ) -> Result<()> {
        // Per string: the existing execution and tenant slots it names, if any.
        let exec_slot: Vec<Option<u32>> = strings
            .iter()
            .map(|s| self.by_id.get(s.as_str()).copied())
            .collect();
        let tenant_slot: Vec<Option<u32>> = strings
            .iter()
            .map(|s| self.tenant_ids.get(s.as_str()).copied())
            .collect();
        // Dry run: per execution string, (tenant string or existing tenant, last seq, records).
        #[derive(Clone, Copy, PartialEq)]
        enum Owner {
            Unset,
            Existing(u32),
            New(u32),
        }
        let mut state: Vec<(Owner, u64, u32)> = exec_slot
            .iter()
            .map(|slot| match slot {
                Some(i) => {
                    let e = &self.executions[*i as usize];
                    (Owner::Existing(e.tenant), e.last_seq, 0)
                }
                None => (Owner::Unset, 0, 0),
            })
            .collect();
        for r in records {
            let (Some(st), Some(&tenant_existing)) = (
                state.get_mut(r.execution as usize),
                tenant_slot.get(r.tenant as usize),
            ) else {
                return Err(Error::Inconsistent {
                    lsn: r.lsn,
                    reason: "checkpoint names an unknown id".into(),
                });
            };
            let owner_ok = match st.0 {
                Owner::Unset => {
                    st.0 = tenant_existing.map_or(Owner::New(r.tenant), Owner::Existing);
                    true
                }
                Owner::Existing(t) => tenant_existing == Some(t),
                Owner::New(t) => t == r.tenant,
            };
            if !owner_ok || r.first_seq != st.1 + 1 || r.event_count == 0 {
                return Err(Error::Inconsistent {
                    lsn: r.lsn,
                    reason: format!(
                        "checkpoint record of execution {:?} does not follow the index",
                        strings[r.execution as usize]
                    ),
                });
            }
            st.1 = r.first_seq + u64::from(r.event_count) - 1;
            if st.1 > u64::from(u32::MAX) {
                return Err(Error::LimitExceeded("events in one execution"));
            }
            st.2 += 1;
        }
        // Apply: create tenants and executions in log order, reserve, push.
        let mut tenant_of_string = tenant_slot;
        let mut slot_of_string = exec_slot;
        for r in records {
            let t = match tenant_of_string[r.tenant as usize] {
                Some(t) => t,
                None => {
                    let t = self.add_tenant(&strings[r.tenant as usize])?;
                    tenant_of_string[r.tenant as usize] = Some(t);
                    t
                }
            };
            let slot = match slot_of_string[r.execution as usize] {
                Some(i) => i,
                None => {
                    let i = self.add_execution(&strings[r.execution as usize], t, r.lsn)?;
                    slot_of_string[r.execution as usize] = Some(i);
                    i
                }
            };
            let e = &mut self.executions[slot as usize];
            let pending = state[r.execution as usize].2;
            if pending > 0 {
                e.records.reserve_exact(pending as usize);
                state[r.execution as usize].2 = 0;
            }
            let location = Location {
                segment,
                offset: r.offset,
            };
            e.push_record(location, r.first_seq, r.event_count, r.timestamp_unix_nanos);
            self.events += u64::from(r.event_count);
        }
        Ok(())
    }

    /// Makes events up to `seq` of an execution visible to readers. Takes `&self`: callers
    /// publish under a shared lock. Correct only when every event up to `seq` is durable.
    pub fn publish(&self, slot: ExecutionSlot, seq: u64) {
        if let Some(e) = self.executions.get(slot.0 as usize) {
            e.visible_seq
                .fetch_max(seq.min(e.last_seq), Ordering::AcqRel);
        }
    }

    /// The handle through which an appender publishes events of the execution at `slot`
    /// without any lock on the index (`None` for a slot this index never handed out).
    pub fn visibility(&self, slot: ExecutionSlot) -> Option<Visibility> {
        self.executions
            .get(slot.0 as usize)
            .map(|e| Visibility(e.visible_seq.clone()))
    }

    /// Gives back the spare capacity of every per-execution table (after a rebuild, when
    /// growth by doubling has left up to half of it unused).
    pub fn shrink_to_fit(&mut self) {
        for e in &mut self.executions {
            e.records.shrink_to_fit();
            if let Some(f) = e.record_first_seqs.as_mut() {
                f.shrink_to_fit();
            }
        }
        for t in &mut self.tenants {
            t.executions.shrink_to_fit();
        }
    }

    /// Makes everything indexed visible (after recovery, when all of it is durable).
    pub fn publish_all(&mut self) {
        for e in &mut self.executions {
            e.visible_seq.store(e.last_seq, Ordering::Release);
        }
    }

    /// Visible events of `execution` with sequence ≥ `from_seq`, at most `limit` of them.
    pub fn events(&self, execution: &str, from_seq: u64, limit: usize) -> Vec<EventLocation> {
        let Some(e) = self.get(execution) else {
            return Vec::new();
        };
        let from = from_seq.max(1);
        let to = e.visible_seq();
        if from > to || limit == 0 {
            return Vec::new();
        }
        let n = ((to - from + 1) as usize).min(limit);
        let mut out = Vec::with_capacity(n);
        for seq in from..from + n as u64 {
            if let Some((location, index_in_record)) = e.locate(seq) {
                out.push(EventLocation {
                    seq,
                    location,
                    index_in_record,
                });
            }
        }
        out
    }

    /// A tenant's executions, newest first by creation (log order), skipping `offset` and
    /// returning at most `limit`. Executions with no visible event are left out.
    pub fn list_executions(&self, tenant: &str, limit: usize, offset: usize) -> Vec<&str> {
        let Some(&t) = self.tenant_ids.get(tenant) else {
            return Vec::new();
        };
        self.tenants[t as usize]
            .executions
            .iter()
            .rev()
            .map(|&i| &self.executions[i as usize])
            .filter(|e| e.visible_seq() > 0)
            .skip(offset)
            .take(limit)
            .map(|e| e.id())
            .collect()
    }

    /// Every execution, in creation order.
    pub fn executions(&self) -> impl Iterator<Item = &Execution> {
        self.executions.iter().filter(|e| !e.removed())
    }

    /// Removes executions and all their events (compaction dropped them from the log).
    /// Unknown ids are ignored. Returns the executions and events removed.
    ///
    /// The slots stay allocated, empty, so that an appender still holding one publishes
    /// into nothing; a later append of the same id starts a new execution at sequence 1.
    pub fn remove_executions<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> (u64, u64) {
        let mut removed_slots = std::collections::HashSet::new();
        let mut events = 0;
        for id in ids {
            let Some(slot) = self.by_id.remove(id) else {
                continue;
            };
            let e = &mut self.executions[slot as usize];
            events += e.last_seq;
            e.id = "".into();
            e.records = Vec::new();
            e.record_first_seqs = None;
            e.last_seq = 0;
            // A fresh counter: appenders still holding the old one publish into nothing.
            e.visible_seq = Arc::new(AtomicU64::new(0));
            removed_slots.insert(slot);
        }
        if !removed_slots.is_empty() {
            for t in &mut self.tenants {
                t.executions.retain(|i| !removed_slots.contains(i));
            }
        }
        self.events -= events.min(self.events);
        (removed_slots.len() as u64, events)
    }

    /// Points every record of the segments in `replaced` at its new place, given by
    /// `moved_to` (compaction rewrote those segments). All or nothing.
    ///
    /// # Errors
    /// [`Error::Inconsistent`] when a record of a remaining execution has no new place.
    pub fn relocate(
        &mut self,
        replaced: &std::collections::HashSet<u32>,
        moved_to: impl Fn(Location) -> Option<Location>,
    ) -> Result<()> {
        for e in self.executions.iter().filter(|e| !e.removed()) {
            for &l in e.records.iter().filter(|l| replaced.contains(&l.segment)) {
                if moved_to(l).is_none() {
                    return Err(Error::Inconsistent {
                        lsn: e.created_lsn,
                        reason: format!(
                            "record of execution {:?} at segment {} offset {} has no place after compaction",
                            e.id, l.segment, l.offset
                        ),
                    });
                }
            }
        }
        for e in &mut self.executions {
            for l in e
                .records
                .iter_mut()
                .filter(|l| replaced.contains(&l.segment))
            {
                if let Some(new) = moved_to(*l) {
                    *l = new;
                }
            }
        }
        Ok(())
    }

    /// Bytes of heap and struct memory the index holds (capacities, not lengths).
    pub fn memory_bytes(&self) -> usize {
        let map_entry = |key_len: usize| std::mem::size_of::<(Box<str>, u32)>() + 1 + key_len;
        let mut total = std::mem::size_of::<Self>();
        total += self.by_id.capacity() * map_entry(0);
        total += self.tenant_ids.capacity() * map_entry(0);
        total += self.executions.capacity() * std::mem::size_of::<Execution>();
        total += self.tenants.capacity() * std::mem::size_of::<Tenant>();
        // Each execution's shared visibility counter: the counter and two reference counts.
        total += self.executions.len() * std::mem::size_of::<[AtomicU64; 3]>();
        for e in &self.executions {
            // The id is held twice: as the map key and in the entry.
            total += 2 * e.id.len();
            total += e.records.capacity() * std::mem::size_of::<Location>();
            total += e.record_first_seqs.as_ref().map_or(0, |f| f.capacity() * 4);
        }
        for t in &self.tenants {
            total += 2 * t.name.len() + t.executions.capacity() * 4;
        }
        total
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
