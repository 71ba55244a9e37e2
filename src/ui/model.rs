//! The console's state: plain data, changed only by `apply` (engine events, in `fold.rs`), `tick` (time) and
//! `input::update` (keys). Nothing here touches the terminal or the clock, so every behaviour can be tested with
//! synthetic events.

pub use super::fold::apply;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::logbuf::{LogBuffer, LogEntry};
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
    Backfill {
        pipeline: String,
        target: String,
    },
    Cancel {
        pipeline: String,
    },
    Quit {
        active: usize,
    },
    /// `a` with more than one pipeline to start: the ones the filter shows and that are not busy.
    RunAll {
        pipelines: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    /// `yes` is the highlighted button; it starts on No.
    Confirm {
        what: Confirm,
        yes: bool,
    },
    /// One pipeline's runs from the journal, newest first; `selected` indexes `runs`.
    History {
        pipeline: String,
        runs: Vec<PipelineReport>,
        selected: usize,
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
    /// The newest sync and the newest noop record of each pipeline (`StateStore::latest_runs`).
    pub history: Vec<PipelineReport>,
    /// The state directory in use, shown in the header.
    pub state_root: String,
    pub max_attempts: u32,
    pub telemetry_enabled: bool,
    pub no_color: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub mission_cluster_id: String,
    pub state_root: String,
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
    /// Text rows of an overlay (help, history) in the last frame, for paging; set before each draw like `log_rows`.
    pub overlay_rows: u16,
    /// The history view asked for, until the console has read the journal (`show_history`).
    pub history_request: Option<String>,
    /// `u`: read the pipeline files again, until the console has done it (`set_pipelines`).
    pub rescan_request: bool,
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
                last_noop: None,
                locked: None,
                log: LogBuffer::default(),
            })
            .collect();
        let mut last_job: Option<&PipelineReport> = None;
        for r in &init.history {
            if last_job.is_none_or(|j| r.finished_at > j.finished_at) {
                last_job = Some(r);
            }
            if let Some(p) = pipelines.iter_mut().find(|p| p.info.name == r.pipeline) {
                let slot = if r.mode == Mode::Noop {
                    &mut p.last_noop
                } else {
                    &mut p.last
                };
                if slot
                    .as_ref()
                    .is_none_or(|old| r.finished_at >= old.finished_at)
                {
                    *slot = Some(r.clone());
                }
            }
        }
        // After a restart the log pane starts with what the journal says about the last runs, so a failed
        // pipeline shows its error rather than an empty pane.
        for p in &mut pipelines {
            let mut known: Vec<&PipelineReport> = p.last.iter().chain(&p.last_noop).collect();
            known.sort_by_key(|r| r.finished_at);
            let lines: Vec<String> = known.into_iter().map(journal_line).collect();
            for line in lines {
                p.log.push(LogEntry::marker(line));
            }
        }
        Self {
            mission_cluster_id: init.mission_cluster_id,
            state_root: init.state_root,
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
            overlay_rows: 10,
            history_request: None,
            rescan_request: false,
            message: None,
            quit: false,
            stopping: false,
        }
    }

    /// The failed count of the header: pipelines whose last sync failed and that are not running again.
    pub fn failed_count(&self) -> usize {
        self.count(|s| s == Shown::Done(Status::Failed))
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
/// `failed: <reason>`, without saying the status twice when the reason starts with it (`cancelled: context
/// canceled` rather than `cancelled: cancelled: context canceled`).
pub fn outcome_text(status: Status, reason: Option<&str>) -> String {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return status.to_string();
    };
    let word = status.as_str();
    let rest = reason
        .strip_prefix(word)
        .filter(|r| r.is_empty() || r.starts_with(':') || r.starts_with(' '))
        .map(|r| r.trim_start_matches(':').trim());
    match rest {
        Some("") => word.to_string(),
        Some(r) => format!("{word}: {r}"),
        None => format!("{word}: {reason}"),
    }
}

/// The log pane's first line for a run known from the journal.
fn journal_line(r: &PipelineReport) -> String {
    let when = r.finished_at.format("%Y-%m-%d %H:%M");
    let what = match (&r.error, r.status) {
        (Some(e), _) => outcome_text(r.status, Some(e)),
        (None, Status::Success) if r.mode != Mode::Noop => {
            format!("success: {} rows", super::view::format::thousands(r.rows))
        }
        (None, s) => s.to_string(),
    };
    format!("── journal {when}Z: {} {what} ──", r.mode)
}

/// The lock that refused a run is free again: the row goes back to what the journal now says (the other holder
/// may have recorded a run). `runs` is the pipeline's journal, newest first.
pub fn lock_released(model: &mut Model, pipeline: &str, runs: &[PipelineReport]) {
    let Some(p) = model.pipeline_mut(pipeline) else {
        return;
    };
    if p.locked.take().is_none() {
        return;
    }
    let newest = |noop: bool| {
        runs.iter()
            .find(|r| (r.mode == Mode::Noop) == noop)
            .cloned()
    };
    if let Some(r) = newest(false) {
        if p.last
            .as_ref()
            .is_none_or(|old| r.finished_at > old.finished_at)
        {
            p.last = Some(r);
        }
    }
    if let Some(r) = newest(true) {
        if p.last_noop
            .as_ref()
            .is_none_or(|old| r.finished_at > old.finished_at)
        {
            p.last_noop = Some(r);
        }
    }
    p.log
        .push(LogEntry::marker("── the run lock is free again ──"));
}

/// The pipeline files as read again: new ones appear, removed ones go (unless still queued or running: they stay
/// until they finish), the others keep their state and log. The selection stays on the same pipeline.
pub fn set_pipelines(model: &mut Model, infos: Vec<PipelineInfo>) {
    let previous = model.selected_pipeline().map(|p| p.info.name.clone());
    let mut old: Vec<PipelineView> = std::mem::take(&mut model.pipelines);
    let before = old.len();
    let mut added = 0;
    let mut views: Vec<PipelineView> = Vec::with_capacity(infos.len());
    for info in infos {
        match old.iter().position(|p| p.info.name == info.name) {
            Some(i) => {
                let mut v = old.swap_remove(i);
                v.info = info;
                views.push(v);
            }
            None => {
                added += 1;
                views.push(PipelineView {
                    info,
                    activity: Activity::Idle,
                    last: None,
                    last_noop: None,
                    locked: None,
                    log: LogBuffer::default(),
                });
            }
        }
    }
    let busy: Vec<PipelineView> = old.into_iter().filter(|p| p.is_active()).collect();
    let gone = before + added - views.len() - busy.len();
    views.extend(busy);
    views.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    model.pipelines = views;
    let index = previous.and_then(|n| model.pipelines.iter().position(|p| p.info.name == n));
    model.reselect(index);
    model.say(format!(
        "pipeline files read again: {} pipeline(s), {added} new, {gone} gone",
        model.pipelines.len()
    ));
}

/// Opens the history view with what the console read from the journal (newest first).
pub fn show_history(model: &mut Model, pipeline: String, runs: Vec<PipelineReport>) {
    model.overlay = Some(Overlay::History {
        pipeline,
        runs,
        selected: 0,
    });
}
