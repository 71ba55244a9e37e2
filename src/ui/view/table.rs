//! The pipelines table: one row per visible pipeline, with a live retry countdown.

use chrono::{DateTime, Utc};
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Row, Table, TableState};
use ratatui::Frame;

use super::format::{ago, countdown, duration, thousands, truncate};
use super::theme::Theme;
use super::{focused, pane, styled, verify};
use crate::sync::event::Mode;
use crate::ui::model::{Activity, Model, Pane, PipelineView, Shown};

/// Borders and the highlight symbol.
const CHROME_W: u16 = 4;
/// A name is never cut shorter than this while other columns could give way.
const MIN_NAME_W: usize = 12;

/// One column: header (long and short form), the text of each visible row and, where it has one, each row's style.
struct Column {
    header: (&'static str, &'static str),
    cells: Vec<String>,
    right: bool,
    styles: Option<Vec<Style>>,
}

impl Column {
    fn width(&self, short: bool) -> usize {
        let header = if short { self.header.1 } else { self.header.0 };
        self.cells
            .iter()
            .map(|c| c.chars().count())
            .chain([header.chars().count()])
            .max()
            .unwrap_or(0)
    }
}

pub fn render(frame: &mut Frame, area: Rect, model: &Model, now: DateTime<Utc>, theme: &Theme) {
    let has_focus = focused(model, Pane::Pipelines);
    let visible = model.visible();
    let pipelines: Vec<&PipelineView> = visible.iter().map(|&i| &model.pipelines[i]).collect();
    let shown: Vec<Shown> = pipelines.iter().map(|p| p.shown()).collect();
    let col = |header, right, f: &dyn Fn(&PipelineView) -> String| Column {
        header,
        cells: pipelines.iter().map(|p| f(p)).collect(),
        right,
        styles: None,
    };
    // Every column is as wide as its content; the name gets what is left, up to its longest name, and any room
    // beyond that goes to the last column, so a wide terminal does not stretch the names.
    let mut columns = vec![
        Column {
            header: ("STATUS", "STATUS"),
            cells: shown.iter().map(|s| s.label().to_string()).collect(),
            right: false,
            styles: Some(shown.iter().map(|s| theme.status(*s)).collect()),
        },
        col(("LAST RUN", "LAST"), false, &|p| last_run_text(p, now)),
        col(("ROWS", "ROWS"), true, &rows_text),
        Column {
            header: ("VERIFY", "VFY"),
            cells: pipelines.iter().map(|p| verify_text(p)).collect(),
            right: false,
            styles: Some(
                pipelines
                    .iter()
                    .map(|p| verify::style(shown_verify(p), theme))
                    .collect(),
            ),
        },
        col(("DURATION", "TOOK"), true, &|p| duration_text(p, now)),
        col(("ATTEMPT", "TRY"), true, &|p| {
            attempt_text(p, model.max_attempts)
        }),
        col(("RATE", "RATE"), true, &rate_text),
        col(("NEXT", "NEXT"), false, &|p| next_text(p, now, false)),
    ];
    // The rate of a running stream only takes room while some stream reports one.
    columns.retain(|c| c.header.0 != "RATE" || c.cells.iter().any(|t| !t.is_empty()));
    let longest_name = pipelines
        .iter()
        .map(|p| p.name().chars().count())
        .chain(["PIPELINE".len()])
        .max()
        .unwrap_or(0);
    let room = usize::from(area.width.saturating_sub(CHROME_W)).saturating_sub(columns.len());
    let others = |short| columns.iter().map(|c| c.width(short)).sum::<usize>();
    // Short headers only when the long ones would cut a name; then the countdown drops the attempt it leads to as
    // well (TRY already shows the attempt that failed).
    let short = longest_name + others(false) > room;
    if short {
        if let Some(next) = columns.iter_mut().find(|c| c.header.0 == "NEXT") {
            next.cells = pipelines.iter().map(|p| next_text(p, now, true)).collect();
        }
    }
    let others = |short| columns.iter().map(|c| c.width(short)).sum::<usize>();
    let name_w = room
        .saturating_sub(others(short))
        .clamp(MIN_NAME_W.min(longest_name), longest_name);

    let cell = |text: String, right: bool| {
        let line = Line::from(text);
        Cell::from(if right {
            line.alignment(Alignment::Right)
        } else {
            line
        })
    };
    let rows = pipelines.iter().enumerate().map(|(row, p)| {
        let mut cells = vec![Cell::from(truncate(p.name(), name_w))];
        for c in &columns {
            let text = c.cells[row].clone();
            cells.push(match &c.styles {
                Some(styles) => Cell::from(Span::styled(text, styles[row])),
                None => cell(text, c.right),
            });
        }
        Row::new(cells)
    });
    let mut header = vec![Cell::from("PIPELINE")];
    header.extend(columns.iter().map(|c| {
        cell(
            (if short { c.header.1 } else { c.header.0 }).to_string(),
            c.right,
        )
    }));
    let header = Row::new(header).style(theme.bold());
    let mut widths = vec![Constraint::Length(
        u16::try_from(name_w).unwrap_or(u16::MAX),
    )];
    let last = columns.len() - 1;
    widths.extend(columns.iter().enumerate().map(|(i, c)| {
        let w = u16::try_from(c.width(short)).unwrap_or(u16::MAX);
        if i == last {
            Constraint::Min(w)
        } else {
            Constraint::Length(w)
        }
    }));
    let mut title = vec![Span::raw(format!(
        "{}/{} ",
        visible.len(),
        model.pipelines.len()
    ))];
    if model.filter_editing || !model.filter.is_empty() {
        title.push(styled(format!("filter: {} ", model.filter), theme.bold()));
    }
    let table = Table::new(rows, widths)
        .header(header)
        .block(pane("Pipelines", title, has_focus, theme))
        .column_spacing(1)
        .row_highlight_style(theme.selected(has_focus))
        .highlight_symbol("> ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state =
        TableState::default().with_selected((!visible.is_empty()).then_some(model.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

/// When the last run finished. While a run is active the previous run's age would read as this run's, so it says
/// `now` (the detail pane shows the previous run).
fn last_run_text(p: &PipelineView, now: DateTime<Utc>) -> String {
    match (&p.activity, &p.last) {
        (Activity::Active(_), _) => "now".into(),
        (_, Some(r)) => ago(r.finished_at, now),
        _ => "-".into(),
    }
}

/// The verification of the last finished sync; nothing while a new run is under way (its rows are not verified yet).
fn shown_verify(p: &PipelineView) -> Option<&crate::sync::verify::VerifyReport> {
    match (&p.activity, &p.last) {
        (Activity::Idle, Some(r)) => r.verify.as_ref(),
        _ => None,
    }
}

fn verify_text(p: &PipelineView) -> String {
    match (&p.activity, &p.last) {
        (Activity::Idle, Some(_)) => verify::mark(shown_verify(p)),
        (Activity::Idle, None) => "-".into(),
        _ => String::new(),
    }
}

/// Sling's rows per second for the stream copying now.
fn rate_text(p: &PipelineView) -> String {
    p.run()
        .and_then(|r| r.progress.as_ref())
        .and_then(|l| l.rows_per_sec)
        .map_or_else(String::new, |r| format!("{} r/s", thousands(r)))
}

fn rows_text(p: &PipelineView) -> String {
    match (&p.activity, &p.last) {
        (Activity::Active(run), _) => thousands(run.rows_so_far()),
        (_, Some(r)) => thousands(r.rows),
        _ => "-".into(),
    }
}

fn duration_text(p: &PipelineView, now: DateTime<Utc>) -> String {
    match (&p.activity, &p.last) {
        (Activity::Active(run), _) => {
            duration((now - run.started_at).num_milliseconds().max(0) as f64 / 1000.0)
        }
        (Activity::Idle, Some(r)) => duration(r.duration_seconds),
        _ => "-".into(),
    }
}

fn attempt_text(p: &PipelineView, max_attempts: u32) -> String {
    match (&p.activity, &p.last) {
        (Activity::Active(run), _) if run.attempt > 0 => {
            format!("{}/{}", run.attempt, run.max_attempts)
        }
        (Activity::Idle, Some(r)) => {
            let max = if r.mode == Mode::Noop {
                1
            } else {
                max_attempts
            };
            format!("{}/{}", r.attempts, max.max(r.attempts))
        }
        _ => "-".into(),
    }
}

/// The countdown to the next attempt: `2/3 in 7s`, or `in 7s` when `compact`.
fn next_text(p: &PipelineView, now: DateTime<Utc>, compact: bool) -> String {
    match &p.activity {
        Activity::Active(run) => match &run.retry {
            Some(r) if !run.cancel_requested => {
                // STATUS already says retrying: the attempt and the countdown are enough here.
                let attempt = if compact {
                    String::new()
                } else {
                    format!("{}/{} ", r.next_attempt, r.max_attempts)
                };
                match countdown(r.at, now) {
                    None => format!("{attempt}now"),
                    Some(left) => format!("{attempt}in {left}"),
                }
            }
            _ => String::new(),
        },
        Activity::Queued { mode, .. } if *mode != Mode::Incremental => format!("{mode}"),
        _ => String::new(),
    }
}
