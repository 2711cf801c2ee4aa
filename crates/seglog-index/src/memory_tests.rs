use super::*;

fn rec<'a>(
    execution: &'a str,
    tenant: &'a str,
    lsn: u64,
    first_seq: u64,
    event_count: u32,
) -> IndexedRecord<'a> {
    IndexedRecord {
        execution,
        tenant,
        lsn,
        location: Location {
            segment: 1,
            offset: lsn as u32 * 100,
        },
        first_seq,
        event_count,
        timestamp_unix_nanos: lsn as i64,
    }
}

#[test]
fn single_and_batched_records_locate_every_event() {
    let mut ix = ExecutionIndex::new();
    ix.insert(&rec("e", "t", 1, 1, 1)).unwrap();
    ix.insert(&rec("e", "t", 2, 2, 1)).unwrap();
    let slot = ix.insert(&rec("e", "t", 3, 3, 4)).unwrap();
    ix.insert(&rec("e", "t", 4, 7, 1)).unwrap();
    ix.publish(slot, 7);
    let got: Vec<(u64, u32, u32)> = ix
        .events("e", 1, 100)
        .iter()
        .map(|l| (l.seq, l.location.offset, l.index_in_record))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 100, 0),
            (2, 200, 0),
            (3, 300, 0),
            (4, 300, 1),
            (5, 300, 2),
            (6, 300, 3),
            (7, 400, 0)
        ]
    );
    assert_eq!(
        ix.events("e", 5, 2)
            .iter()
            .map(|l| l.seq)
            .collect::<Vec<_>>(),
        vec![5, 6]
    );
    assert!(ix.events("e", 8, 10).is_empty());
    assert!(ix.events("nope", 1, 10).is_empty());
}

#[test]
fn only_published_events_are_visible() {
    let mut ix = ExecutionIndex::new();
    let slot = ix.insert(&rec("e", "t", 1, 1, 1)).unwrap();
    ix.insert(&rec("e", "t", 2, 2, 1)).unwrap();
    assert!(ix.events("e", 1, 10).is_empty());
    assert!(ix.list_executions("t", 10, 0).is_empty());
    ix.publish(slot, 1);
    assert_eq!(ix.events("e", 1, 10).len(), 1);
    assert_eq!(ix.list_executions("t", 10, 0), vec!["e"]);
}

#[test]
fn gaps_and_tenant_changes_are_inconsistent() {
    let mut ix = ExecutionIndex::new();
    ix.insert(&rec("e", "t", 1, 1, 1)).unwrap();
    assert!(matches!(
        ix.insert(&rec("e", "t", 2, 3, 1)),
        Err(Error::Inconsistent { lsn: 2, .. })
    ));
    assert!(matches!(
        ix.insert(&rec("e", "other", 2, 2, 1)),
        Err(Error::Inconsistent { .. })
    ));
    assert!(matches!(
        ix.insert(&rec("f", "t", 3, 2, 1)),
        Err(Error::Inconsistent { .. })
    ));
}

#[test]
fn plan_append_enforces_tenant_and_expected_sequence() {
    let mut ix = ExecutionIndex::new();
    assert_eq!(ix.plan_append("e", "t", Some(0), 5).unwrap().first_seq, 1);
    ix.insert(&rec("e", "t", 1, 1, 2)).unwrap();
    assert!(matches!(
        ix.plan_append("e", "x", None, 5),
        Err(Error::TenantMismatch)
    ));
    assert!(matches!(
        ix.plan_append("e", "t", Some(0), 5),
        Err(Error::Conflict {
            expected: 0,
            actual: 2
        })
    ));
    let plan = ix.plan_append("e", "t", Some(2), 0).unwrap();
    assert_eq!(plan.first_seq, 3);
    assert_eq!(
        plan.timestamp_unix_nanos, 1,
        "timestamps never go backwards"
    );
}

#[test]
fn list_executions_is_newest_first_and_paginates_at_the_edges() {
    let mut ix = ExecutionIndex::new();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        let s = ix.insert(&rec(name, "t", i as u64 + 1, 1, 1)).unwrap();
        ix.publish(s, 1);
    }
    let s = ix.insert(&rec("other", "u", 9, 1, 1)).unwrap();
    ix.publish(s, 1);
    assert_eq!(ix.list_executions("t", 10, 0), vec!["d", "c", "b", "a"]);
    assert_eq!(ix.list_executions("t", 2, 1), vec!["c", "b"]);
    assert!(ix.list_executions("t", 0, 0).is_empty());
    assert!(ix.list_executions("t", 10, 4).is_empty());
    assert!(ix.list_executions("t", 10, usize::MAX).is_empty());
    assert_eq!(ix.list_executions("t", usize::MAX, 3), vec!["a"]);
    assert!(ix.list_executions("nobody", 10, 0).is_empty());
    assert_eq!(ix.tenant_of("other"), Some("u"));
}

