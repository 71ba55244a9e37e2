//! The batch output layer: each event becomes one line on stdout, formatted straight into the output buffer.
//!
//! - JSON (not a terminal): `{"timestamp":"…Z","level":"INFO","message":"…",<fields in order>,"target":"sling"}`, the
//!   shape tracing-subscriber's flattened JSON format printed before (fields in the order the event declares them).
//! - Text (a terminal): `HH:MM:SS LEVEL [pipeline] message key=value`. The span context that tracing's default format
//!   prints would repeat the job id on every line, and the fields every Sling line carries are left out. Text that
//!   came from outside (Sling's lines, file names, error texts) may hold newlines, carriage returns and terminal
//!   escapes that would forge or repaint output lines; every field is written with those escaped.
//!
//! Hand-written rather than tracing-subscriber's fmt layer because this runs for every line Sling prints: that layer
//! built a map of JSON values per event and wrote it through a UTF-8-checking adaptor piece by piece; here a line is
//! escaped once into the buffer, and the timestamp's date part is formatted once a second.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::stdout::StdoutWriter;
use crate::sync::spans::{self, SlingLine};

/// Fields that every Sling line carries and that would only add noise on a terminal.
const HIDDEN: &[&str] = &[
    "message",
    "pipeline",
    "sync_job_id",
    "attempt",
    "sling_time",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text { ansi: bool },
}

/// Writes every event it sees to the batch output (filtering is the caller's, with `Layer::with_filter`).
pub struct BatchLayer {
    out: StdoutWriter,
    format: Format,
}

impl BatchLayer {
    pub fn new(out: StdoutWriter, format: Format) -> Self {
        Self { out, format }
    }
}

impl<S: Subscriber> Layer<S> for BatchLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match self.format {
            Format::Json => self.out.add(|buf| write_json(buf, event, now)),
            Format::Text { ansi } => {
                // Collected first: the pipeline and message lead the line whatever the field order.
                let mut f = TextFields::default();
                event.record(&mut f);
                let time = local_hms(now.as_secs());
                let level = *event.metadata().level();
                self.out
                    .add(|buf| write_text(buf, level, &time, &f.as_line(), ansi));
            }
        }
    }
}

/// Sling lines, handed over by the engine (`spans::LineOutput`): the same lines `BatchLayer` writes for a
/// `sling line` event, without the event. Like the layer's filter, it leaves out DEBUG and TRACE lines.
pub struct BatchLines {
    out: StdoutWriter,
    format: Format,
}

impl BatchLines {
    pub fn new(out: StdoutWriter, format: Format) -> Self {
        Self { out, format }
    }
}

