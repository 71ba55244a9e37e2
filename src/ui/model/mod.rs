//! The console's state: plain data, changed only by `apply` (engine events, in `fold.rs`), `tick` (time) and
//! `input::update` (keys). Nothing here touches the terminal or the clock, so every behaviour can be tested with
//! synthetic events.

pub use super::fold::apply;

mod from_disk;
mod pipeline;
mod view_state;

pub use from_disk::{lock_released, set_pipelines, show_history};
pub use pipeline::{
    Activity, LiveProgress, Locked, PipelineInfo, PipelineView, Retry, Run, Shown, StreamInfo,
};
pub use view_state::{Confirm, LogSource, Message, Overlay, Pane};

use chrono::{DateTime, Utc};

use super::logbuf::LogEntry;
use crate::sync::event::{Mode, PipelineReport, Status};
use crate::telemetry::HealthSnapshot;

/// How long a status-bar message stays up.
const MESSAGE_SECONDS: i64 = 5;

/// Everything needed to build the first model.
#[derive(Debug, Clone)]
pub struct ModelInit {
    pub mission_cluster_id: String,
    pub pipelines: Vec<PipelineInfo>,
    /// The newest sync and the newest noop record of each pipeline (`StateStore::history`).
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
        let mut pipelines: Vec<PipelineView> =
            init.pipelines.into_iter().map(PipelineView::idle).collect();
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
