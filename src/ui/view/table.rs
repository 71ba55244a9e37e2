//! The pipelines table: one row per visible pipeline, with a live retry countdown.

use chrono::{DateTime, Utc};
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Row, Table, TableState};
use ratatui::Frame;

use super::format::{ago, countdown, duration, thousands, truncate};
use super::theme::Theme;
use super::{focused, pane, styled};
use crate::sync::event::Mode;
use crate::ui::model::{Activity, Model, Pane, PipelineView};

const STATUS_W: u16 = 10;
const LAST_W: u16 = 8;
const ROWS_W: u16 = 11;
const DURATION_W: u16 = 8;
const ATTEMPT_W: u16 = 7;
/// Borders and the highlight symbol.
const CHROME_W: u16 = 4;
const GAPS: u16 = 6;

pub fn render(frame: &mut Frame, area: Rect, model: &Model, now: DateTime<Utc>, theme: &Theme) {
    let has_focus = focused(model, Pane::Pipelines);
    let visible = model.visible();
    let next_w: u16 = if area.width >= 100 { 20 } else { 15 };
    let fixed = STATUS_W + LAST_W + ROWS_W + DURATION_W + ATTEMPT_W + next_w + CHROME_W + GAPS;
    let name_w = area.width.saturating_sub(fixed).max(4);

    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let rows = visible.iter().map(|&i| {
        let p = &model.pipelines[i];
        let shown = p.shown();
        Row::new(vec![
            Cell::from(truncate(p.name(), usize::from(name_w))),
            Cell::from(Span::styled(shown.label(), theme.status(shown))),
            Cell::from(
                p.last
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |r| ago(r.finished_at, now)),
            ),
            right(rows_text(p)),
            right(duration_text(p, now)),
            right(attempt_text(p, model.max_attempts)),
            Cell::from(next_text(p, now)),
        ])
    });
    let header = Row::new([
        Cell::from("PIPELINE"),
        Cell::from("STATUS"),
        Cell::from("LAST RUN"),
        right("ROWS".into()),
        right("DURATION".into()),
        right("ATTEMPT".into()),
        Cell::from("NEXT"),
    ])
    .style(theme.bold());
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(STATUS_W),
        Constraint::Length(LAST_W),
        Constraint::Length(ROWS_W),
        Constraint::Length(DURATION_W),
        Constraint::Length(ATTEMPT_W),
        Constraint::Length(next_w),
    ];
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

fn rows_text(p: &PipelineView) -> String {
    match (&p.activity, &p.last) {
        (Activity::Active(run), _) => thousands(run.rows),
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

fn next_text(p: &PipelineView, now: DateTime<Utc>) -> String {
    match &p.activity {
        Activity::Active(run) => match &run.retry {
            Some(r) if !run.cancel_requested => match countdown(r.at, now) {
                None => format!("retry {}/{} now", r.next_attempt, r.max_attempts),
                Some(left) => format!("retry {}/{} in {left}", r.next_attempt, r.max_attempts),
            },
            _ => String::new(),
        },
        Activity::Queued { mode, .. } if *mode != Mode::Incremental => format!("{mode}"),
        _ => String::new(),
    }
}