impl spans::LineOutput for BatchLines {
    fn line(&self, line: &SlingLine<'_>) {
        if line.level > Level::INFO {
            return;
        }
        let now = line.observed;
        match self.format {
            Format::Json => self.out.add(|buf| write_json_line(buf, line, now)),
            Format::Text { ansi } => {
                // Only the pipeline and the message: the other fields are `HIDDEN`.
                let text = TextLine {
                    message: line.message,
                    pipeline: Some(line.pipeline),
                    rest: &[],
                };
                let time = local_hms(now.as_secs());
                self.out
                    .add(|buf| write_text(buf, line.level, &time, &text, ansi));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

fn write_json(buf: &mut Vec<u8>, event: &Event<'_>, since_epoch: std::time::Duration) {
    buf.extend_from_slice(b"{\"timestamp\":\"");
    utc_rfc3339_micros(buf, since_epoch);
    buf.extend_from_slice(b"\",\"level\":\"");
    buf.extend_from_slice(event.metadata().level().as_str().as_bytes());
    buf.push(b'"');
    event.record(&mut JsonFields { buf });
    buf.extend_from_slice(b",\"target\":");
    escape_json(buf, event.metadata().target());
    buf.extend_from_slice(b"}\n");
}

/// `write_json` of the `sling line` event that `line` stands for: the same bytes.
fn write_json_line(buf: &mut Vec<u8>, line: &SlingLine<'_>, since_epoch: std::time::Duration) {
    let [message, pipeline, sync_job_id, attempt, sling_time] = spans::LINE_FIELDS;
    buf.extend_from_slice(b"{\"timestamp\":\"");
    utc_rfc3339_micros(buf, since_epoch);
    buf.extend_from_slice(b"\",\"level\":\"");
    buf.extend_from_slice(line.level.as_str().as_bytes());
    buf.push(b'"');
    let mut f = JsonFields { buf };
    f.str(message, line.message);
    f.str(pipeline, line.pipeline);
    f.str(sync_job_id, line.sync_job_id);
    f.int(attempt, line.attempt);
    f.str(sling_time, line.sling_time);
    buf.extend_from_slice(b",\"target\":");
    escape_json(buf, spans::SLING);
    buf.extend_from_slice(b"}\n");
}

struct JsonFields<'a> {
    buf: &'a mut Vec<u8>,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.name(field.name());
    }

    /// Field names are Rust identifiers (tracing's macros make them so, and `spans::LINE_FIELDS` are): nothing to
    /// escape.
    fn name(&mut self, name: &str) {
        self.buf.extend_from_slice(b",\"");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        escape_json(self.buf, value);
    }

    fn int(&mut self, name: &str, value: impl itoa::Integer) {
        self.name(name);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.str(field.name(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.int(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.int(field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.buf, "{value}");
        } else {
            self.buf.extend_from_slice(b"null");
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message arrives here as `format_args!`; anything else as its Debug text, as a string.
        self.key(field);
        self.buf.push(b'"');
        let _ = write!(JsonEscaper { buf: self.buf }, "{value:?}");
        self.buf.push(b'"');
    }
}

/// A `fmt::Write` that escapes into a JSON string body, so formatted values need no temporary `String`.
struct JsonEscaper<'a> {
    buf: &'a mut Vec<u8>,
}

impl fmt::Write for JsonEscaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_json_body(self.buf, s);
        Ok(())
    }
}

fn escape_json(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    escape_json_body(buf, s);
    buf.push(b'"');
}

/// Bytes that need escaping in a JSON string: control characters, quote and backslash (as serde_json escapes).
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// JSON string escaping as serde_json does it: quote, backslash and control characters; everything else as is.
fn escape_json_body(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_to_escape(bytes, start) {
        buf.extend_from_slice(&bytes[start..i]);
        match bytes[i] {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            b => {
                let _ = write!(buf, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// The index of the first byte at or after `from` that JSON must escape. Eight bytes at a time: this runs over
/// every field of every batch line, and a byte-by-byte table lookup was a sixth of the wrapper's CPU per Sling line.
fn next_to_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let rest = bytes.get(from..)?;
    let mut words = rest.chunks_exact(8);
    let mut at = from;
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // The classic "has a byte below n" and "has a zero byte" word tests: never a miss, sometimes a false
        // alarm (a borrow across bytes), which the byte-by-byte look below settles.
        let below = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGH;
        let control = below(w, 0x20);
        let quote = below(w ^ (ONES * u64::from(b'"')), 1);
        let backslash = below(w ^ (ONES * u64::from(b'\\')), 1);
        if control | quote | backslash != 0 {
            if let Some(i) = word.iter().position(|&b| NEEDS_ESCAPE[b as usize]) {
                return Some(at + i);
            }
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| NEEDS_ESCAPE[b as usize])
        .map(|i| at + i)
}

/// `2026-11-27T08:15:02.123456Z`. The date and time of day are formatted once per second (per thread).
fn utc_rfc3339_micros(buf: &mut Vec<u8>, since_epoch: std::time::Duration) {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let secs = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            text.clear();
            let t = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
            let _ = write!(text, "{}", t.format("%Y-%m-%dT%H:%M:%S"));
            *cached = secs;
        }
        buf.extend_from_slice(text.as_bytes());
    });
    let micros = since_epoch.subsec_micros();
    let mut digits = *b".000000Z";
    for (i, d) in digits[1..7].iter_mut().rev().enumerate() {
        *d = b'0' + (micros / 10u32.pow(i as u32) % 10) as u8;
    }
    buf.extend_from_slice(&digits);
}

// ---------------------------------------------------------------------------------------------------------------
// Text

#[derive(Default)]
struct TextFields {
    message: String,
    pipeline: Option<String>,
    rest: Vec<(&'static str, String)>,
}

impl TextFields {
    fn as_line(&self) -> TextLine<'_> {
        TextLine {
            message: &self.message,
            pipeline: self.pipeline.as_deref(),
            rest: &self.rest,
        }
    }
}

/// What a text line shows, borrowed: from an event's collected fields, or from a Sling line as the engine hands it
/// over (without copying its message for every line).
struct TextLine<'a> {
    message: &'a str,
    pipeline: Option<&'a str>,
    rest: &'a [(&'static str, String)],
}

