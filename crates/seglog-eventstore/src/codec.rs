//! How an `ExecutionEventData` becomes record payload bytes, and back.
//!
//! MessagePack with field names (`rmp_serde::to_vec_named`): self-describing, so fields can be
//! added and reordered by later versions of enact-core without breaking old logs, and the
//! internally tagged enum (`"type": "step_started"`) round-trips. Each record stores the
//! encoding tag in its header, so a future encoding can be read beside this one.

use enact_core::kernel::persistence::ExecutionEventData;

/// Encoding tag of MessagePack with field names (the record header's `encoding` byte).
pub const ENCODING_MSGPACK_NAMED: u8 = 1;

/// Encodes one event.
///
/// # Errors
/// If serialization fails (it does not for well-formed enact-core values).
pub fn encode(event: &ExecutionEventData) -> anyhow::Result<Vec<u8>> {
    rmp_serde::to_vec_named(event).map_err(|e| anyhow::anyhow!("cannot encode event: {e}"))
}

/// Decodes one stored event; the error names the execution and sequence.
///
/// # Errors
/// An encoding this build does not know (say, written by a newer version), or bytes that
/// do not decode.
pub fn decode(
    encoding: u8,
    bytes: &[u8],
    execution: &str,
    seq: u64,
) -> anyhow::Result<ExecutionEventData> {
    if encoding != ENCODING_MSGPACK_NAMED {
        anyhow::bail!(
            "event {seq} of execution {execution:?} uses payload encoding {encoding}, which this version of seglog-eventstore cannot read"
        );
    }
    rmp_serde::from_slice(bytes)
        .map_err(|e| anyhow::anyhow!("cannot decode event {seq} of execution {execution:?}: {e}"))
}
