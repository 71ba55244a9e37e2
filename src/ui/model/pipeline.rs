//! One pipeline as the console sees it: what its files say (`PipelineInfo`), what it is doing now (`Activity`, a
//! `Run` with its retries and live progress), and what its status column shows (`Shown`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::sync::event::{Check, Mode, PipelineReport, Status};
use crate::sync::redact::Redacted;
use crate::ui::logbuf::LogBuffer;

/// One stream of a pipeline, as shown in the detail pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    /// Sling's mode for the stream (`incremental`, `full-refresh`, …), if the file says.
    pub mode: Option<String>,
}

/// What the console knows about a pipeline without running it. Text is already redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineInfo {
    pub name: String,
    pub source: String,
    pub target: String,
    pub streams: Vec<StreamInfo>,
    pub state_path: String,
    /// The replication file could not be read or parsed.
    pub problem: Option<String>,
}

/// A scheduled retry: the deadline is stored, the countdown is computed from it at render time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub next_attempt: u32,
    pub max_attempts: u32,
    pub at: DateTime<Utc>,
}

/// A run in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub job_id: String,
    pub mode: Mode,
    pub attempt: u32,
    pub max_attempts: u32,
    pub started_at: DateTime<Utc>,
    pub retry: Option<Retry>,
    /// Rows of earlier attempts, so the live total is `rows_before + this attempt's total`.
    pub rows_before: u64,
    pub rows: u64,
    pub streams: BTreeMap<String, u64>,
    pub error: Option<Redacted>,
    pub checks: Vec<Check>,
    pub cancel_requested: bool,
    /// The running stream's rows so far (Sling's progress ticks), until its `inserted N rows` line counts them.
    pub progress: Option<LiveProgress>,
}

/// Who holds a pipeline's run lock, as the lock file says (`pid … job … since …`), and which of our jobs it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub holder: String,
    pub refused_job: String,
}

/// Rows so far of the stream that is copying now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveProgress {
    pub stream: Option<String>,
    pub rows: u64,
    pub rows_per_sec: Option<u64>,
}

impl Run {
    /// Rows of this run so far: counted streams plus the running stream's progress.
    pub fn rows_so_far(&self) -> u64 {
        self.rows + self.progress.as_ref().map_or(0, |p| p.rows)
    }
}

/// What a pipeline is doing now.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    Idle,
    /// Asked for (`job_id` is `None` until the engine's `JobStarted` says which job took it, or its `RunRefused` puts
    /// the row back) or waiting for earlier pipelines of its job.
    Queued {
        job_id: Option<String>,
        mode: Mode,
    },
    Active(Box<Run>),
}

/// The status column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Never,
    Queued,
    Running,
    Retrying,
    Cancelling,
    /// Refused because another process holds the run lock; not a failure.
    Busy,
    Done(Status),
}

impl Shown {
    pub fn label(self) -> &'static str {
        match self {
            Shown::Never => "never run",
            Shown::Queued => "queued",
            Shown::Running => "running",
            Shown::Retrying => "retrying",
            Shown::Cancelling => "cancelling",
            Shown::Busy => "busy",
            Shown::Done(s) => s.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineView {
    pub info: PipelineInfo,
    pub activity: Activity,
    /// The newest finished sync run (incremental or backfill): from the history journal at start, then from this
    /// session. The status column and the header counts come from it.
    pub last: Option<PipelineReport>,
    /// The newest noop, kept apart so that validating a pipeline never hides how its last sync went.
    pub last_noop: Option<PipelineReport>,
    /// Another process holds the run lock: our last run was refused. Not a failure; cleared when the lock is free.
    pub locked: Option<Locked>,
    pub log: LogBuffer,
}

impl PipelineView {
    /// A pipeline just found on disk: idle, no runs known yet.
    pub fn idle(info: PipelineInfo) -> Self {
        Self {
            info,
            activity: Activity::Idle,
            last: None,
            last_noop: None,
            locked: None,
            log: LogBuffer::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn run(&self) -> Option<&Run> {
        match &self.activity {
            Activity::Active(r) => Some(r),
            _ => None,
        }
    }

    /// Queued or running: the engine owns it until it finishes.
    pub fn is_active(&self) -> bool {
        !matches!(self.activity, Activity::Idle)
    }

    pub fn shown(&self) -> Shown {
        match &self.activity {
            Activity::Queued { .. } => Shown::Queued,
            Activity::Active(r) if r.cancel_requested => Shown::Cancelling,
            Activity::Active(r) if r.retry.is_some() => Shown::Retrying,
            Activity::Active(_) => Shown::Running,
            Activity::Idle if self.locked.is_some() => Shown::Busy,
            Activity::Idle => self
                .last
                .as_ref()
                .map_or(Shown::Never, |r| Shown::Done(r.status)),
        }
    }
}