/// `text` with every control character written as a visible escape (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`), so
/// one event is one line and nothing reaches the terminal as a command.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A duration in seconds rounded for people: `0.22s`, `12.3s`, `1m05s`, `2h03m`. JSON output keeps full precision.
pub fn human_seconds(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return format!("{secs}s");
    }
    if secs < 9.995 {
        return format!("{secs:.2}s");
    }
    if secs < 59.95 {
        return format!("{secs:.1}s");
    }
    let whole = secs.round() as u64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

impl Visit for TextFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            n if HIDDEN.contains(&n) => {}
            n if n.ends_with("_seconds") => self.rest.push((n, human_seconds(value))),
            n => self.rest.push((n, value.to_string())),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "pipeline" => self.pipeline = Some(value.to_owned()),
            n if HIDDEN.contains(&n) || value.is_empty() => {}
            n => self.rest.push((n, value.to_owned())),
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "pipeline" => self.pipeline = Some(format!("{value:?}")),
            n if HIDDEN.contains(&n) => {}
            n => self.rest.push((n, format!("{value:?}"))),
        }
    }
}

fn write_text(buf: &mut Vec<u8>, level: Level, time: &str, f: &TextLine<'_>, ansi: bool) {
    let (tag, colour) = match level {
        Level::ERROR => ("ERROR", "\x1b[31m"),
        Level::WARN => ("WARN ", "\x1b[33m"),
        Level::INFO => ("INFO ", "\x1b[32m"),
        Level::DEBUG => ("DEBUG", "\x1b[34m"),
        Level::TRACE => ("TRACE", "\x1b[35m"),
    };
    let _ = if ansi {
        write!(buf, "\x1b[2m{time}\x1b[0m {colour}{tag}\x1b[0m ")
    } else {
        write!(buf, "{time} {tag} ")
    };
    if let Some(p) = f.pipeline {
        let p = escape_control(p);
        let _ = if ansi {
            write!(buf, "\x1b[1m[{p}]\x1b[0m ")
        } else {
            write!(buf, "[{p}] ")
        };
    }
    buf.extend_from_slice(escape_control(f.message).as_bytes());
    for (k, v) in f.rest {
        let _ = write!(buf, " {k}={}", escape_control(v));
    }
    buf.push(b'\n');
}

