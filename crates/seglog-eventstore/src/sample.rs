//! A realistic Enact agent run, as events: for examples, the CLI's demo and benchmarks.
//!
//! Deterministic: the same `run` number always gives the same events.

use enact_core::kernel::persistence::ExecutionEventData;
use enact_core::kernel::{ParentLink, StepId, StepSourceType, StepType};
use serde_json::json;

/// The events of one agent run: started, a plan step, several tool-using steps with
/// artifacts, a goal check, and completion (or, for every seventh run, failure).
pub fn agent_run(run: u64) -> Vec<ExecutionEventData> {
    let steps = 3 + run % 4;
    let mut events = vec![ExecutionEventData::ExecutionStarted {
        parent: Some(ParentLink::from_user_message(format!("msg_{run:08}"))),
        metadata: Some(json!({
            "agent": "research-assistant",
            "model": "enact-large",
            "request": format!("Summarise the findings of report #{run} and draft a reply"),
            "budget": {"max_steps": 12, "max_tokens": 20_000},
        })),
    }];
    let plan = StepId::from_string(format!("step_{run:08}_plan"));
    events.push(ExecutionEventData::StepStarted {
        step_id: plan.clone(),
        parent_step_id: None,
        step_type: StepType::LlmNode,
        name: "plan".into(),
    });
    events.push(ExecutionEventData::StepCompleted {
        step_id: plan.clone(),
        output: Some(format!("{steps} steps: search, read, draft")),
        duration_ms: 800 + run % 500,
    });
    for s in 0..steps {
        let step = StepId::from_string(format!("step_{run:08}_{s}"));
        events.push(ExecutionEventData::StepDiscovered {
            step_id: step.clone(),
            discovered_by: Some(plan.clone()),
            source_type: StepSourceType::LlmOutput,
            reason: format!("step {s} of the plan"),
            depth: 1,
        });
        events.push(ExecutionEventData::StepStarted {
            step_id: step.clone(),
            parent_step_id: Some(plan.clone()),
            step_type: StepType::ToolNode,
            name: format!("search-{s}"),
        });
        let call = format!("call_{run:08}_{s}");
        events.push(ExecutionEventData::ToolCallStarted {
            step_id: Some(step.clone()),
            tool_call_id: call.clone(),
            tool_name: "web_search".into(),
            input: json!({"query": format!("report {run} section {s}"), "top_k": 5}),
        });
        events.push(ExecutionEventData::ToolCallCompleted {
            step_id: Some(step.clone()),
            tool_call_id: call,
            output: json!({"results": (0..3).map(|r| json!({"title": format!("Result {r}"), "score": 0.9 - r as f64 * 0.1})).collect::<Vec<_>>()}),
        });
        events.push(ExecutionEventData::ArtifactStored {
            artifact_id: format!("artifact_{run:08}_{s}"),
            step_id: step.clone(),
            content_hash: format!("sha256:{:064x}", run * 1000 + s),
            size_bytes: 1024 * (s + 1),
        });
        events.push(ExecutionEventData::StepCompleted {
            step_id: step,
            output: Some(format!("found {} sources", 3 + s)),
            duration_ms: 150 + (run * 7 + s * 13) % 400,
        });
    }
    events.push(ExecutionEventData::GoalEvaluated {
        step_id: None,
        goal_id: format!("goal_{run:08}"),
        status: "met".into(),
        score: Some(0.87),
        reason: Some("all sections covered".into()),
    });
    if run % 7 == 6 {
        events.push(ExecutionEventData::ExecutionCancelled {
            reason: "user cancelled".into(),
        });
    } else {
        events.push(ExecutionEventData::ExecutionCompleted {
            output: Some(format!("Draft reply for report #{run}")),
            duration_ms: 2_000 + run % 3_000,
        });
    }
    events
}

/// A short label for an event, for listings.
pub fn label(event: &ExecutionEventData) -> String {
    match event {
        ExecutionEventData::ExecutionStarted { .. } => "execution_started".into(),
        ExecutionEventData::StepStarted { name, .. } => format!("step_started {name}"),
        ExecutionEventData::StepCompleted { duration_ms, .. } => {
            format!("step_completed {duration_ms} ms")
        }
        ExecutionEventData::StepFailed { error, .. } => format!("step_failed {error}"),
        ExecutionEventData::ExecutionPaused { reason } => format!("execution_paused {reason}"),
        ExecutionEventData::ExecutionResumed => "execution_resumed".into(),
        ExecutionEventData::ExecutionCompleted { duration_ms, .. } => {
            format!("execution_completed {duration_ms} ms")
        }
        ExecutionEventData::ExecutionFailed { error } => format!("execution_failed {error}"),
        ExecutionEventData::ExecutionCancelled { reason } => {
            format!("execution_cancelled {reason}")
        }
        ExecutionEventData::ArtifactStored {
            artifact_id,
            size_bytes,
            ..
        } => format!("artifact_stored {artifact_id} {size_bytes} B"),
        ExecutionEventData::StepDiscovered { reason, .. } => format!("step_discovered {reason}"),
        ExecutionEventData::ToolCallStarted { tool_name, .. } => {
            format!("tool_call_started {tool_name}")
        }
        ExecutionEventData::ToolCallCompleted { tool_call_id, .. } => {
            format!("tool_call_completed {tool_call_id}")
        }
        ExecutionEventData::CheckpointSaved { checkpoint_id, .. } => {
            format!("checkpoint_saved {checkpoint_id}")
        }
        ExecutionEventData::GoalEvaluated { status, .. } => format!("goal_evaluated {status}"),
        ExecutionEventData::Custom { event_type, .. } => format!("custom {event_type}"),
    }
}
