//! The caller-given JSON an event carries (`serde_json::Value`): checked for depth before it
//! is encoded, and disposed of without recursion when it is refused.
//!
//! A `Value` nests as deep as the caller built it, and both serializing it (rmp-serde) and
//! dropping it (serde_json's `Value` has no drop of its own) recurse once per level: a value
//! a few thousand levels deep overflows a thread's stack, which aborts the process. The codec
//! looks at the depth first, with a walk that stops below the limit; the stores, which own
//! the events handed to `append`, take a refused event's JSON apart iteratively.

use enact_core::kernel::persistence::ExecutionEventData;
use enact_core::kernel::ExecutionError;
use serde_json::Value;

/// Whether `value` nests arrays and objects more than `max` levels deep (a scalar is 0
/// levels, `[1]` is 1). Recurses at most `max + 1` levels, whatever the value's depth.
pub(crate) fn deeper_than(value: &Value, max: usize) -> bool {
    let Some(below) = max.checked_sub(1) else {
        return matches!(value, Value::Array(_) | Value::Object(_));
    };
    match value {
        Value::Array(items) => items.iter().any(|item| deeper_than(item, below)),
        Value::Object(map) => map.values().any(|item| deeper_than(item, below)),
        _ => false,
    }
}

/// Drops `value` without recursing, however deep it nests.
pub(crate) fn drop_flat(value: Value) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.into_iter().map(|(_, item)| item)),
            _ => {}
        }
    }
}

/// The JSON field of a kernel event, as `&Value` or `&mut Value` after the event's kind
/// (each kind carries at most one).
macro_rules! json_field {
    ($event:expr) => {
        match $event {
            ExecutionEventData::ExecutionStarted {
                metadata: Some(json),
                ..
            }
            | ExecutionEventData::StepFailed {
                error:
                    ExecutionError {
                        details: Some(json),
                        ..
                    },
                ..
            }
            | ExecutionEventData::ExecutionFailed {
                error:
                    ExecutionError {
                        details: Some(json),
                        ..
                    },
            }
            | ExecutionEventData::ToolCallStarted { input: json, .. }
            | ExecutionEventData::ToolCallCompleted { output: json, .. }
            | ExecutionEventData::Custom { data: json, .. } => Some(json),
            _ => None,
        }
    };
}

/// The caller-given JSON of a kernel event, if its kind carries any.
pub(crate) fn json_of(event: &ExecutionEventData) -> Option<&Value> {
    json_field!(event)
}

/// Drops a kernel event whose JSON may nest too deep to drop recursively.
pub(crate) fn dispose(mut event: ExecutionEventData) {
    if let Some(json) = json_field!(&mut event) {
        drop_flat(std::mem::take(json));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_arrays_and_objects() {
        for (value, depth) in [
            (json!(1), 0),
            (json!([]), 1),
            (json!({}), 1),
            (json!([1, [2, {"a": [3]}]]), 4),
            (json!({"a": 1, "b": {"c": [[]]}}), 4),
        ] {
            assert!(!deeper_than(&value, depth), "{value} within {depth}");
            assert!(
                deeper_than(&value, depth.saturating_sub(1)) == (depth > 0),
                "{value}"
            );
        }
    }
}