/// Local `HH:MM:SS`; the time zone lookup runs once per second (per thread), not per line.
fn local_hms(secs: u64) -> String {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            text.clear();
            let utc = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
            let _ = write!(
                text,
                "{}",
                utc.with_timezone(&chrono::Local).format("%H:%M:%S")
            );
            *cached = secs;
        }
        text.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: Format, emit: impl FnOnce()) -> String {
        let got = Arc::new(Mutex::new(Vec::new()));
        let (w, guard) = super::super::stdout::spawn(Capture(got.clone())).unwrap();
        let subscriber = tracing_subscriber::registry().with(BatchLayer::new(w, format));
        tracing::subscriber::with_default(subscriber, emit);
        drop(guard);
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn json_lines_carry_every_field_in_order_and_escape_like_serde_json() {
        let msg = "quote \" backslash \\ tab \t bell \u{7} é ✓";
        let out = capture(Format::Json, || {
            tracing::info!(target: "sling", pipeline = "orders", sync_job_id = "j-1", attempt = 2u32, sling_time = "", "{msg}");
            tracing::warn!(target: "sync", rows = -3i64, ok = true, ratio = 0.25, bad = f64::NAN, what = ?vec![1, 2], "done");
        });
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        let a = &lines[0];
        assert_eq!(a["message"], msg);
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["target"], "sling");
        assert_eq!(a["pipeline"], "orders");
        assert_eq!(a["attempt"], 2);
        assert_eq!(a["sling_time"], "");
        let first = out.lines().next().unwrap();
        let order = [
            "timestamp",
            "level",
            "message",
            "pipeline",
            "sync_job_id",
            "attempt",
            "sling_time",
            "target",
        ]
        .map(|k| first.find(&format!("\"{k}\":")).expect(k));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{first}");
        let ts = a["timestamp"].as_str().unwrap();
        assert!(
            ts.parse::<chrono::DateTime<chrono::Utc>>().is_ok() && ts.len() == 27,
            "{ts}"
        );
        let b = &lines[1];
        assert_eq!(b["level"], "WARN");
        assert_eq!(b["rows"], -3);
        assert_eq!(b["ok"], true);
        assert_eq!(b["ratio"], 0.25);
        assert!(b["bad"].is_null());
        assert_eq!(b["what"], "[1, 2]");
        // Escapes as serde_json writes them, so the bytes match what the JSON format printed before.
        assert!(out.contains(&serde_json::to_string(msg).unwrap()), "{out}");
    }

    #[test]
    fn escaping_finds_every_special_byte_wherever_it_sits_in_a_word() {
        // Every byte that needs escaping, and some that do not (UTF-8 included), at every position of strings
        // from 0 to 19 bytes long: the output must be serde_json's.
        let specials = [
            "\"", "\\", "\n", "\u{1}", "\u{1f}", "\t", " ", "!", "#", "[", "]", "é", "\u{7f}",
        ];
        for len in 0..20 {
            for pos in 0..len {
                for sp in specials {
                    let mut text: String = "abcdefghijklmnopqrstuvwxyz".chars().take(len).collect();
                    text.replace_range(pos..=pos, sp);
                    let mut buf = Vec::new();
                    escape_json(&mut buf, &text);
                    let expected = serde_json::to_string(&text).expect("a string serializes");
                    assert_eq!(String::from_utf8(buf).expect("utf-8"), expected, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(escape_control("plain text ünï"), "plain text ünï");
        assert_eq!(
            escape_control("a\nb\rc\td\x1b[31me\x1b]0;t\x07f\u{85}"),
            "a\\nb\\rc\\td\\x1b[31me\\x1b]0;t\\x07f\\u{85}"
        );
    }

    #[test]
    fn durations_are_rounded_for_people() {
        assert_eq!(human_seconds(0.221936841), "0.22s");
        assert_eq!(human_seconds(0.0), "0.00s");
        assert_eq!(human_seconds(12.345), "12.3s");
        assert_eq!(human_seconds(59.94), "59.9s");
        assert_eq!(human_seconds(59.97), "1m00s");
        assert_eq!(human_seconds(9.999), "10.0s");
        assert_eq!(human_seconds(65.2), "1m05s");
        assert_eq!(human_seconds(3599.6), "1h00m");
        assert_eq!(human_seconds(7385.0), "2h03m");
    }

    #[test]
    fn text_lines_lead_with_the_pipeline_and_hide_what_every_sling_line_carries() {
        let out = capture(Format::Text { ansi: false }, || {
            tracing::info!(target: "sling", pipeline = "orders", sync_job_id = "j-1", attempt = 1u32, sling_time = "t", "copied");
            tracing::error!(target: "sync", pipeline = "orders", status = "failed", note = "", duration_seconds = 65.2, "pipeline finished");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(&lines[0][8..], " INFO  [orders] copied");
        assert_eq!(
            &lines[1][8..],
            " ERROR [orders] pipeline finished status=failed duration_seconds=1m05s"
        );
        assert_eq!(lines[0].as_bytes()[2], b':');
    }

    /// The output with each line's time taken out: the JSON `timestamp` value, or the text line's `HH:MM:SS`.
    fn without_times(out: &str) -> Vec<String> {
        out.lines()
            .map(|l| match l.strip_prefix("{\"timestamp\":\"") {
                Some(rest) => rest
                    .split_once('"')
                    .map_or(l.to_owned(), |(_, r)| r.to_owned()),
                None => {
                    // `HH:MM:SS` ends two characters after its second colon.
                    let at = l.find(':').map_or(0, |i| i.saturating_sub(2));
                    format!("{}{}", &l[..at], &l[(at + 8).min(l.len())..])
                }
            })
            .collect()
    }

    /// What the engine hands over (`BatchLines`) is printed as `BatchLayer`, under the filter `Telemetry::init`
    /// gives it, prints the `sling line` event that `spans::sling_line` emits when there are no line outputs: the
    /// same bytes but for the time, DEBUG left out, in JSON and text, with and without colour.
    #[test]
    fn sling_lines_handed_over_print_as_the_layer_prints_their_event() {
        use crate::sync::redact::RedactedLine;
        use crate::sync::sling_log::Level as SlingLevel;
        use crate::sync::spans::{self, LineOutputs};
        use tracing_subscriber::Layer as _;

        let lines: Vec<_> = [
            (
                SlingLevel::Info,
                Some("2026-11-27T00:00:00Z"),
                "quote \" backslash \\ é ✓",
            ),
            (
                SlingLevel::Warn,
                None,
                "tab\t bell \u{7} escape \x1b[31m red \u{85} next",
            ),
            (SlingLevel::Debug, Some("t"), "not printed"),
            (SlingLevel::Error, Some(""), ""),
            (SlingLevel::Trace, Some("t"), "not printed either"),
        ]
        .into_iter()
        .map(|(level, time, message)| RedactedLine::of(level, time, message))
        .collect();
        let emit = |outputs: Option<&LineOutputs>| {
            for line in &lines {
                spans::sling_line(outputs, "orders \"q\"", "j-1", 2, line, false);
            }
        };
        for format in [
            Format::Json,
            Format::Text { ansi: false },
            Format::Text { ansi: true },
        ] {
            let got = Arc::new(Mutex::new(Vec::new()));
            let (w, guard) = super::super::stdout::spawn(Capture(got.clone())).unwrap();
            let layer = BatchLayer::new(w, format)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                emit(None)
            });
            drop(guard);
            let via_event = String::from_utf8(got.lock().unwrap().clone()).unwrap();

            let got = Arc::new(Mutex::new(Vec::new()));
            let (w, guard) = super::super::stdout::spawn(Capture(got.clone())).unwrap();
            emit(Some(&LineOutputs::new(vec![Box::new(BatchLines::new(
                w, format,
            ))])));
            drop(guard);
            let handed_over = String::from_utf8(got.lock().unwrap().clone()).unwrap();

            assert_eq!(via_event.lines().count(), 3, "{format:?}: {via_event}");
            assert_eq!(
                without_times(&handed_over),
                without_times(&via_event),
                "{format:?}"
            );
        }
    }
}
