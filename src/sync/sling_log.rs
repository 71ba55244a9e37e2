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
    lvl: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    msg: Option<Cow<'a, str>>,
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
            if let Some(msg) = rec.msg {
                let message = strip_ansi(msg.trim_end());
                if message.is_empty() {
                    return None;
                }
                return Some(LogLine {
                    pipe,
                    level: level_from_json(rec.lvl.as_deref().unwrap_or("info")),
                    time: rec.time.map(Cow::into_owned),
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
mod tests {
    use super::*;

    const TWO_STREAMS: &str =
        include_str!("../../tests/fixtures/sling-1.4.11-two-streams.stdout.jsonl");
    const RERUN: &str =
        include_str!("../../tests/fixtures/sling-1.4.11-incremental-rerun.stdout.jsonl");
    const MISSING_ERR: &str =
        include_str!("../../tests/fixtures/sling-1.4.11-missing-table.stderr.txt");
    const MISSING_OUT: &str =
        include_str!("../../tests/fixtures/sling-1.4.11-missing-table.stdout.jsonl");
    const UNKNOWN_CONN: &str =
        include_str!("../../tests/fixtures/sling-1.4.11-unknown-connection.stderr.txt");
    const BAD_YAML: &str = include_str!("../../tests/fixtures/sling-1.4.11-bad-yaml.stderr.txt");
    const TEXT_MODE: &str = include_str!("../../tests/fixtures/sling-1.4.11-text-mode.stderr.txt");

    fn signals(text: &str, pipe: Pipe) -> Vec<Signal> {
        text.lines()
            .filter_map(|l| parse_line(l, pipe))
            .filter_map(|l| signal(&l))
            .collect()
    }

    #[test]
    fn json_line_fields_and_ansi_banner() {
        let first = TWO_STREAMS.lines().next().expect("fixture has lines");
        let line = parse_line(first, Pipe::Stdout).expect("parsed");
        assert_eq!(line.level, Level::Info);
        assert_eq!(line.message, "Sling CLI | https://slingdata.io");
        assert_eq!(line.time.as_deref(), Some("2026-11-27T02:22:01Z"));
    }

    #[test]
    fn two_stream_run_yields_streams_rows_and_summary() {
        let s = signals(TWO_STREAMS, Pipe::Stdout);
        assert_eq!(
            s,
            vec![
                Signal::StreamStarted {
                    stream: "main.orders".into()
                },
                Signal::Rows {
                    rows: 2,
                    object: "\"main\".\"orders\"".into()
                },
                Signal::StreamStarted {
                    stream: "main.customers".into()
                },
                Signal::Rows {
                    rows: 1,
                    object: "\"main\".\"customers\"".into()
                },
                Signal::Summary {
                    successes: 2,
                    failures: 0
                },
            ]
        );
    }

    #[test]
    fn row_line_without_bytes_bracket_and_warn_level() {
        let lines: Vec<LogLine> = RERUN
            .lines()
            .filter_map(|l| parse_line(l, Pipe::Stdout))
            .collect();
        assert!(lines
            .iter()
            .any(|l| l.level == Level::Warn && l.message.starts_with("no data or records")));
        let rows: Vec<u64> = lines
            .iter()
            .filter_map(|l| match signal(l) {
                Some(Signal::Rows { rows, .. }) => Some(rows),
                _ => None,
            })
            .collect();
        assert_eq!(rows, vec![1, 0]);
    }

    #[test]
    fn debug_insert_line_is_not_a_row_count() {
        let l = LogLine {
            pipe: Pipe::Stdout,
            level: Level::Debug,
            time: None,
            message:
                "inserted rows into \"main\".\"orders\" from temp table \"main\".\"orders_tmp\""
                    .into(),
        };
        assert_eq!(signal(&l), None);
    }

    #[test]
    fn rate_with_commas_and_megabytes() {
        let l = parse_line(
            r#"{"lvl":"info","time":"x","msg":"inserted 1000000 rows into \"public\".\"t\" in 16 secs [61,269 r/s] [54 MB]"}"#,
            Pipe::Stdout,
        )
        .expect("parsed");
        assert_eq!(
            signal(&l),
            Some(Signal::Rows {
                rows: 1_000_000,
                object: "\"public\".\"t\"".into()
            })
        );
    }

    #[test]
    fn row_counts_beyond_the_signed_64_bit_range_are_unreadable_not_wrapped() {
        for n in [
            "99999999999999999999",
            "18446744073709551616",
            "9223372036854775808",
        ] {
            let l = parse_line(
                &format!(
                    r#"{{"lvl":"info","msg":"inserted {n} rows into \"t\" in 1 secs [1 r/s]"}}"#
                ),
                Pipe::Stdout,
            )
            .expect("parsed");
            assert!(
                matches!(signal(&l), Some(Signal::UnreadableRows { ref line }) if line.contains(n)),
                "{n}"
            );
        }
        let l = parse_line(
            r#"{"lvl":"info","msg":"inserted 9223372036854775807 rows into \"t\" in 1 secs [1 r/s]"}"#,
            Pipe::Stdout,
        )
        .expect("parsed");
        assert!(matches!(
            signal(&l),
            Some(Signal::Rows { rows: MAX_ROWS, .. })
        ));
    }

    #[test]
    fn partial_failure_is_seen_on_both_pipes() {
        let out = signals(MISSING_OUT, Pipe::Stdout);
        assert!(out.contains(&Signal::StreamFailed));
        assert!(out.contains(&Signal::Summary {
            successes: 1,
            failures: 1
        }));
        let err: Vec<LogLine> = MISSING_ERR
            .lines()
            .filter_map(|l| parse_line(l, Pipe::Stderr))
            .collect();
        assert!(err.iter().all(|l| l.level == Level::Error));
        assert!(err.iter().any(|l| signal(l) == Some(Signal::FatalStart)));
        assert!(err
            .iter()
            .any(|l| l.message.contains("did not find any columns")));
        assert!(!err.iter().any(|l| l.message.contains('\x1b')));
        assert!(
            !err.iter().any(|l| is_permanent_error(&l.message)),
            "a missing table may be granted later"
        );
    }

    #[test]
    fn config_errors_are_permanent() {
        for text in [UNKNOWN_CONN, BAD_YAML] {
            let lines: Vec<LogLine> = text
                .lines()
                .filter_map(|l| parse_line(l, Pipe::Stderr))
                .collect();
            assert!(
                lines.iter().any(|l| is_permanent_error(&l.message)),
                "{text}"
            );
        }
    }

    #[test]
    fn text_mode_lines_parse_level_time_and_signals() {
        let lines: Vec<LogLine> = TEXT_MODE
            .lines()
            .filter_map(|l| parse_line(l, Pipe::Stderr))
            .collect();
        assert_eq!(lines[0].message, "Sling CLI | https://slingdata.io");
        assert!(lines
            .iter()
            .all(|l| l.level == Level::Info || l.level == Level::Warn));
        assert!(lines
            .iter()
            .all(|l| l.time.as_deref().is_some_and(|t| t.ends_with('M'))));
        let s: Vec<Signal> = lines.iter().filter_map(signal).collect();
        assert!(s.contains(&Signal::Rows {
            rows: 0,
            object: "\"main\".\"orders\"".into()
        }));
        assert!(s.contains(&Signal::Rows {
            rows: 0,
            object: "\"main\".\"customers\"".into()
        }));
        assert!(s.contains(&Signal::Summary {
            successes: 2,
            failures: 0
        }));
    }

    #[test]
    fn single_stream_header_names_the_stream() {
        let l = parse_line(
            r#"{"lvl":"info","time":"x","msg":"Sling Replication | SRC -> TGT | main.events"}"#,
            Pipe::Stdout,
        )
        .expect("parsed");
        assert_eq!(
            signal(&l),
            Some(Signal::StreamStarted {
                stream: "main.events".into()
            })
        );
    }

    #[test]
    fn no_streams_matched_and_blank_lines() {
        let l = parse_line(
            r#"{"lvl":"warn","time":"x","msg":"Did not match any streams. Exiting."}"#,
            Pipe::Stdout,
        )
        .expect("parsed");
        assert_eq!(signal(&l), Some(Signal::NoStreamsMatched));
        assert_eq!(parse_line("", Pipe::Stderr), None);
        assert_eq!(parse_line("   \r\n", Pipe::Stderr), None);
    }

    #[test]
    fn interrupt_notice_is_a_warning() {
        let l = parse_line("interrupting...", Pipe::Stderr).expect("parsed");
        assert_eq!(l.level, Level::Warn);
    }
}
