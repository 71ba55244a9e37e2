//! Pure parsing of Sling 1.4.11 output lines: JSON records on stdout (`SLING_LOGGING=JSON`), plain text on stderr
//! (fatal blocks, per-stream errors) and the coloured text format for when JSON is not in force.
//! Every pattern here was checked against lines captured from the real binary (see `tests/fixtures/`).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Severity of one Sling line, mapped onto tracing/OTel levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One progress tick of `SLING_SHOW_PROGRESS=true`: rows of the running stream so far and Sling's own rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub elapsed_secs: u64,
    pub rows: u64,
    /// `None` on the first tick, which prints `? p/s`.
    pub rows_per_sec: Option<u64>,
}

/// `<elapsed>s <rows> <rate> r/s <bytes> ` — written to stderr about once a second without a newline, so a line
/// reader would see them only when the stream ends (SLING_FACTS §9). The trailing space ends a tick.
static PROGRESS_TICK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d+)s ([\d,]+) (\?|[\d,]+) [rp]/s [\d.]+ [A-Za-z]*B ")
        .expect("valid progress regex")
});

/// Reads the complete progress ticks at the start of `text` (an unfinished stderr line). Returns how many bytes
/// they take and the newest tick, or `None` when `text` does not start with a complete tick.
pub fn parse_progress(text: &str) -> Option<(usize, Progress)> {
    let number = |s: &str| s.replace(',', "").parse::<u64>().ok();
    let mut consumed = 0;
    let mut last = None;
    while let Some(c) = PROGRESS_TICK.captures(&text[consumed..]) {
        let whole = c.get(0)?;
        last = Some(Progress {
            elapsed_secs: number(&c[1])?,
            rows: number(&c[2])?,
            rows_per_sec: number(&c[3]),
        });
        consumed += whole.end();
    }
    last.map(|p| (consumed, p))
}

/// Which pipe of the child a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pipe {
    Stdout,
    Stderr,
}

/// One parsed Sling line. `message` has ANSI codes and the trailing newline removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub pipe: Pipe,
    pub level: Level,
    /// Sling's own timestamp as printed (RFC 3339 in JSON mode, `3:04PM` in text mode), if any.
    pub time: Option<String>,
    pub message: String,
}

/// What a line tells the engine beyond being a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `[i / n] running stream NAME`, or the single-stream header `Sling Replication | SRC -> TGT | NAME`.
    StreamStarted { stream: String },
    /// `inserted N rows into OBJECT in S secs [...]`.
    Rows { rows: u64, object: String },
    /// A row-count line whose number is beyond `MAX_ROWS`: a parse problem of that line, never a count.
    UnreadableRows { line: String },
    /// `execution failed` (a stream failed; the detail comes on stderr).
    StreamFailed,
    /// `Sling Replication Completed in ... | N Successes | M Failures`.
    Summary { successes: u64, failures: u64 },
    /// `Did not match any streams. Exiting.`: Sling exits 0 but nothing ran.
    NoStreamsMatched,
    /// The first line of the `fatal:` block on stderr.
    FatalStart,
}

static ANSI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;]*[A-Za-z]").expect("static regex"));
static TEXT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{1,2}:\d{2}[AP]M|\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (TRC|DBG|INF|WRN|ERR|FTL) ?(.*)$")
        .expect("static regex")
});
static ROWS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^inserted (\d+) rows into (.+?) in (\d+) secs \[([\d,]+) r/s\](?: \[([^\]]+)\])?\s*$",
    )
    .expect("static regex")
});
static STREAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[\d+ / \d+\] running stream (.+)$").expect("static regex"));
static SINGLE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Sling Replication \| .+? -> .+? \| (.+)$").expect("static regex")
});
static SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Sling Replication Completed in .*\| (\d+) Successes \| (\d+) Failures\s*$")
        .expect("static regex")
});

/// Borrows from the line where it can: this runs for every line Sling prints.
#[derive(Deserialize)]
struct JsonRecord<'a> {
    #[serde(borrow)]
    lvl: Option<Text<'a>>,
    #[serde(borrow)]
    time: Option<Text<'a>>,
    #[serde(borrow)]
    msg: Option<Text<'a>>,
}

/// A JSON string borrowed from the line when it holds no escapes (Sling's usual line), owned when it does. serde's
/// own `Cow<str>` borrows only as a field of its own: inside an `Option` it always copied, three allocations a line.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

pub fn strip_ansi(s: &str) -> String {
    if s.contains('\x1b') {
        ANSI.replace_all(s, "").into_owned()
    } else {
        s.to_owned()
    }
}