#[test]
fn checkpoint_apply_matches_inserts_and_is_all_or_nothing() {
    use crate::checkpoint::CheckpointRecord;
    let strings: Vec<String> = ["e1", "t", "e2"].iter().map(|s| s.to_string()).collect();
    let cp = |execution, first_seq, event_count, lsn| CheckpointRecord {
        execution,
        tenant: 1,
        offset: 64 + lsn as u32,
        event_count,
        first_seq,
        lsn,
        timestamp_unix_nanos: 0,
    };
    let mut ix = ExecutionIndex::new();
    ix.insert(&rec("e1", "t", 1, 1, 1)).unwrap();
    ix.apply_checkpoint(
        2,
        &strings,
        &[cp(0, 2, 3, 2), cp(2, 1, 1, 3), cp(0, 5, 1, 4)],
    )
    .unwrap();
    ix.publish_all();
    assert_eq!(
        ix.events("e1", 1, 10)
            .iter()
            .map(|l| (l.seq, l.location.segment, l.index_in_record))
            .collect::<Vec<_>>(),
        vec![(1, 1, 0), (2, 2, 0), (3, 2, 1), (4, 2, 2), (5, 2, 0)]
    );
    assert_eq!(ix.list_executions("t", 10, 0), vec!["e2", "e1"]);
    // A gap (e2 jumps to 3): rejected, and nothing changes.
    let before = (ix.event_count(), ix.execution_count());
    let bad = ix.apply_checkpoint(3, &strings, &[cp(0, 6, 1, 5), cp(2, 3, 1, 6)]);
    assert!(matches!(bad, Err(Error::Inconsistent { lsn: 6, .. })));
    assert_eq!((ix.event_count(), ix.execution_count()), before);
    assert_eq!(ix.get("e1").unwrap().last_seq(), 5);
}

#[test]
fn removed_executions_vanish_and_their_ids_start_over() {
    let mut ix = ExecutionIndex::new();
    ix.insert(&rec("a", "t", 1, 1, 1)).unwrap();
    let b = ix.insert(&rec("b", "t", 2, 1, 3)).unwrap();
    ix.insert(&rec("c", "u", 3, 1, 1)).unwrap();
    ix.publish_all();
    let held_by_appender = ix.visibility(b).unwrap();
    assert_eq!(ix.remove_executions(["b", "nope"]), (1, 3));
    assert!(ix.get("b").is_none());
    assert_eq!(ix.event_count(), 2);
    assert_eq!(ix.execution_count(), 2);
    assert_eq!(ix.list_executions("t", 10, 0), vec!["a"]);
    assert_eq!(ix.executions().count(), 2);
    // An appender still holding the old slot publishes into nothing.
    ix.publish(b, 3);
    assert!(ix.events("b", 1, 10).is_empty());
    // The id can be used again, from sequence 1.
    let plan = ix.plan_append("b", "u", Some(0), 0).unwrap();
    assert_eq!(plan.first_seq, 1);
    let reborn = ix.insert(&rec("b", "u", 4, 1, 1)).unwrap();
    assert_eq!(ix.tenant_of("b"), Some("u"));
    // Nor does a handle taken before the erasure reach the execution created after it.
    held_by_appender.publish(3);
    ix.publish(b, 3);
    assert_eq!(ix.get("b").unwrap().visible_seq(), 0);
    assert!(ix.events("b", 1, 10).is_empty());
    ix.visibility(reborn).unwrap().publish(1);
    assert_eq!(ix.events("b", 1, 10).len(), 1);
}

#[test]
fn a_visibility_handle_publishes_without_the_index_and_never_lowers() {
    let mut ix = ExecutionIndex::new();
    let slot = ix.insert(&rec("e", "t", 1, 1, 3)).unwrap();
    let handle = ix.visibility(slot).unwrap();
    handle.publish(2);
    assert_eq!(ix.events("e", 1, 10).len(), 2);
    handle.publish(1);
    assert_eq!(ix.get("e").unwrap().visible_seq(), 2);
    assert!(ix.visibility(ExecutionSlot(7)).is_none());
}

#[test]
fn relocate_moves_records_of_replaced_segments_all_or_nothing() {
    let mut ix = ExecutionIndex::new();
    for lsn in 1..=4u64 {
        let mut r = rec("e", "t", lsn, lsn, 1);
        r.location.segment = if lsn <= 2 { 1 } else { 2 };
        ix.insert(&r).unwrap();
    }
    ix.publish_all();
    let replaced: std::collections::HashSet<u32> = [1].into_iter().collect();
    // A record without a new place: nothing changes.
    let err = ix.relocate(&replaced, |l| {
        (l.offset == 100).then_some(Location {
            segment: 9,
            offset: 64,
        })
    });
    assert!(err.is_err());
    assert_eq!(ix.events("e", 1, 1)[0].location.segment, 1);
    ix.relocate(&replaced, |l| {
        Some(Location {
            segment: 9,
            offset: l.offset - 36,
        })
    })
    .unwrap();
    let segs: Vec<(u32, u32)> = ix
        .events("e", 1, 10)
        .iter()
        .map(|l| (l.location.segment, l.location.offset))
        .collect();
    assert_eq!(segs, vec![(9, 64), (9, 164), (2, 300), (2, 400)]);
}
