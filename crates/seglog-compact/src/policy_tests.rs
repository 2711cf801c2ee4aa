use super::*;
use crate::{Incarnation, LastEvent, SegmentSummary};

const DAY: i64 = 86_400 * 1_000_000_000;

fn exec(id: &str, tenant: &str, last_day: i64, last: &str) -> ExecutionSummary {
    ExecutionSummary {
        id: id.into(),
        tenant: tenant.into(),
        events: 3,
        durable_events: 3,
        created_lsn: 1,
        last_timestamp_unix_nanos: last_day * DAY,
        segments: vec![1],
        bytes: 300,
        last_event: Some(LastEvent {
            encoding: 0,
            payload: bytes::Bytes::copy_from_slice(last.as_bytes()),
        }),
    }
}

fn seg(number: u64, bytes: u64, sealed: bool) -> SegmentSummary {
    SegmentSummary {
        number,
        first_lsn: number * 100,
        bytes,
        sealed,
        clustered: false,
    }
}

fn view() -> IndexView {
    IndexView {
        now_unix_nanos: 100 * DAY,
        executions: vec![
            exec("a1", "acme", 10, "completed"),
            exec("a2", "acme", 95, "running"),
            exec("b1", "bolt", 50, "completed"),
            exec("b2", "bolt", 99, "completed"),
        ],
        segments: vec![],
    }
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.drop_executions.iter().map(String::as_str).collect()
}

#[test]
fn drop_tenant_takes_every_execution_of_that_tenant_only() {
    assert_eq!(ids(&drop_tenant(&view(), "acme")), vec!["a1", "a2"]);
    assert!(drop_tenant(&view(), "nobody").is_empty());
}

#[test]
fn drop_executions_ignores_unknown_ids() {
    assert_eq!(ids(&drop_executions(&view(), ["b1", "zz"])), vec!["b1"]);
}

#[test]
fn older_than_compares_the_last_event_with_now_minus_age() {
    let d = |days: u64| Duration::from_secs(days * 86_400);
    assert_eq!(ids(&drop_older_than(&view(), d(30))), vec!["a1", "b1"]);
    assert_eq!(ids(&drop_older_than(&view(), d(60))), vec!["a1"]);
    // Exactly at the limit is not older.
    assert_eq!(ids(&drop_older_than(&view(), d(90))), Vec::<&str>::new());
    assert!(drop_older_than(&view(), Duration::MAX).is_empty());
}

#[test]
fn finished_before_needs_both_the_predicate_and_the_age() {
    let finished = |e: &ExecutionSummary| {
        e.last_event
            .as_ref()
            .is_some_and(|l| &l.payload[..] == b"completed")
    };
    let d = Duration::from_secs(3 * 86_400);
    assert_eq!(
        ids(&drop_finished_before(&view(), d, finished)),
        vec!["a1", "b1"]
    );
}

#[test]
fn merge_takes_runs_of_two_or_more_small_sealed_segments_up_to_the_target() {
    let v = IndexView {
        segments: vec![
            seg(1, 100, true),
            seg(2, 100, true),
            seg(3, 5_000, true), // big: breaks the run
            seg(4, 100, true),   // alone: nothing to merge with
            seg(5, 5_000, true),
            seg(6, 300, true),
            seg(7, 300, true),
            seg(8, 300, true), // would pass the target of 700: a new run
            seg(9, 300, true),
            seg(10, 10, false), // the active segment never
        ],
        ..view()
    };
    let plan = merge_small_segments(&v, 1_000, 700);
    assert_eq!(
        plan.rewrite_segments.into_iter().collect::<Vec<_>>(),
        vec![1, 2, 6, 7, 8, 9]
    );
}

#[test]
fn plans_combine() {
    let p = drop_tenant(&view(), "acme").and(drop_executions(&view(), ["b2"]));
    assert_eq!(ids(&p), vec!["a1", "a2", "b2"]);
}

