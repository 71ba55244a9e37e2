use super::*;

const TWO_STREAMS: &str =
    include_str!("../../../tests/fixtures/sling-1.4.11-two-streams.stdout.jsonl");
const RERUN: &str =
    include_str!("../../../tests/fixtures/sling-1.4.11-incremental-rerun.stdout.jsonl");
const MISSING_ERR: &str =
    include_str!("../../../tests/fixtures/sling-1.4.11-missing-table.stderr.txt");
const MISSING_OUT: &str =
    include_str!("../../../tests/fixtures/sling-1.4.11-missing-table.stdout.jsonl");
const UNKNOWN_CONN: &str =
    include_str!("../../../tests/fixtures/sling-1.4.11-unknown-connection.stderr.txt");
const BAD_YAML: &str = include_str!("../../../tests/fixtures/sling-1.4.11-bad-yaml.stderr.txt");
const TEXT_MODE: &str = include_str!("../../../tests/fixtures/sling-1.4.11-text-mode.stderr.txt");

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
        message: "inserted rows into \"main\".\"orders\" from temp table \"main\".\"orders_tmp\""
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
            &format!(r#"{{"lvl":"info","msg":"inserted {n} rows into \"t\" in 1 secs [1 r/s]"}}"#),
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

#[test]
fn progress_ticks_as_sling_writes_them() {
    // Captured from Sling 1.4.11 copying 1M SQLite rows with SLING_SHOW_PROGRESS=true (stderr, no newline).
    let text =
        "1s 31,791 ? p/s 1.4 MB 2s 57,247 25489 r/s 2.5 MB 3s 70,696 24708 r/s 3.1 MB 4s 84,3";
    let (used, p) = parse_progress(text).expect("ticks");
    assert_eq!(
        p,
        Progress {
            elapsed_secs: 3,
            rows: 70_696,
            rows_per_sec: Some(24_708)
        }
    );
    assert_eq!(&text[used..], "4s 84,3", "the unfinished tick stays");
    let (_, first) = parse_progress("1s 31,791 ? p/s 1.4 MB ").expect("first tick");
    assert_eq!(first.rows_per_sec, None);
    assert_eq!(parse_progress("fatal: could not connect "), None);
    assert_eq!(
        parse_progress("1s 31,791 ? p/s 1.4 MB"),
        None,
        "not finished"
    );
    let (_, big) = parse_progress("75s 1,234,567 16,461 r/s 253 B ").expect("commas");
    assert_eq!((big.rows, big.rows_per_sec), (1_234_567, Some(16_461)));
}

#[test]
fn json_fields_are_read_whether_borrowed_escaped_missing_or_null() {
    // No escapes: borrowed from the line. Escapes in every field: decoded into owned text.
    let plain = parse_line(
        r#"{"lvl":"warn","time":"t1","msg":"plain text"}"#,
        Pipe::Stdout,
    )
    .expect("parsed");
    assert_eq!(
        (plain.level, plain.time.as_deref(), plain.message.as_str()),
        (Level::Warn, Some("t1"), "plain text")
    );
    let escaped = parse_line(
        r#"{"lvl":"\u0065rror","time":"t\"2","msg":"tab\there \"q\" \\ \u00e9"}"#,
        Pipe::Stdout,
    )
    .expect("parsed");
    assert_eq!(
        (
            escaped.level,
            escaped.time.as_deref(),
            escaped.message.as_str()
        ),
        (Level::Error, Some("t\"2"), "tab\there \"q\" \\ é")
    );
    let bare = parse_line(r#"{"msg":"only a message","lvl":null}"#, Pipe::Stdout).expect("parsed");
    assert_eq!((bare.level, bare.time), (Level::Info, None));
    // A field of another type is not a Sling JSON line: the whole line is kept as text.
    let odd = parse_line(r#"{"lvl":3,"msg":"x"}"#, Pipe::Stdout).expect("parsed");
    assert_eq!(odd.message, r#"{"lvl":3,"msg":"x"}"#);
}
