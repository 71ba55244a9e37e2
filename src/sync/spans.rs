//! The telemetry contract with `dashboards/`, in one file: every span name, span attribute, event field and tracing
//! target that `src/telemetry` exports is written here and nowhere else in `src/sync`.
//!
//! Change a name here and in the dashboards together (`tests/deploy/test_contract.py` checks both), and keep attribute
//! types stable: GreptimeDB rejects a type change of an existing column.
//!
//! Targets are explicit, never the module path: telemetry exports exactly the targets in `EXPORTED`, so renaming the
//! crate or moving code between modules cannot change what is exported.

use tracing::{field::Empty, Span};

use super::event::{Mode, Status};
use super::redact::{Redacted, RedactedLine};
use super::sling_log::Level;
use super::verify::{StreamVerify, VerifyReport, VerifyStatus};

/// Engine diagnostics and lifecycle events: stdout in batch, the log pane in the console, OTel log records.
pub const SYNC: &str = "sync";
/// Sling's lines: a span event on its attempt span and an OTel log record (see `LineOutputs`).
pub const SLING: &str = "sling";
/// Metric events (see `metrics.rs`): turned into OTel instruments, kept out of logs and stdout.
pub const METRICS: &str = "sync_metrics";
/// The targets whose spans and events telemetry exports as spans, span events and log records.
pub const EXPORTED: [&str; 2] = [SYNC, SLING];

pub const JOB_SPAN: &str = "sync.job";
pub const PIPELINE_SPAN: &str = "sync.pipeline";
pub const ATTEMPT_SPAN: &str = "sling.attempt";
pub const VERIFY_SPAN: &str = "sync.verify";

/// Span events an exported span keeps; beyond this, the OTLP span's `dropped_events_count` says how many were lost
/// (log records still carry every line). The SDK default (128) would drop most lines of an ordinary Sling run.
pub const MAX_EVENTS_PER_SPAN: u32 = 10_000;
/// The text of an attempt's line span events, in all: a line becomes a span event only while the text so far and
/// its own stay within this. A span holds its events until it ends, and its export copies them again: 6,000 lines
/// of 16 kB (Sling keeps lines up to 16 KiB) took the process to ~500 MiB (the CronJob's limit is 512 Mi); ordinary
/// lines (~150 bytes) stay within it for all 10,000.
pub const MAX_SPAN_EVENT_TEXT_PER_ATTEMPT: usize = 2 << 20;
/// The longest text of one line's span event; a longer line's is cut (at a character boundary, ending in `…`).
/// The log record carries the whole line.
pub const MAX_SPAN_EVENT_TEXT: usize = 1024;
/// The tracing event name of a Sling line's span event, when no line output takes span events (a test's own
/// subscriber; telemetry's OTLP output takes them as calls, `SlingLine::span_event`). A line goes out twice: with all
/// its fields to batch output and log records (`sling_line`), and — for the attempt's first `MAX_EVENTS_PER_SPAN`
/// lines only, within `MAX_SPAN_EVENT_TEXT_PER_ATTEMPT` — with just the message (cut to `MAX_SPAN_EVENT_TEXT`), for
/// the span event. Pipeline, job id and attempt would be the same on every span event
/// and are on the span; Sling's own time stamp is on the log record, the span event has its own; each attribute was a cost
/// on up to 10,000 events, paid again when the span is exported at the end of the run. Building events beyond the
/// bound only for the SDK to drop them was most of telemetry's cost in a flood: lines beyond it have no span event
/// and are counted into the span's `dropped_events_count` (see `SKIPPED_EVENTS_FIELD`).
pub const LINE_SPAN_EVENT: &str = "sling line, span event";
/// The attempt-span field that carries how many Sling lines were not made span events. Telemetry adds it to the
/// span's `dropped_events_count` and removes it before export: it is not an attribute.
pub const SKIPPED_EVENTS_FIELD: &str = "sling_line_events_skipped";

/// `true` for a target telemetry exports as spans, span events and log records.
pub fn is_exported(target: &str) -> bool {
    // A match on the constants, not `EXPORTED.contains`: this runs in every layer's filter for every event, and
    // comparing against fixed lengths needs no call to memcmp.
    matches!(target, SYNC | SLING)
}

