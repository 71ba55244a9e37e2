//! The protocol between the engine and its front-ends. Batch and console consume the same `SyncEvent`s and send the
//! same `Command`s; nothing else crosses the boundary.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::redact::{Redacted, RedactedLine};
use super::verify::VerifyReport;

/// How a job treats its pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Sling's own incremental checkpoint in the target decides what is copied.
    #[default]
    Incremental,
    /// Validate pipelines and environment; run nothing that writes.
    Noop,
    /// Clear the pipeline's wrapper state, then reload every stream in full (`--mode full-refresh`).
    Backfill,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Incremental => "incremental",
            Mode::Noop => "noop",
            Mode::Backfill => "backfill",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "incremental" => Ok(Mode::Incremental),
            "noop" => Ok(Mode::Noop),
            "backfill" => Ok(Mode::Backfill),
            other => Err(format!(
                "unknown mode `{other}`: expected incremental (or empty), noop or backfill"
            )),
        }
    }
}

/// The outcome of a pipeline run or a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failed,
    Cancelled,
    /// Never started: the job's deadline passed while it was queued.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a noop check looked at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `SLING_BIN --version` runs.
    Sling,
    /// `SLING_STATE_PATH` is writable.
    State,
    /// The replication file as a whole (parses, lists its streams).
    Replication,
    /// The `source` connection resolves (static) …
    Source,
    /// … and the `target` one.
    Target,
    /// `sling conns test` of the source connection.
    SourceConnection,
    /// `sling conns test` of the target connection.
    TargetConnection,
    /// `SLING_DRY_RUN=true sling run` (wildcard streams only).
    DryRun,
    /// A key Sling would ignore.
    UnknownKey,
    /// The `streams` mapping.
    Streams,
    /// A stream's mode.
    Mode,
    /// A stream's target object.
    Object,
    /// Source and target columns compared (`sling conns discover --columns`).
    Schema,
    /// Source and target checkpoints compared (`checkpoint_ahead`).
    Checkpoint,
    /// A name this version does not know, read back from a newer journal.
    Other(String),
}

impl CheckKind {
    /// The name shown to operators and stored in the journal.
    pub fn as_str(&self) -> &str {
        match self {
            CheckKind::Sling => "sling",
            CheckKind::State => "state",
            CheckKind::Replication => "replication",
            CheckKind::Source => "source",
            CheckKind::Target => "target",
            CheckKind::SourceConnection => "source connection",
            CheckKind::TargetConnection => "target connection",
            CheckKind::DryRun => "dry run",
            CheckKind::UnknownKey => "unknown key",
            CheckKind::Streams => "streams",
            CheckKind::Mode => "mode",
            CheckKind::Object => "object",
            CheckKind::Schema => "schema",
            CheckKind::Checkpoint => "checkpoint",
            CheckKind::Other(s) => s,
        }
    }

