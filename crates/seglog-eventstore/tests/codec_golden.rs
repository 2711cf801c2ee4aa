//! Golden bytes of the EventStore codec: fixed events encode to exactly the bytes committed in
//! `tests/fixtures/eventstore-codec/msgpack-named.hex`, and those bytes decode back to the
//! same events.
//!
//! The round-trip tests cannot see a change in how enact-core's types serialize (a renamed
//! field, a different enum tag, a JSON map in another key order): both sides of a round trip
//! change together, while the logs on disk keep the old bytes. This test sees it. If it fails
//! after an enact-core upgrade, old logs must still decode (the decode half of this test
//! says whether they do) before the fixture may be rewritten.
//!
//! A missing fixture is written with `SEGLOG_WRITE_FIXTURES=1 cargo test -p
//! seglog-eventstore --test codec_golden`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enact_core::kernel::persistence::ExecutionEventData;
use enact_core::kernel::{
    ExecutionError, ExecutionErrorCategory, ParentLink, ParentType, StepId, StepSourceType,
    StepType,
};
use seglog_eventstore::codec::{decode, encode, ENCODING_MSGPACK_NAMED};
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/eventstore-codec/msgpack-named.hex")
}

/// One event of each shape the codec meets: unit, struct and nested-JSON variants, options
/// set and unset, enums inside, integers at their limits, a float, non-ASCII text, and a
/// JSON map whose keys are not in sorted order.
fn golden_events() -> Vec<(&'static str, ExecutionEventData)> {
    let step = StepId::from_string("step_1");
    let mut error = ExecutionError::new(ExecutionErrorCategory::ToolError, "tool exploded ✗")
        .with_code("E42")
        .with_details(json!({"stack": ["a", "b"], "retry": null, "ratio": 0.25}));
    error.occurred_at = 1_767_225_600_000; // fixed: `new` takes the clock
    vec![
        (
            "execution_started",
            ExecutionEventData::ExecutionStarted {
                parent: Some(ParentLink::new("msg_1", ParentType::UserMessage)),
                metadata: Some(json!({
                    "zeta": 1, "alpha": {"y": [1, -2, 3.5], "b": null}, "unicode": "héllo 日本 🚀",
                })),
            },
        ),
        (
            "execution_started_bare",
            ExecutionEventData::ExecutionStarted {
                parent: None,
                metadata: None,
            },
        ),
        (
            "step_started",
            ExecutionEventData::StepStarted {
                step_id: step.clone(),
                parent_step_id: Some(StepId::from_string("step_0")),
                step_type: StepType::LlmNode,
                name: "plan".into(),
            },
        ),
        (
            "step_failed",
            ExecutionEventData::StepFailed {
                step_id: step.clone(),
                error,
            },
        ),
        ("execution_resumed", ExecutionEventData::ExecutionResumed),
        (
            "execution_completed",
            ExecutionEventData::ExecutionCompleted {
                output: None,
                duration_ms: u64::MAX,
            },
        ),
        (
            "step_discovered",
            ExecutionEventData::StepDiscovered {
                step_id: StepId::from_string("step_2"),
                discovered_by: Some(step.clone()),
                source_type: StepSourceType::LlmOutput,
                reason: "found more work".into(),
                depth: 3,
            },
        ),
        (
            "tool_call_completed",
            ExecutionEventData::ToolCallCompleted {
                step_id: None,
                tool_call_id: "call_1".into(),
                output: json!(["r1", {"score": -9_007_199_254_740_993i64}]),
            },
        ),
        (
            "goal_evaluated",
            ExecutionEventData::GoalEvaluated {
                step_id: Some(step),
                goal_id: "goal_1".into(),
                status: "met".into(),
                score: Some(0.87),
                reason: None,
            },
        ),
        (
            "custom",
            ExecutionEventData::Custom {
                event_type: "note".into(),
                data: json!({}),
            },
        ),
    ]
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn from_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The fixture's lines: `<name> <hex>`, `#` comments skipped.
fn read_fixture() -> Vec<(String, Vec<u8>)> {
    let path = fixture();
    if std::env::var_os("SEGLOG_WRITE_FIXTURES").is_some() && !path.exists() {
        let mut text = String::from(
            "# seglog-eventstore codec (MessagePack with field names, encoding tag 1):\n\
             # one event per line, `<name> <hex bytes>`. See crates/seglog-eventstore/tests/codec_golden.rs.\n",
        );
        for (name, event) in golden_events() {
            let _ = writeln!(text, "{name} {}", to_hex(&encode(&event).unwrap()));
        }
        // Whole or not at all: the other test may be reading it.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_extension(format!("{:?}.tmp", std::thread::current().id()));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, hex) = l.split_once(' ').unwrap();
            (name.to_owned(), from_hex(hex.trim()))
        })
        .collect()
}

#[test]
fn events_encode_to_the_committed_bytes() {
    let golden = read_fixture();
    let events = golden_events();
    let names: Vec<&str> = golden.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want, "the fixture lists other events");
    for ((name, event), (_, bytes)) in events.iter().zip(&golden) {
        let encoded = encode(event).unwrap();
        assert!(
            encoded == *bytes,
            "{name}: the encoding changed\n committed {}\n now       {}",
            to_hex(bytes),
            to_hex(&encoded)
        );
    }
}

#[test]
fn committed_bytes_decode_to_the_events() {
    let golden = read_fixture();
    for ((name, event), (_, bytes)) in golden_events().iter().zip(&golden) {
        let decoded = decode(ENCODING_MSGPACK_NAMED, bytes, "exec", 1)
            .unwrap_or_else(|e| panic!("{name}: committed bytes no longer decode: {e}"));
        assert_eq!(
            serde_json::to_value(&decoded).unwrap(),
            serde_json::to_value(event).unwrap(),
            "{name}"
        );
    }
}
