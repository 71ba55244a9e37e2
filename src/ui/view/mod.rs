//! Rendering: pure functions of `&Model` and a `now` passed in (never the clock), so a frame can be reproduced in
//! tests. Only the visible part of each list is formatted, so cost does not grow with the log buffers.

pub mod format;
pub mod theme;

mod detail;
mod footer;
mod header;
mod log;
mod overlay;
mod table;
mod verify;

use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::model::{Model, Overlay, Pane};
use theme::Theme;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// From this width the detail and log panes sit side by side.
const WIDE: u16 = 120;
const DETAIL_HEIGHT: u16 = 8;

/// Where each part goes; recomputed every frame, never cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub table: Rect,
    pub detail: Rect,
    pub log: Rect,
    pub footer: Rect,
}

/// `None` when the terminal is smaller than 80x24.
pub fn layout(area: Rect, model: &Model) -> Option<Areas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let rows = u16::try_from(model.visible().len()).unwrap_or(u16::MAX);
    let table_height = rows.max(1).saturating_add(3).min((body.height / 3).max(5));
    let [table, rest] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Fill(1)]).areas(body);
    let [detail, log] = if area.width >= WIDE {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Fill(1)]).areas(rest)
    } else {
        // Stacked: the detail grows with its content (streams, checks) up to half of what is left.
        let wanted = detail::rows(model, inner_width(rest)).saturating_add(2);
        let height = wanted.clamp(DETAIL_HEIGHT, (rest.height / 2).max(DETAIL_HEIGHT));
        Layout::vertical([Constraint::Length(height), Constraint::Fill(1)]).areas(rest)
    };
    Some(Areas {
        header,
        table,
        detail,
        log,
        footer,
    })
}

fn inner_width(area: Rect) -> usize {
    usize::from(area.width.saturating_sub(2))
}

/// Text rows of the log pane for a terminal of this size (the model keeps it for paging).
pub fn log_rows(area: Rect, model: &Model) -> u16 {
    layout(area, model).map_or(1, |a| a.log.height.saturating_sub(2).max(1))
}

/// Rows the open overlay (help or history) shows at once, for paging.
pub fn overlay_rows(area: Rect, model: &Model) -> u16 {
    match &model.overlay {
        Some(Overlay::History { .. }) => overlay::history_rows(area),
        _ => overlay::help_rows(area),
    }
}

/// Draws the whole console.
pub fn render(frame: &mut Frame, model: &Model, now: DateTime<Utc>) {
    let theme = Theme::new(model.no_color);
    let area = frame.area();
    frame.buffer_mut().set_style(area, theme.base());
    let Some(areas) = layout(area, model) else {
        too_small(frame, area);
        return;
    };
    header::render(frame, areas.header, model, now, &theme);
    table::render(frame, areas.table, model, now, &theme);
    detail::render(frame, areas.detail, model, now, &theme);
    log::render(frame, areas.log, model, &theme);
    message(frame, areas, model, &theme);
    footer::render(frame, areas.footer, model, &theme);
    match &model.overlay {
        Some(Overlay::Help { scroll }) => overlay::help(frame, area, *scroll, &theme),
        Some(Overlay::Confirm { what, yes }) => overlay::confirm(frame, area, what, *yes, &theme),
        Some(Overlay::History {
            pipeline,
            runs,
            selected,
        }) => overlay::history(frame, area, pipeline, runs, *selected, &theme),
        None => {}
    }
}

/// The short-lived status message sits in the bottom border of the panes, right above the hint bar, so it never
/// takes the hints' room. Cut with `…` when longer than the border.
fn message(frame: &mut Frame, areas: Areas, model: &Model, theme: &Theme) {
    let Some(m) = &model.message else {
        return;
    };
    let left = areas.detail.x.min(areas.log.x);
    let right = areas.detail.right().max(areas.log.right());
    let row = Rect::new(
        left + 1,
        areas.log.bottom().saturating_sub(1),
        right.saturating_sub(left + 2),
        1,
    );
    let style = if m.error { theme.error() } else { theme.bold() };
    let text = format::truncate(
        &format!(" {} ", format::clean(&m.text)),
        usize::from(row.width),
    );
    frame.render_widget(Paragraph::new(Line::from(styled(text, style))), row);
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from(format!(
            "terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT})"
        )),
        Line::from(format!("now {}x{}; q quits", area.width, area.height)),
    ];
    let top = area.height.saturating_sub(2) / 2;
    let [_, middle] = Layout::vertical([Constraint::Length(top), Constraint::Fill(1)]).areas(area);
    frame.render_widget(
        Paragraph::new(text).centered().wrap(Wrap { trim: true }),
        middle,
    );
}

/// A bordered pane; the focused one has a reversed title and a bold border.
fn pane<'a>(name: &str, extra: Vec<Span<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    let mut spans = vec![Span::styled(format!(" {name} "), theme.title(focused))];
    spans.extend(extra);
    Block::bordered()
        .border_style(theme.border(focused))
        .title(Line::from(spans))
}

fn focused(model: &Model, pane: Pane) -> bool {
    model.focus == pane && model.overlay.is_none()
}

fn styled<'a>(text: impl Into<String>, style: Style) -> Span<'a> {
    Span::styled(text.into(), style)
}