fn level_from_json(lvl: &str) -> Level {
    match lvl {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "warn" | "warning" => Level::Warn,
        "error" | "fatal" | "panic" => Level::Error,
        _ => Level::Info,
    }
}

fn level_from_tag(tag: &str) -> Level {
    match tag {
        "TRC" => Level::Trace,
        "DBG" => Level::Debug,
        "WRN" => Level::Warn,
        "ERR" | "FTL" => Level::Error,
        _ => Level::Info,
    }
}

/// Parses one raw line. Returns `None` for blank lines (Sling prints them as separators).
pub fn parse_line(raw: &str, pipe: Pipe) -> Option<LogLine> {
    let trimmed = raw.trim_end_matches(['\n', '\r']);
    if trimmed.trim().is_empty() {
        return None;
    }
    if trimmed.starts_with('{') {
        if let Ok(rec) = serde_json::from_str::<JsonRecord>(trimmed) {
            if let Some(Text(msg)) = rec.msg {
                let message = strip_ansi(msg.trim_end());
                if message.is_empty() {
                    return None;
                }
                return Some(LogLine {
                    pipe,
                    level: level_from_json(rec.lvl.as_ref().map_or("info", |Text(l)| l)),
                    time: rec.time.map(|Text(t)| t.into_owned()),
                    message,
                });
            }
        }
    }
    let plain = strip_ansi(trimmed);
    if plain.trim().is_empty() {
        return None;
    }
    if let Some(c) = TEXT_LINE.captures(&plain) {
        return Some(LogLine {
            pipe,
            level: level_from_tag(&c[2]),
            time: Some(c[1].to_owned()),
            message: c[3].trim_end().to_owned(),
        });
    }
    // Plain stderr text is the fatal block or per-stream error detail; stdout text is not expected in JSON mode.
    let level = match pipe {
        Pipe::Stderr if is_benign_stderr(&plain) => Level::Warn,
        Pipe::Stderr => Level::Error,
        Pipe::Stdout => Level::Info,
    };
    Some(LogLine {
        pipe,
        level,
        time: None,
        message: plain.trim_end().to_owned(),
    })
}

fn is_benign_stderr(plain: &str) -> bool {
    let p = plain.trim();
    p == "interrupting..." || p == "killing process..." || p.starts_with("Sling update available")
}

/// Classifies a parsed line's message.
pub fn signal(line: &LogLine) -> Option<Signal> {
    let m = line.message.as_str();
    if line.pipe == Pipe::Stderr && m.trim_start().starts_with("fatal:") {
        return Some(Signal::FatalStart);
    }
    // Cheap prefixes first: almost every line is none of these, and this runs for every line Sling prints.
    if m.starts_with("inserted ") {
        if let Some(c) = ROWS.captures(m) {
            return Some(match c[1].parse::<u64>() {
                Ok(rows) if rows <= MAX_ROWS => Signal::Rows {
                    rows,
                    object: c[2].to_owned(),
                },
                _ => Signal::UnreadableRows { line: m.to_owned() },
            });
        }
    }
    if m.starts_with('[') {
        if let Some(c) = STREAM.captures(m) {
            return Some(Signal::StreamStarted {
                stream: c[1].trim().to_owned(),
            });
        }
    }
    if m.starts_with("Sling Replication") {
        if let Some(c) = SUMMARY.captures(m) {
            return Some(Signal::Summary {
                successes: c[1].parse().ok()?,
                failures: c[2].parse().ok()?,
            });
        }
        if let Some(c) = SINGLE_HEADER.captures(m) {
            return Some(Signal::StreamStarted {
                stream: c[1].trim().to_owned(),
            });
        }
    }
    if m.starts_with("execution failed") {
        return Some(Signal::StreamFailed);
    }
    if m.starts_with("Did not match any streams") {
        return Some(Signal::NoStreamsMatched);
    }
    None
}

/// The largest row count taken from a line or summed: telemetry carries counts as signed 64-bit integers, and no
/// table comes near it, so anything larger is a garbled line rather than a count.
pub const MAX_ROWS: u64 = i64::MAX as u64;

/// Error texts that no retry can fix: the replication file or its connections are wrong.
const PERMANENT_MARKERS: &[&str] = &[
    "Error parsing yaml content",
    "Error parsing replication config",
    "Error compiling replication config",
    "Unable to open replication path",
    "could not find connection",
    "Invalid Connection name",
    "must specify valid mode",
    "must specify value for 'update_key'",
    "must specify range",
    "need to specify `object`",
    "Expected a following arg for flag",
];

/// True when an error line shows a configuration fault that retrying cannot fix.
pub fn is_permanent_error(message: &str) -> bool {
    PERMANENT_MARKERS.iter().any(|m| message.contains(m))
}

#[cfg(test)]
mod tests;
