//! Output helpers: escaping untrusted ids, fitting lines to 100 columns, colour only on a
//! terminal, payloads decoded for display.

use seglog_segment::format::RecordRef;
use std::io::IsTerminal;

/// Width the text output is laid out for.
pub const COLUMNS: usize = 100;

/// Bytes shown as text: valid UTF-8 stays, control characters and invalid bytes are escaped
/// (`\n`, `\x1b`, …), so ids cannot move the cursor or forge lines.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `s` cut to `width` characters, with an ellipsis when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// RFC 3339 with microseconds, UTC.
pub fn timestamp(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A payload as JSON: MessagePack decoded (encoding 1), anything else as escaped text.
pub fn payload_json(encoding: u8, payload: &[u8]) -> serde_json::Value {
    if encoding == seglog_eventstore::codec::ENCODING_MSGPACK_NAMED {
        match rmp_serde::from_slice::<serde_json::Value>(payload) {
            Ok(v) => v,
            Err(e) => serde_json::json!({ "undecodable": e.to_string(), "bytes": payload.len() }),
        }
    } else {
        serde_json::Value::String(escape(payload))
    }
}

/// A record as one JSON object (without its payloads).
pub fn record_json(
    segment: u64,
    offset: u64,
    r: &RecordRef<'_>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("segment".into(), segment.into());
    m.insert("offset".into(), offset.into());
    m.insert("length".into(), (r.len() as u64).into());
    m.insert("kind".into(), "events".into());
    m.insert("lsn".into(), r.lsn().into());
    m.insert("execution".into(), escape(r.execution_id()).into());
    m.insert("tenant".into(), escape(r.tenant_id()).into());
    m.insert("first_seq".into(), r.first_seq().into());
    m.insert("last_seq".into(), r.last_seq().into());
    m.insert(
        "timestamp".into(),
        timestamp(r.timestamp_unix_nanos()).into(),
    );
    m.insert("encoding".into(), r.encoding().into());
    m.insert("payload_bytes".into(), (r.payload_len() as u64).into());
    m.insert("checksum".into(), "ok".into());
    m
}

/// ANSI colour, on only when stdout is a terminal and `NO_COLOR` is unset.
#[derive(Clone, Copy)]
pub struct Paint(bool);

impl Paint {
    pub fn detect() -> Self {
        Paint(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
    }
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn good(self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub fn warn(self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub fn bad(self, s: &str) -> String {
        self.wrap("31;1", s)
    }
    pub fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// A progress bar on a terminal's stderr, hidden otherwise.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style =
        indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} {eta}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_control_characters_and_bad_utf8() {
        assert_eq!(escape(b"plain-id"), "plain-id");
        assert_eq!(escape(b"a\nb\x1b[31mc"), "a\\nb\\u{1b}[31mc");
        assert_eq!(escape(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(escape("日本".as_bytes()), "日本");
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("exactly-10", 10), "exactly-10");
        assert_eq!(fit("much-too-long", 6), "much-…");
    }
}
