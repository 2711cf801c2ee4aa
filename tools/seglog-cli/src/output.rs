//! Output: the one place where untrusted strings (ids, tenant names, payloads, decoded
//! fields, paths, messages quoting file contents) are made safe for a terminal, for text
//! ([`escape`]) and for JSON ([`json_line`]); fitting lines to 100 columns; colour only on a
//! terminal; payloads decoded for display.
//!
//! Invariant: nothing printed contains a raw control character (C0, DEL, C1) other than the
//! newline ending a line, nor a bidi control or line separator. Callers print only text
//! built from [`escape`]d strings, [`json_line`]s and their own literals and numbers.

use seglog_segment::format::RecordRef;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;

/// `println!` that returns the write's error instead of panicking, so a reader of stdout
/// that went away (`seglog dump ./log | head`) ends the command through `?`; `main` ends
/// quietly with status 0 on that error ([`is_broken_pipe`]).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// True when `e` or one of its causes is a write into a pipe whose reader went away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A write's result with a reader that went away counted as success: for commands whose
/// work or verdict must not stop with their output (verify, compact).
///
/// # Errors
/// Any other write error.
pub fn ignore_broken_pipe(written: std::io::Result<()>) -> std::io::Result<()> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Width the text output is laid out for.
pub const COLUMNS: usize = 100;

/// Whether `c` must not reach a terminal raw: control characters (C0, DEL, C1) move the
/// cursor, retitle the window or start escape sequences (U+009B is a one-character CSI);
/// bidi controls reorder what is shown, so text can pass for other text; line and paragraph
/// separators start a new line on some terminals.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Bytes shown as text: valid UTF-8 stays, unsafe characters are escaped (`\n`, `\u{1b}`,
/// `\u{202e}`, …) and invalid bytes shown as `\xff`, so untrusted strings cannot move the
/// cursor, forge lines or reorder text.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_unsafe(c) {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// [`escape`] for a string.
pub fn escape_str(s: &str) -> String {
    escape(s.as_bytes())
}

/// [`escape`] for a path (which may come from a directory listing).
pub fn escape_path(p: &Path) -> String {
    escape_str(&p.display().to_string())
}

/// A JSON value as one line that is still valid JSON with the same value, and safe on a
/// terminal: serde_json escapes C0 controls, quotes and backslashes; DEL, C1 controls, bidi
/// controls and line separators, which it leaves raw, become `\uXXXX` here. (They can only
/// occur inside strings, where such an escape means the same character.)
pub fn json_line(v: &serde_json::Value) -> String {
    let raw = v.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if is_unsafe(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
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
    use seglog_eventstore::codec::{ENCODING_EXECUTION_EVENT_MSGPACK, ENCODING_MSGPACK_NAMED};
    if encoding == ENCODING_MSGPACK_NAMED || encoding == ENCODING_EXECUTION_EVENT_MSGPACK {
        match rmp_serde::from_slice::<serde_json::Value>(payload) {
            Ok(v) => v,
            Err(e) => serde_json::json!({ "undecodable": e.to_string(), "bytes": payload.len() }),
        }
    } else {
        serde_json::Value::String(escape(payload))
    }
}

/// A one-line summary of a decoded event for text output: its `type`, then `key=value` for
/// the other fields (strings as they are, other values as JSON), all escaped.
pub fn summarize(v: &serde_json::Value) -> String {
    let Some(m) = v.as_object() else {
        return match v.as_str() {
            Some(s) => escape_str(s),
            None => json_line(v),
        };
    };
    let kind = m.get("type").and_then(|t| t.as_str()).unwrap_or("?");
    let mut out = escape_str(kind);
    for (k, v) in m.iter().filter(|(k, _)| *k != "type") {
        let value = match v.as_str() {
            Some(s) => escape_str(s),
            None => json_line(v),
        };
        let _ = write!(out, " {}={value}", escape_str(k));
    }
    out
}

/// One event as a line: JSON (payload decoded) or a table row fitted to [`COLUMNS`].
pub fn event_line(
    seq: u64,
    timestamp_unix_nanos: i64,
    encoding: u8,
    payload: &[u8],
    json: bool,
) -> String {
    let v = payload_json(encoding, payload);
    let at = timestamp(timestamp_unix_nanos);
    if json {
        json_line(&serde_json::json!({"seq": seq, "timestamp": at, "event": v}))
    } else {
        fit(&format!("{seq:>6}  {at:<27}  {}", summarize(&v)), COLUMNS)
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
        assert_eq!(
            escape("a\u{9b}b\u{202e}c\rd".as_bytes()),
            "a\\u{9b}b\\u{202e}c\\rd"
        );
    }

    #[test]
    fn json_line_escapes_what_serde_json_leaves_raw_and_keeps_the_value() {
        let v = serde_json::json!({"k\u{202e}": "a\x1b[2J\u{9b}\u{7f}\u{2029}"});
        let line = json_line(&v);
        assert!(line.chars().all(|c| !is_unsafe(c)), "{line:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&line).ok(),
            Some(v)
        );
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("exactly-10", 10), "exactly-10");
        assert_eq!(fit("much-too-long", 6), "much-…");
    }
}
