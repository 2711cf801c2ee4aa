//! How an `ExecutionEventData` (kernel persistence) or an `ExecutionEvent` (the streaming
//! store) becomes record payload bytes, and back.
//!
//! MessagePack with field names (`rmp_serde::to_vec_named`): self-describing, so fields can be
//! added and reordered by later versions of enact-core without breaking old logs, and the
//! internally tagged enum (`"type": "step_started"`) round-trips. Each record stores the
//! encoding tag in its header, so a future encoding can be read beside this one.

use enact_core::kernel::persistence::ExecutionEventData;
use enact_core::kernel::ExecutionEvent;

use crate::deep_json;
use crate::nesting::NestingError;

/// Encoding tag of MessagePack with field names (the record header's `encoding` byte).
pub const ENCODING_MSGPACK_NAMED: u8 = 1;

/// Encoding tag of a whole `enact_core::kernel::ExecutionEvent` (the streaming store's
/// events), MessagePack with field names. A tag of its own, so that tools and readers tell
/// the two kinds of event apart.
pub const ENCODING_EXECUTION_EVENT_MSGPACK: u8 = 2;

/// Encodes one event.
///
/// # Errors
/// If serialization fails (it does not for well-formed enact-core values), or the event
/// nests deeper than [`MAX_NESTING`].
pub fn encode(event: &ExecutionEventData) -> anyhow::Result<Vec<u8>> {
    check_json(deep_json::json_of(event))?;
    encode_named(event)
}

/// Room the encoder starts with: an event of a few hundred bytes then takes one allocation,
/// not the half dozen a growing empty buffer takes (each append encodes one).
const ENCODE_CAPACITY: usize = 512;

/// How deeply an event may nest arrays and maps (objects), its envelope included. Payloads
/// are caller-given JSON; serde_json itself parses JSON text at most 128 levels deep, so any
/// payload parsed from text fits, with room for the envelope.
pub const MAX_NESTING: usize = 160;

/// The nesting the decoder accepts: above [`MAX_NESTING`] (so that every event `encode` let
/// through reads back, however the decoder counts its levels) and far below what overflows a
/// thread's stack (the decoder recurses per level: ~2 KiB each in a debug build, against the
/// 2 MiB of a default thread). A crafted record nested deeper is an error, not an abort.
const MAX_DECODE_DEPTH: usize = 256;

/// MessagePack with field names, as `rmp_serde::to_vec_named` writes it; refused when it
/// nests deeper than [`MAX_NESTING`] (it would not read back).
fn encode_named<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(ENCODE_CAPACITY);
    rmp_serde::encode::write_named(&mut out, value)
        .map_err(|e| anyhow::anyhow!("cannot encode event: {e}"))?;
    crate::nesting::check(&out, MAX_NESTING)
        .map_err(|e| anyhow::anyhow!("event refused, nothing was written: {e}"))?;
    Ok(out)
}

/// Refuses an event's caller-given JSON before it is serialized when it nests deeper than
/// [`MAX_NESTING`] (the encoded event would be refused anyway): serializing recurses once per
/// level, and a deep enough value would overflow the stack.
fn check_json(json: Option<&serde_json::Value>) -> anyhow::Result<()> {
    if json.is_some_and(|json| deep_json::deeper_than(json, MAX_NESTING)) {
        anyhow::bail!(
            "event refused, nothing was written: {}",
            NestingError::TooDeep { max: MAX_NESTING }
        );
    }
    Ok(())
}

/// Decodes an event's MessagePack bytes (either encoding) as plain JSON, for tools that show
/// records, with the stores' depth limit: a crafted record nested deeper is an error.
///
/// # Errors
/// Bytes that do not decode, or nest deeper than the limit.
pub fn decode_json(bytes: &[u8]) -> Result<serde_json::Value, rmp_serde::decode::Error> {
    decode_named(bytes)
}

/// Decodes MessagePack with the depth limit [`MAX_DECODE_DEPTH`].
fn decode_named<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut decoder = rmp_serde::Deserializer::from_read_ref(bytes);
    decoder.set_max_depth(MAX_DECODE_DEPTH);
    T::deserialize(&mut decoder)
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
    decode_named(bytes)
        .map_err(|e| anyhow::anyhow!("cannot decode event {seq} of execution {execution:?}: {e}"))
}

/// Encodes one streaming event (context, type, timestamp, payload: all of it).
///
/// # Errors
/// If serialization fails (it does not for well-formed enact-core values), or the event
/// nests deeper than [`MAX_NESTING`].
pub fn encode_execution_event(event: &ExecutionEvent) -> anyhow::Result<Vec<u8>> {
    check_json(event.payload.as_ref())?;
    encode_named(event)
}

/// Decodes one stored streaming event; the error names its global position.
///
/// # Errors
/// A record of another encoding (not written by the streaming store), or bytes that do not
/// decode.
pub fn decode_execution_event(
    encoding: u8,
    bytes: &[u8],
    position: u64,
) -> anyhow::Result<ExecutionEvent> {
    if encoding != ENCODING_EXECUTION_EVENT_MSGPACK {
        anyhow::bail!(
            "the record at global position {position} uses payload encoding {encoding}, not a streaming event's ({ENCODING_EXECUTION_EVENT_MSGPACK}): give the streaming store a log directory of its own"
        );
    }
    decode_named(bytes)
        .map_err(|e| anyhow::anyhow!("cannot decode the event at global position {position}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Tools decode with the stores' limit: 100,000 nested arrays are an error on a test
    /// thread's stack, and what an event may hold decodes.
    #[test]
    fn json_for_tools_decodes_with_the_depth_limit() {
        let mut deep = vec![0x91; 100_000];
        deep.push(0xc0);
        assert!(decode_json(&deep).is_err());
        let mut fits = vec![0x91; MAX_NESTING];
        fits.push(0xc0);
        assert!(decode_json(&fits).is_ok());
    }

    /// The buffer given room up front writes the bytes `to_vec_named` writes, for events
    /// smaller and larger than that room.
    #[test]
    fn encoding_into_a_sized_buffer_writes_what_to_vec_named_writes() {
        for len in [0, 10, ENCODE_CAPACITY, 10 * ENCODE_CAPACITY] {
            let event = ExecutionEventData::Custom {
                event_type: "bench".into(),
                data: serde_json::Value::String("x".repeat(len)),
            };
            let bytes = encode(&event).unwrap();
            assert_eq!(bytes, rmp_serde::to_vec_named(&event).unwrap(), "{len}");
            let back = decode(ENCODING_MSGPACK_NAMED, &bytes, "e", 1).unwrap();
            assert_eq!(
                rmp_serde::to_vec_named(&back).unwrap(),
                bytes,
                "{len}: round trip"
            );
        }
    }
}
