//! Output: the one place where untrusted strings (ids, tenant names, payloads, decoded
//! fields, paths, messages quoting file contents) are made safe for a terminal, for text
//! ([`escape`]) and for JSON ([`json_line`]); JSON lines with their `schema` and `kind`;
//! fitting lines to 100 columns of display width; colour as anstream decides it (a terminal,
//! no `NO_COLOR`); durations in humantime's style; payloads decoded for display.
//!
//! Invariant: nothing printed contains a raw control character (C0, DEL, C1) other than the
//! newline ending a line, nor a bidi control or line separator. Callers print only text
//! built from [`escape`]d strings, [`json_line`]s and their own literals and numbers.

use serde::Serialize;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

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

/// Version of the JSON output's layout, on every line as `"schema"`. Bumped when a field
/// changes meaning or goes away (new fields and kinds do not bump it).
pub const SCHEMA: u32 = 1;

/// A kind of JSON line: its fields, and the `kind` it is printed with.
pub trait JsonRecord: Serialize {
    /// The line's `"kind"`.
    const KIND: &'static str;
}

/// What every JSON line is: the schema version, the kind, then the record's own fields.
#[derive(Serialize)]
struct Envelope<'a, T> {
    schema: u32,
    kind: &'static str,
    #[serde(flatten)]
    record: &'a T,
}

/// A record as one JSON line with its `schema` and `kind`, safe on a terminal
/// ([`terminal_safe_json`]).
///
/// # Errors
/// A record serde_json cannot serialize (none of ours: their maps have string keys).
pub fn json_line<T: JsonRecord>(record: &T) -> anyhow::Result<String> {
    let raw = serde_json::to_string(&Envelope {
        schema: SCHEMA,
        kind: T::KIND,
        record,
    })?;
    Ok(terminal_safe_json(&raw))
}