#[test]
fn rewrite_all_sealed_takes_every_sealed_segment_and_never_the_active_one() {
    let v = IndexView {
        segments: vec![seg(1, 100, true), seg(2, 9_000, true), seg(3, 10, false)],
        ..view()
    };
    assert_eq!(
        rewrite_all_sealed(&v)
            .rewrite_segments
            .into_iter()
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[test]
fn keep_log_under_drops_the_least_recently_active_until_the_estimate_fits() {
    // 4 executions of 3 events in 1,200 bytes: 100 bytes per event, 300 per execution.
    let mut v = view();
    v.segments = vec![seg(1, 1_000, true), seg(2, 200, false)];
    assert!(keep_log_under(&v, 1_200).is_empty());
    assert!(keep_log_under(&v, 5_000).is_empty());
    // 100 over: the oldest (a1, day 10) covers it.
    assert_eq!(ids(&keep_log_under(&v, 1_100)), vec!["a1"]);
    // 301 over: a1 and then b1 (day 50), never the recent ones.
    assert_eq!(ids(&keep_log_under(&v, 899)), vec!["a1", "b1"]);
    // Under everything: all of them.
    assert_eq!(keep_log_under(&v, 0).drop_executions.len(), 4);
    // No events at all: nothing to drop, whatever the size.
    let empty = IndexView {
        segments: v.segments.clone(),
        ..IndexView::default()
    };
    assert!(keep_log_under(&empty, 0).is_empty());
}

#[test]
fn keep_log_under_counts_and_drops_only_what_the_listed_segments_hold() {
    // Segment 1 is not listed (offloaded): a1 (the oldest) is only there, b1 partly.
    let mut v = view();
    v.segments = vec![seg(2, 400, true), seg(3, 300, false)];
    let place = [vec![1], vec![2], vec![1, 2], vec![3]];
    for (e, segments) in v.executions.iter_mut().zip(place) {
        e.segments = segments;
    }
    // 100 over: not a1 nor b1 (they free no local byte), but a2, the oldest held locally.
    assert_eq!(ids(&keep_log_under(&v, 600)), vec!["a2"]);
    assert_eq!(ids(&keep_log_under(&v, 0)), vec!["a2", "b2"]);
    // Nothing held locally: nothing to drop.
    for e in &mut v.executions {
        e.segments = vec![1];
    }
    assert!(keep_log_under(&v, 0).is_empty());
}

/// Reviews 105 and 106: executions of large events and of small ones, in the same
/// segments. An estimate at a mean size (per event, or per record of a segment) weighed
/// the large ones at a fraction of their bytes and dropped newer executions to cover the
/// rest; their exact bytes do not.
#[test]
fn keep_log_under_weighs_executions_by_their_bytes() {
    let mut v = view();
    v.segments = vec![seg(1, 300_900, false)];
    v.executions[0].bytes = 300_000; // a1, the oldest: 3 events of 100,000 bytes
                                     // 150,000 over: a1 alone covers it.
    assert_eq!(ids(&keep_log_under(&v, 150_900)), vec!["a1"]);
    // 300,100 over: a1 and one small execution (b1, day 50).
    assert_eq!(ids(&keep_log_under(&v, 800)), vec!["a1", "b1"]);
    // Executions without bytes (a view built by hand without them) free nothing: kept.
    for e in &mut v.executions {
        e.bytes = 0;
    }
    assert!(keep_log_under(&v, 0).is_empty());
}

#[test]
fn clustering_takes_sealed_unclustered_segments_and_asks_for_clustering() {
    let mut done = seg(2, 9_000, true);
    done.clustered = true;
    let v = IndexView {
        segments: vec![
            seg(1, 100, true),
            done,
            seg(3, 500, true),
            seg(4, 10, false),
        ],
        ..view()
    };
    let plan = cluster_sealed_segments(&v);
    assert!(plan.cluster_by_execution);
    assert!(plan.drop_executions.is_empty());
    assert_eq!(
        plan.rewrite_segments.into_iter().collect::<Vec<_>>(),
        vec![1, 3]
    );
}

#[test]
fn clustering_finished_executions_takes_only_their_sealed_unclustered_segments() {
    let mut done = seg(2, 9_000, true);
    done.clustered = true;
    let mut v = IndexView {
        segments: vec![
            seg(1, 100, true),
            done,
            seg(3, 500, true),
            seg(4, 10, false),
        ],
        ..view()
    };
    v.executions[0].segments = vec![1, 2, 4]; // a1: completed
    v.executions[1].segments = vec![3]; // a2: running
    v.executions[2].segments = vec![2]; // b1: completed, already clustered
    v.executions[3].segments = vec![4]; // b2: completed, active segment only
    let finished = |e: &ExecutionSummary| {
        e.last_event
            .as_ref()
            .is_some_and(|l| &l.payload[..] == b"completed")
    };
    let plan = cluster_finished(&v, finished);
    assert!(plan.cluster_by_execution);
    assert_eq!(
        plan.rewrite_segments.into_iter().collect::<Vec<_>>(),
        vec![1]
    );
    assert!(
        drop_tenant(&v, "acme")
            .and(cluster_finished(&v, |_| false))
            .cluster_by_execution
    );
}

/// The incarnations of `tenant` created at `lsns`.
fn seen(tenant: &str, lsns: &[u64]) -> std::collections::BTreeSet<Incarnation> {
    lsns.iter()
        .map(|&created_lsn| Incarnation {
            created_lsn,
            tenant: tenant.into(),
        })
        .collect()
}

/// `a1` of acme as a view saw it, created at `created_lsn`.
fn acme_plan(created_lsn: u64) -> Plan {
    let mut v = view();
    v.executions[0].created_lsn = created_lsn;
    v.executions.truncate(1);
    drop_tenant(&v, "acme")
}

#[test]
fn plans_name_the_incarnations_their_view_saw_and_and_keeps_every_one() {
    let old = acme_plan(1);
    assert_eq!(old.drop_incarnations["a1"], seen("acme", &[1]));
    // Plans from views of different times: both incarnations are asked for, either order.
    let both = acme_plan(7).and(old.clone());
    assert_eq!(both.drop_incarnations["a1"], seen("acme", &[1, 7]));
    assert_eq!(old.clone().and(acme_plan(7)), both);
    // A plan written by hand drops whatever incarnation, combined or not.
    let mut by_hand = Plan::default();
    by_hand.drop_executions.insert("a1".into());
    for combined in [by_hand.clone().and(old.clone()), old.clone().and(by_hand)] {
        assert!(combined.drop_executions.contains("a1"));
        assert!(
            !combined.drop_incarnations.contains_key("a1"),
            "{combined:?}"
        );
    }
    // A plan that does not name the id leaves the other's incarnations as they are.
    let other = drop_tenant(&view(), "bolt");
    let combined = old.clone().and(other);
    assert_eq!(combined.drop_incarnations["a1"], seen("acme", &[1]));
    assert_eq!(combined.drop_incarnations["b1"], seen("bolt", &[1]));
}

/// `Plan::drops`: an id named by hand drops any incarnation; one named from a view only the
/// incarnations (LSN and tenant) the view saw.
#[test]
fn a_plan_drops_only_the_incarnations_it_saw() {
    let plan = acme_plan(7);
    assert!(plan.drops("a1", 7, "acme"));
    assert!(!plan.drops("a1", 8, "acme"), "created again since");
    assert!(
        !plan.drops("a1", 7, "bolt"),
        "another tenant at a reused LSN"
    );
    assert!(!plan.drops("b1", 7, "acme"), "not named");
    let mut by_hand = Plan::default();
    by_hand.drop_executions.insert("a1".into());
    assert!(by_hand.drops("a1", 99, "anyone"));
}
