//! Compaction policies: pure functions from an [`IndexView`] to a [`Plan`]. No I/O, no
//! clock (the view carries "now"), so each is unit-tested on hand-made views. Combine them
//! with [`Plan::and`].

use crate::{ExecutionSummary, Incarnation, IndexView, Plan};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

fn age_limit(view: &IndexView, age: Duration) -> i64 {
    let age = i64::try_from(age.as_nanos()).unwrap_or(i64::MAX);
    view.now_unix_nanos.saturating_sub(age)
}

fn dropping<'a>(executions: impl Iterator<Item = &'a ExecutionSummary>) -> Plan {
    let drop_incarnations: BTreeMap<String, BTreeSet<Incarnation>> = executions
        .map(|e| {
            let seen = Incarnation {
                created_lsn: e.created_lsn,
                tenant: e.tenant.clone(),
            };
            (e.id.clone(), BTreeSet::from([seen]))
        })
        .collect();
    Plan {
        drop_executions: drop_incarnations.keys().cloned().collect(),
        drop_incarnations,
        ..Plan::default()
    }
}

/// Erases a tenant: every execution of `tenant`.
pub fn drop_tenant(view: &IndexView, tenant: &str) -> Plan {
    dropping(view.executions.iter().filter(|e| e.tenant == tenant))
}

/// Drops the listed executions (ids the log does not hold are ignored).
pub fn drop_executions<'a>(view: &IndexView, ids: impl IntoIterator<Item = &'a str>) -> Plan {
    let wanted: std::collections::HashSet<&str> = ids.into_iter().collect();
    dropping(
        view.executions
            .iter()
            .filter(|e| wanted.contains(e.id.as_str())),
    )
}

/// Retention: drops executions whose last event is older than `age`.
pub fn drop_older_than(view: &IndexView, age: Duration) -> Plan {
    let limit = age_limit(view, age);
    dropping(
        view.executions
            .iter()
            .filter(|e| e.last_timestamp_unix_nanos < limit),
    )
}

/// Drops executions that `is_finished` says are over and whose last event is older than
/// `age`. The predicate sees the execution's summary, with its last event when the view was
/// built with them (seglog-eventstore's predicate checks for a terminal event).
pub fn drop_finished_before(
    view: &IndexView,
    age: Duration,
    is_finished: impl Fn(&ExecutionSummary) -> bool,
) -> Plan {
    let limit = age_limit(view, age);
    dropping(
        view.executions
            .iter()
            .filter(|e| e.last_timestamp_unix_nanos < limit && is_finished(e)),
    )
}

/// Retention by size: when the log's segments add up to more than `max_bytes`, drops
/// executions, the one whose last event is oldest first, until the bytes they hold
/// ([`ExecutionSummary::bytes`]) bring the log under the limit. It never drops more than
/// that; the log's size after the compaction may differ a little (what was appended
/// meanwhile, a segment's header when the rewrite empties it).
///
/// Never dropped for size: an execution with nothing durable or no bytes (dropping it frees
/// nothing), and one with records in a segment the view does not list (offloaded to a
/// bucket, which compaction never rewrites, or not created yet: dropping it frees no local
/// byte, and a pass spending its budget on it would drop nothing, pass after pass; review
/// 103). Weighing executions by their exact bytes, not by events at a mean size, is what
/// keeps a pass from dropping many times what the limit asks for when event sizes differ
/// (reviews 104–106).
pub fn keep_log_under(view: &IndexView, max_bytes: u64) -> Plan {
    let total: u64 = view.segments.iter().map(|s| s.bytes).sum();
    if total <= max_bytes {
        return Plan::default();
    }
    let listed: HashSet<u64> = view.segments.iter().map(|s| s.number).collect();
    let mut oldest_first: Vec<&ExecutionSummary> = view
        .executions
        .iter()
        .filter(|e| {
            e.durable_events > 0 && e.bytes > 0 && e.segments.iter().all(|s| listed.contains(s))
        })
        .collect();
    // Ties by creation order: the view lists executions in it.
    oldest_first.sort_by_key(|e| e.last_timestamp_unix_nanos);
    let mut excess = total - max_bytes;
    dropping(oldest_first.into_iter().take_while(|e| {
        if excess == 0 {
            return false;
        }
        excess = excess.saturating_sub(e.bytes);
        true
    }))
}

/// Rewrites every sealed segment (merging them up to the target size): a full compaction.
pub fn rewrite_all_sealed(view: &IndexView) -> Plan {
    Plan {
        rewrite_segments: view
            .segments
            .iter()
            .filter(|s| s.sealed)
            .map(|s| s.number)
            .collect(),
        ..Plan::default()
    }
}

/// Merges runs of adjacent small sealed segments: each run of two or more sealed segments
/// smaller than `small_below_bytes`, at most `target_bytes` together, is rewritten as one.
/// Clustered segments are left alone (a clustered segment is rewritten only by itself).
pub fn merge_small_segments(view: &IndexView, small_below_bytes: u64, target_bytes: u64) -> Plan {
    let mut plan = Plan::default();
    let mut run: Vec<u64> = Vec::new();
    let mut run_bytes = 0u64;
    let close = |run: &mut Vec<u64>, plan: &mut Plan| {
        if run.len() >= 2 {
            plan.rewrite_segments.extend(run.iter().copied());
        }
        run.clear();
    };
    for s in &view.segments {
        // Clustered segments are rewritten alone, never merged (format.md §3.5): picking
        // them would rewrite them on every pass and merge nothing.
        let small = s.sealed && !s.clustered && s.bytes < small_below_bytes;
        if !small || run_bytes + s.bytes > target_bytes {
            close(&mut run, &mut plan);
            run_bytes = 0;
        }
        if small {
            run.push(s.number);
            run_bytes += s.bytes;
        }
    }
    close(&mut run, &mut plan);
    plan
}

/// Locality: clusters every sealed segment not clustered yet, so that each execution's
/// records in it sit together (a cold read of an execution is then one sequential read per
/// segment instead of one per record). Nothing is dropped. The active segment is not
/// touched: to cluster an execution whose last records are still there, seal it first
/// (`seglog::Log::roll`), as RocksDB's `CompactRange` flushes the memtable first.
pub fn cluster_sealed_segments(view: &IndexView) -> Plan {
    Plan {
        rewrite_segments: view
            .segments
            .iter()
            .filter(|s| s.sealed && !s.clustered)
            .map(|s| s.number)
            .collect(),
        cluster_by_execution: true,
        ..Plan::default()
    }
}

/// Locality for finished executions: clusters the sealed, not yet clustered segments that
/// hold a record of an execution `is_finished` accepts (with seglog-eventstore's
/// `retention::is_finished`: the last event ends the execution). A finished execution gets
/// no more records, so once its segments are clustered its cold read stays one sequential
/// read per segment. Nothing is dropped. As with [`cluster_sealed_segments`], records in
/// the active segment wait until it is sealed (`seglog::Log::roll` seals it now).
pub fn cluster_finished(view: &IndexView, is_finished: impl Fn(&ExecutionSummary) -> bool) -> Plan {
    let candidates: std::collections::BTreeSet<u64> = view
        .segments
        .iter()
        .filter(|s| s.sealed && !s.clustered)
        .map(|s| s.number)
        .collect();
    Plan {
        rewrite_segments: view
            .executions
            .iter()
            .filter(|e| is_finished(e))
            .flat_map(|e| e.segments.iter().copied())
            .filter(|n| candidates.contains(n))
            .collect(),
        cluster_by_execution: true,
        ..Plan::default()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