/// JSON text that is still valid JSON with the same value, and safe on a terminal:
/// serde_json escapes C0 controls, quotes and backslashes; DEL, C1 controls, bidi controls
/// and line separators, which it leaves raw, become `\uXXXX` here. (They can only occur
/// inside strings, where such an escape means the same character.)
pub fn terminal_safe_json(raw: &str) -> String {
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

/// A JSON value (a decoded payload) as terminal-safe JSON text.
pub fn json_value(v: &serde_json::Value) -> String {
    terminal_safe_json(&v.to_string())
}

/// `s` cut to `width` columns of display width (wide characters take two), with an
/// ellipsis when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width.saturating_sub(1) {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` fitted to `width` columns and padded with spaces to exactly `width` (format's
/// `{:<w}` counts characters, not columns).
pub fn column(s: &str, width: usize) -> String {
    let mut out = fit(s, width);
    let pad = width.saturating_sub(out.width());
    out.extend(std::iter::repeat_n(' ', pad));
    out
}

/// A duration in humantime's style (`1s 250ms`, `340us`), rounded to what a person reads:
/// milliseconds from a second on, microseconds below.
pub fn duration(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(1) {
        Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
    } else {
        Duration::from_micros(d.as_micros().try_into().unwrap_or(u64::MAX))
    };
    humantime::format_duration(rounded).to_string()
}

/// RFC 3339 with microseconds, UTC.
pub fn timestamp(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Date and time to the millisecond, UTC, for text tables (`2026-11-30 10:08:50.123`).
pub fn date_time(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// A payload as JSON: MessagePack decoded (encoding 1), anything else as escaped text.
pub fn payload_json(encoding: u8, payload: &[u8]) -> serde_json::Value {
    use seglog_eventstore::codec::{ENCODING_EXECUTION_EVENT_MSGPACK, ENCODING_MSGPACK_NAMED};
    if encoding == ENCODING_MSGPACK_NAMED || encoding == ENCODING_EXECUTION_EVENT_MSGPACK {
        match seglog_eventstore::codec::decode_json(payload) {
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
            None => json_value(v),
        };
    };
    let kind = m.get("type").and_then(|t| t.as_str()).unwrap_or("?");
    let mut out = escape_str(kind);
    for (k, v) in m.iter().filter(|(k, _)| *k != "type") {
        let value = match v.as_str() {
            Some(s) => escape_str(s),
            None => json_value(v),
        };
        let _ = write!(out, " {}={value}", escape_str(k));
    }
    out
}

/// One event of an execution (`events`, `tail`).
#[derive(Serialize)]
pub struct EventLine {
    /// The log position of its record (`tail --all` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lsn: Option<u64>,
    /// The execution id, escaped.
    pub execution: String,
    /// The tenant id, escaped (`tail --all` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Its sequence in the execution.
    pub seq: u64,
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// The payload, decoded.
    pub event: serde_json::Value,
}

impl JsonRecord for EventLine {
    const KIND: &'static str = "event";
}

impl EventLine {
    /// The event `seq` of record `r`, with its payload.
    pub fn new(r: &seglog_segment::format::RecordRef<'_>, seq: u64, payload: &[u8]) -> Self {
        EventLine {
            lsn: None,
            execution: escape(r.execution_id()),
            tenant: None,
            seq,
            timestamp: timestamp(r.timestamp_unix_nanos()),
            event: payload_json(r.encoding(), payload),
        }
    }

    /// The line: JSON, or a table row fitted to [`COLUMNS`].
    ///
    /// # Errors
    /// As [`json_line`].
    pub fn render(&self, json: bool) -> anyhow::Result<String> {
        if json {
            return json_line(self);
        }
        let row = match self.lsn {
            Some(lsn) => format!(
                "{lsn:>8}  {} {:>6}  {:<27}  {}",
                column(&self.execution, 16),
                self.seq,
                self.timestamp,
                summarize(&self.event)
            ),
            None => format!(
                "{:>6}  {:<27}  {}",
                self.seq,
                self.timestamp,
                summarize(&self.event)
            ),
        };
        Ok(fit(&row, COLUMNS))
    }
}

/// Colour for stdout, on where anstream would colour it: a terminal, `NO_COLOR` unset
/// (`CLICOLOR_FORCE` forces it); the styles are anstyle's.
#[derive(Clone, Copy)]
pub struct Paint(bool);

impl Paint {
    pub fn detect() -> Self {
        Paint(anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never)
    }
    fn wrap(self, style: anstyle::Style, s: &str) -> String {
        if self.0 {
            format!("{style}{s}{style:#}")
        } else {
            s.to_string()
        }
    }
    pub fn good(self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Green.on_default(), s)
    }
    pub fn warn(self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Yellow.on_default(), s)
    }
    pub fn bad(self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Red.on_default().bold(), s)
    }
    pub fn dim(self, s: &str) -> String {
        self.wrap(anstyle::Style::new().dimmed(), s)
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

    #[derive(Serialize)]
    struct Probe {
        text: String,
    }
    impl JsonRecord for Probe {
        const KIND: &'static str = "probe";
    }

    #[test]
    fn json_line_escapes_what_serde_json_leaves_raw_and_keeps_the_value() {
        let text = "a\x1b[2J\u{9b}\u{7f}\u{2029}\u{202e}".to_string();
        let line = json_line(&Probe { text: text.clone() }).unwrap();
        assert!(line.chars().all(|c| !is_unsafe(c)), "{line:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&line).ok(),
            Some(serde_json::json!({"schema": SCHEMA, "kind": "probe", "text": text}))
        );
    }

    #[test]
    fn fit_cuts_by_display_width_with_an_ellipsis() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("exactly-10", 10), "exactly-10");
        assert_eq!(fit("much-too-long", 6), "much-…");
        // Wide characters take two columns: five of them are 10 columns, not 5.
        assert_eq!(fit("日本語テキ", 10), "日本語テキ");
        assert_eq!(fit("日本語テキスト", 6), "日本…");
        assert_eq!(fit("日本語テキスト", 6).width(), 5);
        assert_eq!(column("日本", 6), "日本  ");
        assert_eq!(column("ab", 4), "ab  ");
    }

    #[test]
    fn durations_print_in_humantime_style() {
        assert_eq!(duration(Duration::from_micros(1_234_567)), "1s 234ms");
        assert_eq!(duration(Duration::from_nanos(340_123)), "340us");
        assert_eq!(duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(
            humantime::parse_duration(&duration(Duration::from_millis(2500))).ok(),
            Some(Duration::from_millis(2500))
        );
    }
}
