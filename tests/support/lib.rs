//! Shared pieces of the workspace-level tests: the protocol between the crash-test child
//! and its parent, and the entry points of the fuzz targets.

pub mod fuzz_entry;

/// Options of the crash tests: small segments, so kills land around rollovers and
/// checkpoint writes too.
pub fn crash_options() -> seglog::Options {
    seglog::Options {
        segment_size_bytes: 256 << 10,
        max_record_size_bytes: Some(64 << 10),
        ..seglog::Options::default()
    }
}

/// Payload of event `seq` of the per-thread execution `exec`: the parent can recompute it.
pub fn own_payload(exec: &str, seq: u64) -> String {
    format!("{exec}#{seq}")
}

/// One line the child prints after an acknowledged append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The execution.
    pub execution: String,
    /// First sequence of the append.
    pub first_seq: u64,
    /// Events in it.
    pub count: u64,
    /// Payload of its first event.
    pub payload: String,
}

impl Ack {
    /// `ack <execution> <first_seq> <count> <payload>`.
    pub fn to_line(&self) -> String {
        format!(
            "ack {} {} {} {}",
            self.execution, self.first_seq, self.count, self.payload
        )
    }

    /// Parses a line printed by [`Ack::to_line`]; `None` for anything else (a line the kill
    /// cut short, for example).
    pub fn parse(line: &str) -> Option<Ack> {
        let mut it = line.split(' ');
        if it.next()? != "ack" {
            return None;
        }
        let execution = it.next()?.to_string();
        let first_seq = it.next()?.parse().ok()?;
        let count = it.next()?.parse().ok()?;
        let payload = it.next()?.to_string();
        it.next().is_none().then_some(Ack {
            execution,
            first_seq,
            count,
            payload,
        })
    }
}
