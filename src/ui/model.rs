//! The console's state: plain data, changed only by `apply` (engine events, in `fold.rs`), `tick` (time) and
//! `input::update` (keys). Nothing here touches the terminal or the clock, so every behaviour can be tested with
//! synthetic events.

pub use super::fold::apply;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::logbuf::LogBuffer;
use crate::sync::event::{Check, Mode, PipelineReport, Status};
use crate::sync::redact::Redacted;
use crate::telemetry::HealthSnapshot;

/// How long a status-bar message stays up.
const MESSAGE_SECONDS: i64 = 5;

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
            Shown::Done(s) => s.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineView {
    pub info: PipelineInfo,
    pub activity: Activity,
    /// The newest finished run: from the history journal at start, then from this session.
    pub last: Option<PipelineReport>,
    pub log: LogBuffer,
}

impl PipelineView {
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
            Activity::Idle => self
                .last
                .as_ref()
                .map_or(Shown::Never, |r| Shown::Done(r.status)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    #[default]
    Pipelines,
    Detail,
    Log,
}

impl Pane {
    pub const ALL: [Pane; 3] = [Pane::Pipelines, Pane::Detail, Pane::Log];
}

/// Which log the log pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogSource {
    /// The selected pipeline's Sling output, from the model.
    #[default]
    Sling,
    /// The wrapper's own diagnostics, from tui-logger.
    Engine,
}

/// What a confirmation dialog would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Backfill { pipeline: String, target: String },
    Cancel { pipeline: String },
    Quit { active: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    /// `yes` is the highlighted button; it starts on No.
    Confirm {
        what: Confirm,
        yes: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub at: DateTime<Utc>,
}

/// Everything needed to build the first model.
#[derive(Debug, Clone)]
pub struct ModelInit {
    pub mission_cluster_id: String,
    pub pipelines: Vec<PipelineInfo>,
    /// The newest journal record of each pipeline (`StateStore::last_runs`).
    pub history: Vec<PipelineReport>,
    pub max_attempts: u32,
    pub telemetry_enabled: bool,
    pub no_color: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub mission_cluster_id: String,
    pub telemetry_enabled: bool,
    pub health: Option<HealthSnapshot>,
    /// Jobs started in this session and not finished, oldest first.
    pub active_jobs: Vec<String>,
    /// The newest finished job (from the journal at start).
    pub last_job: Option<String>,
    pub pipelines: Vec<PipelineView>,
    pub max_attempts: u32,
    pub no_color: bool,
    pub now: DateTime<Utc>,

    // View state.
    /// Index into `visible()`.
    pub selected: usize,
    pub focus: Pane,
    pub filter: String,
    pub filter_editing: bool,
    pub overlay: Option<Overlay>,
    pub detail_scroll: u16,
    pub log_source: LogSource,
    /// Height of the log pane's text area in the last frame; the console sets it before each draw.
    pub log_rows: u16,
    pub message: Option<Message>,
    /// The operator asked to quit (after confirming, when runs were active).
    pub quit: bool,
    /// The console is waiting for runs to stop before it exits.
    pub stopping: bool,
}

impl Model {
    pub fn new(init: ModelInit) -> Self {
        let mut pipelines: Vec<PipelineView> = init
            .pipelines
            .into_iter()
            .map(|info| PipelineView {
                info,
                activity: Activity::Idle,
                last: None,
                log: LogBuffer::default(),
            })
            .collect();
        let mut last_job: Option<&PipelineReport> = None;
        for r in &init.history {
            if last_job.is_none_or(|j| r.finished_at > j.finished_at) {
                last_job = Some(r);
            }
            if let Some(p) = pipelines.iter_mut().find(|p| p.info.name == r.pipeline) {
                p.last = Some(r.clone());
            }
        }
        Self {
            mission_cluster_id: init.mission_cluster_id,
            telemetry_enabled: init.telemetry_enabled,
            health: None,
            active_jobs: Vec::new(),
            last_job: last_job.map(|r| r.sync_job_id.clone()),
            pipelines,
            max_attempts: init.max_attempts.max(1),
            no_color: init.no_color,
            now: init.now,
            selected: 0,
            focus: Pane::Pipelines,
            filter: String::new(),
            filter_editing: false,
            overlay: None,
            detail_scroll: 0,
            log_source: LogSource::Sling,
            log_rows: 10,
            message: None,
            quit: false,
            stopping: false,
        }
    }

    /// Indices of the pipelines that pass the filter (case-insensitive substring of the name).
    pub fn visible(&self) -> Vec<usize> {
        let needle = self.filter.to_lowercase();
        self.pipelines
            .iter()
            .enumerate()
            .filter(|(_, p)| needle.is_empty() || p.info.name.to_lowercase().contains(&needle))
            .map(|(i, _)| i)
            .collect()
    }

    pub fn selected_index(&self) -> Option<usize> {
        self.visible().get(self.selected).copied()
    }

    pub fn selected_pipeline(&self) -> Option<&PipelineView> {
        self.selected_index().map(|i| &self.pipelines[i])
    }

    pub fn selected_pipeline_mut(&mut self) -> Option<&mut PipelineView> {
        self.selected_index().map(|i| &mut self.pipelines[i])
    }

    pub fn pipeline_mut(&mut self, name: &str) -> Option<&mut PipelineView> {
        self.pipelines.iter_mut().find(|p| p.info.name == name)
    }

    pub fn pipeline(&self, name: &str) -> Option<&PipelineView> {
        self.pipelines.iter().find(|p| p.info.name == name)
    }

    /// The job shown in the header: the newest active one, else the last finished.
    pub fn current_job(&self) -> Option<(&str, bool)> {
        self.active_jobs
            .last()
            .map(|j| (j.as_str(), true))
            .or_else(|| self.last_job.as_deref().map(|j| (j, false)))
    }

    pub fn count(&self, f: impl Fn(Shown) -> bool) -> usize {
        self.pipelines.iter().filter(|p| f(p.shown())).count()
    }

    /// Pipelines queued or running; quitting would cancel them.
    pub fn active_count(&self) -> usize {
        self.pipelines.iter().filter(|p| p.is_active()).count()
    }

    pub fn say(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
            at: self.now,
        });
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
            at: self.now,
        });
    }

    /// Keeps `selected` inside the visible list, preferring the pipeline that was selected.
    pub fn reselect(&mut self, previous: Option<usize>) {
        let visible = self.visible();
        self.selected = previous
            .and_then(|p| visible.iter().position(|&i| i == p))
            .unwrap_or(0)
            .min(visible.len().saturating_sub(1));
    }
}

/// Advances the model's clock: expires the status message. Countdowns are computed from deadlines at render time.
pub fn tick(model: &mut Model, now: DateTime<Utc>) {
    model.now = now;
    if model
        .message
        .as_ref()
        .is_some_and(|m| (now - m.at).num_seconds() >= MESSAGE_SECONDS)
    {
        model.message = None;
    }
}