    fn from_name(name: &str) -> Self {
        [
            CheckKind::Sling,
            CheckKind::State,
            CheckKind::Replication,
            CheckKind::Source,
            CheckKind::Target,
            CheckKind::SourceConnection,
            CheckKind::TargetConnection,
            CheckKind::DryRun,
            CheckKind::UnknownKey,
            CheckKind::Streams,
            CheckKind::Mode,
            CheckKind::Object,
            CheckKind::Schema,
            CheckKind::Checkpoint,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
        .unwrap_or_else(|| CheckKind::Other(name.to_owned()))
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a check came out. A warning does not fail validation (e.g. a key Sling would ignore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckOutcome {
    Ok,
    Warning,
    Failed,
}

/// One noop check: what was checked, how it came out, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "CheckRecord", from = "CheckRecord")]
pub struct Check {
    pub kind: CheckKind,
    pub outcome: CheckOutcome,
    pub detail: Redacted,
}

impl Check {
    /// Passed or only warned: does not fail validation.
    pub fn passed(&self) -> bool {
        self.outcome != CheckOutcome::Failed
    }
}

/// The journal's shape of a check (`name`, `ok`, `warning`, `detail`), unchanged since the first version.
#[derive(Serialize, Deserialize)]
struct CheckRecord {
    name: String,
    ok: bool,
    warning: bool,
    detail: Redacted,
}

impl From<Check> for CheckRecord {
    fn from(c: Check) -> Self {
        CheckRecord {
            name: c.kind.as_str().to_owned(),
            ok: c.outcome != CheckOutcome::Failed,
            warning: c.outcome == CheckOutcome::Warning,
            detail: c.detail,
        }
    }
}

impl From<CheckRecord> for Check {
    fn from(r: CheckRecord) -> Self {
        Check {
            kind: CheckKind::from_name(&r.name),
            outcome: match (r.ok, r.warning) {
                (false, _) => CheckOutcome::Failed,
                (true, true) => CheckOutcome::Warning,
                (true, false) => CheckOutcome::Ok,
            },
            detail: r.detail,
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    pub attempt: u32,
    /// Sling's exit code, if it exited on its own.
    pub exit_code: Option<i32>,
    pub status: Status,
    pub rows: u64,
    pub streams: BTreeMap<String, u64>,
    pub reason: Option<Redacted>,
    pub retryable: bool,
    pub duration: Duration,
}

/// The record of one pipeline in one job; also what the history journal stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    pub sync_job_id: String,
    pub pipeline: String,
    pub mode: Mode,
    pub status: Status,
    pub rows: u64,
    pub streams: BTreeMap<String, u64>,
    pub attempts: u32,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub duration_seconds: f64,
    pub error: Option<Redacted>,
    /// noop checks (empty for other modes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Reconciliation after a successful run (`SYNC_VERIFY`); absent for noop, failed and cancelled runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
}

/// The result of a whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    pub sync_job_id: String,
    pub mode: Mode,
    pub status: Status,
    pub rows: u64,
    pub duration_seconds: f64,
    pub pipelines: Vec<PipelineReport>,
}

/// Everything the engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    JobStarted {
        sync_job_id: String,
        mode: Mode,
        pipelines: Vec<String>,
    },
    PipelineStarted {
        sync_job_id: String,
        pipeline: String,
        mode: Mode,
        max_attempts: u32,
    },
    AttemptStarted {
        pipeline: String,
        attempt: u32,
        max_attempts: u32,
        pid: Option<u32>,
    },
    Log {
        pipeline: String,
        attempt: u32,
        line: RedactedLine,
    },
    /// Rows counted so far in this attempt (after each row-count line).
    Rows {
        pipeline: String,
        attempt: u32,
        stream: String,
        rows: u64,
        total: u64,
    },
    /// Rows of the running stream so far, from Sling's progress ticks (about one a second). Not a final count:
    /// `Rows` (from `inserted N rows`) is.
    Progress {
        pipeline: String,
        attempt: u32,
        stream: Option<String>,
        rows: u64,
        rows_per_sec: Option<u64>,
    },
    AttemptFinished {
        pipeline: String,
        outcome: AttemptOutcome,
    },
    RetryScheduled {
        pipeline: String,
        next_attempt: u32,
        max_attempts: u32,
        delay: Duration,
        at: SystemTime,
    },
    CheckDone {
        pipeline: String,
        check: Check,
    },
    /// The pipeline's run lock is held by another process (`holder`: `pid … job … since …`), so this job did not
    /// run it. Nothing was recorded; a `PipelineFinished` follows.
    PipelineLocked {
        pipeline: String,
        sync_job_id: String,
        holder: String,
    },
    /// A `Run` the engine did not start for this pipeline (e.g. it is already running in this process).
    RunRefused {
        pipeline: String,
        reason: String,
    },
    PipelineFinished {
        report: PipelineReport,
    },
    JobFinished {
        report: JobReport,
    },
    /// Log lines the event channel had to drop because its consumer was slow.
    LinesDropped {
        pipeline: String,
        count: u64,
    },
}

/// What a front-end asks of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run {
        pipelines: Vec<String>,
        mode: Mode,
    },
    Cancel {
        pipeline: String,
    },
    CancelAll,
    /// The pipeline files were read again: runs asked for from now on choose from this list (jobs already running
    /// keep the pipelines they were given).
    SetPipelines(Vec<super::pipeline::Pipeline>),
}

/// Where the engine sends events. Lifecycle events are never dropped; log lines are dropped (and counted) when more
/// than `log_capacity` are waiting, so a slow consumer can never make the engine hold unbounded memory or block Sling.
#[derive(Clone)]
pub struct EventSink {
    tx: tokio::sync::mpsc::UnboundedSender<SyncEvent>,
    pending_logs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    log_capacity: usize,
}

/// The receiving end of an `EventSink`.
pub struct EventStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<SyncEvent>,
    pending_logs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Creates a connected sink and stream. `log_capacity == 0` means the consumer takes no log lines at all (batch
/// mode: they reach stdout through `tracing`), which saves a wake-up of the consumer per Sling line.
pub fn channel(log_capacity: usize) -> (EventSink, EventStream) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pending = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (
        EventSink {
            tx,
            pending_logs: pending.clone(),
            log_capacity,
        },
        EventStream {
            rx,
            pending_logs: pending,
        },
    )
}

impl EventSink {
    /// Sends a lifecycle event. A closed consumer is not the engine's problem: the job goes on.
    pub fn send(&self, ev: SyncEvent) {
        let _ = self.tx.send(ev);
    }

    pub fn wants_logs(&self) -> bool {
        self.log_capacity > 0
    }

    /// Sends a log event unless too many are waiting; returns `false` when the line was dropped.
    pub fn send_log(&self, ev: SyncEvent) -> bool {
        use std::sync::atomic::Ordering;
        if self.pending_logs.load(Ordering::Relaxed) >= self.log_capacity {
            return false;
        }
        self.pending_logs.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(ev).is_err() {
            self.pending_logs.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }
}

impl EventStream {
    pub async fn recv(&mut self) -> Option<SyncEvent> {
        let ev = self.rx.recv().await?;
        self.account(&ev);
        Some(ev)
    }

    pub fn try_recv(&mut self) -> Option<SyncEvent> {
        let ev = self.rx.try_recv().ok()?;
        self.account(&ev);
        Some(ev)
    }

    fn account(&self, ev: &SyncEvent) {
        if matches!(ev, SyncEvent::Log { .. }) {
            self.pending_logs
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