/// A count as the signed 64-bit integer OTel attributes carry: checked, never a sign flip. Row counts are capped at
/// `i64::MAX` where they are read (`sling_log::MAX_ROWS`), so the saturation is a guard, not a path.
fn int<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The root span of one job (one trace).
pub fn job_span(sync_job_id: &str, mission_cluster_id: &str, mode: Mode, pipelines: usize) -> Span {
    tracing::info_span!(
        target: SYNC,
        parent: None,
        "sync.job",
        sync_job_id = %sync_job_id,
        mission_cluster_id = %mission_cluster_id,
        sync_mode = mode.as_str(),
        pipelines = int(pipelines),
        status = Empty,
        rows_synced = Empty,
        duration_seconds = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// One pipeline run inside the job span.
pub fn pipeline_span(
    pipeline: &str,
    sync_job_id: &str,
    mission_cluster_id: &str,
    mode: Mode,
) -> Span {
    tracing::info_span!(
        target: SYNC,
        "sync.pipeline",
        pipeline = %pipeline,
        sync_job_id = %sync_job_id,
        mission_cluster_id = %mission_cluster_id,
        sync_mode = mode.as_str(),
        status = Empty,
        rows_synced = Empty,
        duration_seconds = Empty,
        attempts = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// One Sling child inside the pipeline span.
pub fn attempt_span(pipeline: &str, sync_job_id: &str, attempt: u32) -> Span {
    tracing::info_span!(
        target: SYNC,
        "sling.attempt",
        pipeline = %pipeline,
        sync_job_id = %sync_job_id,
        attempt = i64::from(attempt),
        exit_code = Empty,
        status = Empty,
        rows_synced = Empty,
        sling_log_lines = Empty,
        sling_line_events_skipped = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// The outcome attributes every span of the job carries; a span that did not succeed gets status Error with `reason`.
pub fn record_outcome(
    span: &Span,
    status: Status,
    rows: u64,
    duration_seconds: Option<f64>,
    reason: &str,
) {
    span.record("status", status.as_str());
    span.record("rows_synced", int(rows));
    if let Some(d) = duration_seconds {
        span.record("duration_seconds", d);
    }
    if status != Status::Success {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", reason);
    }
}

pub fn record_attempts(span: &Span, attempts: u32) {
    span.record("attempts", i64::from(attempts));
}

pub fn record_attempt_end(
    span: &Span,
    exit_code: Option<i32>,
    sling_log_lines: u64,
    line_events_skipped: u64,
) {
    if let Some(code) = exit_code {
        span.record("exit_code", i64::from(code));
    }
    span.record("sling_log_lines", int(sling_log_lines));
    if line_events_skipped > 0 {
        span.record(SKIPPED_EVENTS_FIELD, int(line_events_skipped));
    }
}

pub fn job_finished(sync_job_id: &str, status: Status, rows: u64, duration_seconds: f64) {
    tracing::info!(
        target: SYNC,
        sync_job_id = %sync_job_id,
        status = status.as_str(),
        rows_synced = int(rows),
        duration_seconds,
        "job finished"
    );
}

pub fn pipeline_finished(
    pipeline: &str,
    status: Status,
    rows: u64,
    attempts: u32,
    duration_seconds: f64,
    error: Option<&Redacted>,
) {
    tracing::info!(
        target: SYNC,
        pipeline = %pipeline,
        status = status.as_str(),
        rows_synced = int(rows),
        attempts,
        duration_seconds,
        error = error.map(Redacted::as_str).unwrap_or(""),
        "pipeline finished"
    );
}

pub fn sling_started(pipeline: &str, attempt: u32, max_attempts: u32, pid: u32) {
    tracing::info!(target: SYNC, pipeline, attempt, max_attempts, pid, "sling started");
}

pub fn retry_scheduled(pipeline: &str, next_attempt: u32, max_attempts: u32, delay_seconds: f64) {
    tracing::warn!(
        target: SYNC,
        pipeline = %pipeline,
        next_attempt,
        max_attempts,
        delay_seconds,
        "retry scheduled in {:.1}s",
        delay_seconds
    );
}

/// How a noop check came out, for its tracing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckLevel {
    Ok,
    Warning,
    Failed,
}

pub fn check_done(pipeline: &str, check: &str, level: CheckLevel, detail: &Redacted) {
    let detail = detail.as_str();
    match level {
        CheckLevel::Ok => {
            tracing::info!(target: SYNC, pipeline = %pipeline, check = %check, "ok: {detail}")
        }
        CheckLevel::Warning => {
            tracing::warn!(target: SYNC, pipeline = %pipeline, check = %check, "warning: {detail}")
        }
        CheckLevel::Failed => {
            tracing::error!(target: SYNC, pipeline = %pipeline, check = %check, "failed: {detail}")
        }
    }
}

/// A diagnostic about one pipeline (lock refused, journal not writable, Sling not startable…).
pub fn pipeline_note(pipeline: &str, level: tracing::Level, message: &Redacted) {
    let message = message.as_str();
    match level {
        tracing::Level::ERROR => tracing::error!(target: SYNC, pipeline = %pipeline, "{message}"),
        tracing::Level::WARN => tracing::warn!(target: SYNC, pipeline = %pipeline, "{message}"),
        _ => tracing::info!(target: SYNC, pipeline = %pipeline, "{message}"),
    }
}

/// A long stream's progress, at most every `PROGRESS_EVERY` per stream: a line in batch output (so `kubectl logs
/// -f` shows a copy moving), a span event on the attempt span, a log record.
pub fn progress(pipeline: &str, stream: Option<&str>, rows: u64, rows_per_sec: Option<u64>) {
    let stream = stream.unwrap_or("");
    let rate = rows_per_sec.map_or(-1, |r| r as i64);
    tracing::info!(
        target: SYNC,
        pipeline,
        stream,
        rows = rows as i64,
        rows_per_sec = rate,
        "progress: {rows} rows so far"
    );
}

/// How often a running stream's progress becomes a tracing event.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A line's message as its span event carries it: cut to `MAX_SPAN_EVENT_TEXT` bytes.
pub fn span_event_text(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_SPAN_EVENT_TEXT {
        return message.into();
    }
    let mut cut = MAX_SPAN_EVENT_TEXT;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &message[..cut]).into()
}

/// One Sling line as the outputs that take every line receive it: the fields of the `sling line` event, in its order
/// (`LINE_FIELDS`), already redacted.
#[derive(Debug, Clone, Copy)]
pub struct SlingLine<'a> {
    pub level: tracing::Level,
    pub message: &'a str,
    pub pipeline: &'a str,
    pub sync_job_id: &'a str,
    pub attempt: u32,
    /// Sling's own time stamp ("" when the line had none).
    pub sling_time: &'a str,
    /// When the wrapper read the line, since the Unix epoch: read once for every output (a clock read is ~35 ns,
    /// 3.5 ms in a 100k-line flood).
    pub observed: std::time::Duration,
    /// Within the attempt's budget of span events (`MAX_EVENTS_PER_SPAN`, `MAX_SPAN_EVENT_TEXT_PER_ATTEMPT`).
    pub span_event: bool,
}

/// The names of `SlingLine`'s fields as batch output and log records carry them, in order (the body first).
pub const LINE_FIELDS: [&str; 5] = [
    "message",
    "pipeline",
    "sync_job_id",
    "attempt",
    "sling_time",
];

/// An output that takes every Sling line straight from the engine (batch output, OTel log records).
pub trait LineOutput: Send + Sync {
    fn line(&self, line: &SlingLine<'_>);

    /// Whether it makes span events of the lines marked `span_event`, so that no `LINE_SPAN_EVENT` is emitted.
    fn takes_span_events(&self) -> bool {
        false
    }
}

/// The line outputs telemetry installed with the tracing subscriber, as a layer of it that the engine finds once per
/// attempt (`current`). A Sling line then goes to each output as a call, not through tracing: dispatching a flood's
/// lines to every layer and its filter cost more than writing them (~600 instructions per line, four layers), and
/// the lines are data to deliver, not diagnostics to filter. A line's span event, too, is a call when an output
/// takes them (OTLP's); otherwise it is a tracing event (`LINE_SPAN_EVENT`).
#[derive(Clone, Default)]
pub struct LineOutputs {
    outputs: std::sync::Arc<[Box<dyn LineOutput>]>,
    span_events: bool,
}

impl LineOutputs {
    pub fn new(outputs: Vec<Box<dyn LineOutput>>) -> Self {
        let span_events = outputs.iter().any(|o| o.takes_span_events());
        Self {
            outputs: outputs.into(),
            span_events,
        }
    }

    /// The outputs of the current tracing dispatcher, if it has them (ours does; a test's own subscriber does not,
    /// and then gets the lines as `sling line` tracing events).
    pub fn current() -> Option<Self> {
        tracing::dispatcher::get_default(|d| d.downcast_ref::<Self>().cloned())
    }
}

/// One Sling line inside the attempt span: to each of `outputs` (or, without them, as a `sling line` tracing event
/// with the same fields), and, when `span_event` (the attempt's first `MAX_EVENTS_PER_SPAN` lines, within
/// `MAX_SPAN_EVENT_TEXT_PER_ATTEMPT`), as a span event: by the output that takes them, or as a tracing event (see
/// `LINE_SPAN_EVENT`).
pub fn sling_line(
    outputs: Option<&LineOutputs>,
    pipeline: &str,
    job_id: &str,
    attempt: u32,
    line: &RedactedLine,
    span_event: bool,
) {
    let time = line.time.as_deref().unwrap_or("");
    // A plain string field, not a format string: every layer takes it as it is, without the formatting machinery.
    let msg = line.message.as_str();
    macro_rules! at_level {
        ($event:ident) => {
            match line.level {
                Level::Trace => $event!(tracing::Level::TRACE),
                Level::Debug => $event!(tracing::Level::DEBUG),
                Level::Info => $event!(tracing::Level::INFO),
                Level::Warn => $event!(tracing::Level::WARN),
                Level::Error => $event!(tracing::Level::ERROR),
            }
        };
    }
    let mut twin = span_event;
    match outputs {
        Some(outputs) => {
            let line = SlingLine {
                level: tracing_level(line.level),
                message: msg,
                pipeline,
                sync_job_id: job_id,
                attempt,
                sling_time: time,
                observed: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default(),
                span_event,
            };
            for output in outputs.outputs.iter() {
                output.line(&line);
            }
            twin &= !outputs.span_events;
        }
        None => {
            macro_rules! line {
                ($lvl:expr) => {
                    tracing::event!(name: "sling line", target: SLING, $lvl, message = msg, pipeline, sync_job_id = job_id, attempt, sling_time = time)
                };
            }
            at_level!(line);
        }
    }
    if twin {
        let msg = span_event_text(msg);
        let msg = msg.as_ref();
        macro_rules! span_event {
            ($lvl:expr) => {
                tracing::event!(name: LINE_SPAN_EVENT, target: SLING, $lvl, message = msg)
            };
        }
        at_level!(span_event);
    }
}

fn tracing_level(level: Level) -> tracing::Level {
    match level {
        Level::Trace => tracing::Level::TRACE,
        Level::Debug => tracing::Level::DEBUG,
        Level::Info => tracing::Level::INFO,
        Level::Warn => tracing::Level::WARN,
        Level::Error => tracing::Level::ERROR,
    }
}

/// The verification of one pipeline run, inside its pipeline span.
pub fn verify_span(pipeline: &str, sync_job_id: &str) -> Span {
    tracing::info_span!(
        target: SYNC,
        "sync.verify",
        pipeline = %pipeline,
        sync_job_id = %sync_job_id,
        verify_status = Empty,
        drift_rows = Empty,
    )
}

/// `verify_status` (string) and `drift_rows` (int, the sum of |drift| over streams) on the verify span.
pub fn record_verify(span: &Span, report: &VerifyReport) {
    span.record("verify_status", report.status.as_str());
    span.record("drift_rows", int(report.drift_rows()));
}

/// One event per stream on the verify span. Counts are -1 when unknown (skipped, error), keeping the types stable.
/// `pipeline` is repeated from the span so that a batch output line (which shows event fields only) says whose it is.
pub fn verify_stream(pipeline: &str, stream: &str, v: &StreamVerify) {
    let warnings = v
        .warnings
        .iter()
        .map(|w| w.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let count = |n: Option<u64>| n.map(int).unwrap_or(-1);
    tracing::info!(
        target: SYNC,
        pipeline = %pipeline,
        stream = %stream,
        source_rows = count(v.source_rows),
        target_rows = count(v.target_rows),
        drift_rows = v.drift_rows.unwrap_or(0),
        status = v.status.as_str(),
        warnings = %warnings,
        note = v.note.as_deref().unwrap_or(""),
        "verify stream"
    );
}

/// The per-pipeline verification line of batch output (`verify: drift orders +3 (deletes_not_propagated)`).
pub fn verify_finished(pipeline: &str, report: &VerifyReport, summary: &Redacted) {
    let summary = summary.as_str();
    let (status, drift_rows) = (report.status.as_str(), int(report.drift_rows()));
    match report.status {
        VerifyStatus::Drift | VerifyStatus::Error => {
            tracing::warn!(target: SYNC, pipeline = %pipeline, verify_status = status, drift_rows, "{summary}")
        }
        _ => {
            tracing::info!(target: SYNC, pipeline = %pipeline, verify_status = status, drift_rows, "{summary}")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_beyond_i64_saturate_instead_of_flipping_sign() {
        assert_eq!(super::int(5u64), 5);
        assert_eq!(super::int(u64::MAX), i64::MAX);
        assert_eq!(super::int(usize::MAX), i64::MAX);
    }
}
