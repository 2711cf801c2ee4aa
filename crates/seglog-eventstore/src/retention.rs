//! Retention and locality for Enact logs: which executions are finished, for
//! `seglog::compaction::policy::drop_finished_before` and `policy::cluster_finished`.

use crate::codec::{decode, ENCODING_MSGPACK_NAMED};
use enact_core::kernel::persistence::ExecutionEventData;
use seglog::compaction::{policy, ExecutionSummary, IndexView, Plan};
use std::time::Duration;

/// True when the execution's last event ends it: `ExecutionCompleted`, `ExecutionFailed`
/// or `ExecutionCancelled`. False when the view was built without last events, or the last
/// event does not decode (an execution we cannot read is never dropped as finished).
pub fn is_finished(execution: &ExecutionSummary) -> bool {
    let Some(last) = &execution.last_event else {
        return false;
    };
    if last.encoding != ENCODING_MSGPACK_NAMED {
        return false;
    }
    matches!(
        decode(
            last.encoding,
            &last.payload,
            &execution.id,
            execution.events
        ),
        Ok(ExecutionEventData::ExecutionCompleted { .. }
            | ExecutionEventData::ExecutionFailed { .. }
            | ExecutionEventData::ExecutionCancelled { .. })
    )
}

/// The plan that drops executions which finished (see [`is_finished`]) and whose last
/// event is older than `age`. Build `view` with last events
/// (`Log::compaction_view(true)`).
pub fn finished_before(view: &IndexView, age: Duration) -> Plan {
    policy::drop_finished_before(view, age, is_finished)
}

/// The plan that clusters the sealed segments holding records of finished executions (see
/// [`is_finished`]), so that a cold read of a finished execution is one sequential read per
/// segment (docs/format.md §3.5). Drops nothing. Build `view` with last events
/// (`Log::compaction_view(true)`).
pub fn cluster_finished(view: &IndexView) -> Plan {
    policy::cluster_finished(view, is_finished)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::codec::encode;
    use crate::sample::agent_run;
    use seglog::compaction::LastEvent;

    fn summary(id: &str, last: Option<(u8, Vec<u8>)>, last_day: i64) -> ExecutionSummary {
        ExecutionSummary {
            id: id.into(),
            tenant: "t".into(),
            events: 5,
            durable_events: 5,
            created_lsn: 1,
            last_timestamp_unix_nanos: last_day * 86_400_000_000_000,
            segments: vec![1],
            bytes: 500,
            last_event: last.map(|(encoding, payload)| LastEvent {
                encoding,
                payload: payload.into(),
            }),
        }
    }

    fn last_of(run: u64, drop_tail: usize) -> Option<(u8, Vec<u8>)> {
        let events = agent_run(run);
        let last = &events[events.len() - 1 - drop_tail];
        Some((ENCODING_MSGPACK_NAMED, encode(last).unwrap()))
    }

    #[test]
    fn completed_failed_and_cancelled_runs_are_finished_others_are_not() {
        assert!(is_finished(&summary("done", last_of(1, 0), 0)));
        assert!(
            is_finished(&summary("failed", last_of(7, 0), 0)),
            "run 7 fails"
        );
        let cancelled = encode(&ExecutionEventData::ExecutionCancelled {
            reason: "user".into(),
        })
        .unwrap();
        assert!(is_finished(&summary(
            "cancelled",
            Some((ENCODING_MSGPACK_NAMED, cancelled)),
            0
        )));
        assert!(!is_finished(&summary("running", last_of(1, 1), 0)));
        assert!(!is_finished(&summary("unknown", None, 0)));
        assert!(!is_finished(&summary(
            "opaque",
            Some((0, b"x".to_vec())),
            0
        )));
        assert!(!is_finished(&summary(
            "garbage",
            Some((ENCODING_MSGPACK_NAMED, vec![0xc1, 0xff])),
            0
        )));
    }

    #[test]
    fn finished_before_keeps_recent_and_unfinished_runs() {
        let view = IndexView {
            now_unix_nanos: 30 * 86_400_000_000_000,
            executions: vec![
                summary("old-done", last_of(1, 0), 1),
                summary("old-running", last_of(2, 1), 1),
                summary("new-done", last_of(3, 0), 29),
            ],
            segments: vec![],
        };
        let plan = finished_before(&view, Duration::from_secs(7 * 86_400));
        assert_eq!(
            plan.drop_executions.into_iter().collect::<Vec<_>>(),
            vec!["old-done".to_string()]
        );
    }

    #[test]
    fn cluster_finished_takes_the_segments_of_finished_runs_only() {
        let mut done = summary("done", last_of(1, 0), 1);
        done.segments = vec![1, 3];
        let mut running = summary("running", last_of(2, 1), 1);
        running.segments = vec![2];
        let segment = |number, sealed| seglog::compaction::SegmentSummary {
            number,
            first_lsn: number * 10,
            bytes: 100,
            sealed,
            clustered: false,
        };
        let view = IndexView {
            now_unix_nanos: 0,
            executions: vec![done, running],
            segments: vec![segment(1, true), segment(2, true), segment(3, false)],
        };
        let plan = cluster_finished(&view);
        assert!(plan.cluster_by_execution && plan.drop_executions.is_empty());
        assert_eq!(
            plan.rewrite_segments.into_iter().collect::<Vec<_>>(),
            vec![1]
        );
    }
}
