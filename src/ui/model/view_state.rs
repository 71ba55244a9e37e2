//! The console's view state: the focused pane, the log source, the open overlay (help, confirmation, history)
//! and the status-bar message. Keys change it (`input::update`); the engine never does.

use chrono::{DateTime, Utc};

use crate::sync::event::PipelineReport;

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
