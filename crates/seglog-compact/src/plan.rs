//! [`Plan`]: what one compaction will do.

use std::collections::{BTreeMap, BTreeSet};

/// One incarnation of an execution id, as a view saw it: the execution its tenant created
/// with the record at `created_lsn`.
///
/// The LSN alone does not name it for good: a record lost before it was synced (buffered,
/// then a power cut; a failed write; a salvage that cuts the tail) gives its LSN back, and
/// after a reopen the next append takes it again, perhaps another tenant's creating the same
/// id (review 108). The tenant keeps a stale plan from ever reaching another tenant's
/// execution; the same tenant re-creating the same id at the very LSN its lost record had is
/// not told apart (docs/design.md, "Compaction").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Incarnation {
    /// The LSN of the execution's first record.
    pub created_lsn: u64,
    /// Its tenant.
    pub tenant: String,
}

/// The outcome of one or more policies: executions to drop and segments to rewrite.
///
/// Carrying it out rewrites every sealed segment that holds a record of a dropped execution
/// plus `rewrite_segments`, keeping every other record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Executions whose every event goes, from the index and from the bytes on disk.
    pub drop_executions: BTreeSet<String>,
    /// For executions of `drop_executions` named from a view (every policy does): the
    /// incarnations the plan asks for ([`crate::ExecutionSummary::created_lsn`] and
    /// `tenant`; more than one when plans from views of different times were combined). An execution erased
    /// since (by another compaction) and created again under the same id, perhaps by another
    /// tenant, is another execution: it is kept. An id of `drop_executions` without an entry
    /// (a plan written by hand) is dropped whatever incarnation it is; entries for ids not in
    /// `drop_executions` mean nothing.
    pub drop_incarnations: BTreeMap<String, BTreeSet<Incarnation>>,
    /// Sealed segments to rewrite even without anything to drop (merging small segments).
    pub rewrite_segments: BTreeSet<u64>,
    /// Locality: every segment rewritten comes out *clustered* (docs/format.md §3.5): each
    /// execution's records together, so a cold read of an execution is one sequential read
    /// per segment. A clustered output replaces exactly one input (never a merge, never cut
    /// in two). Sequences, bytes, LSNs and `list_executions` order are unchanged.
    /// Default: false (records keep log order; a clustered input stays clustered).
    pub cluster_by_execution: bool,
}

impl Plan {
    /// The incarnations of `id` this plan drops: `None` for "whatever incarnation" (named
    /// without an entry), none when it does not name `id`.
    fn incarnations_of(&self, id: &str) -> Option<BTreeSet<Incarnation>> {
        if !self.drop_executions.contains(id) {
            return Some(BTreeSet::new());
        }
        self.drop_incarnations.get(id).cloned()
    }

    /// True when this plan drops the execution `id` that `tenant` created with the record
    /// at `created_lsn`: it names `id`, by hand (whatever incarnation) or with that
    /// incarnation among those its views saw.
    pub fn drops(&self, id: &str, created_lsn: u64, tenant: &str) -> bool {
        self.drop_executions.contains(id)
            && self.drop_incarnations.get(id).is_none_or(|seen| {
                seen.iter()
                    .any(|i| i.created_lsn == created_lsn && i.tenant == tenant)
            })
    }

    /// True when carrying it out would change nothing.
    pub fn is_empty(&self) -> bool {
        self.drop_executions.is_empty() && self.rewrite_segments.is_empty()
    }

    /// Both plans at once: an execution either drops is dropped (an id one of them drops
    /// whatever its incarnation stays so; otherwise the incarnations of both count).
    #[must_use]
    pub fn and(mut self, other: Plan) -> Plan {
        let mut incarnations = BTreeMap::new();
        for id in self.drop_executions.union(&other.drop_executions) {
            let (mine, theirs) = (self.incarnations_of(id), other.incarnations_of(id));
            if let (Some(mut mine), Some(theirs)) = (mine, theirs) {
                mine.extend(theirs);
                incarnations.insert(id.clone(), mine);
            }
        }
        self.drop_incarnations = incarnations;
        self.drop_executions.extend(other.drop_executions);
        self.rewrite_segments.extend(other.rewrite_segments);
        self.cluster_by_execution |= other.cluster_by_execution;
        self
    }
}
