//! Overlays drawn over the panes: the help (built from the key list) and the confirmation dialog.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::styled;
use super::theme::Theme;
use crate::ui::keys::{self, Scope};
use crate::ui::model::Confirm;

const DIALOG_W: u16 = 72;

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// The help lines, from the same key list that drives input and the hint bar.
pub fn help_lines<'a>(theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    for scope in [Scope::Main, Scope::Dialog, Scope::Filter, Scope::Help] {
        if !lines.is_empty() {
            lines.push(Line::from(""));
        }
        lines.push(Line::from(styled(scope.title(), theme.bold())));
        for (keys, help) in keys::help(scope) {
            lines.push(Line::from(vec![
                styled(format!("  {keys:<8} "), theme.key()),
                Span::raw(help),
            ]));
        }
    }
    lines
}

pub fn help(frame: &mut Frame, area: Rect, scroll: u16, theme: &Theme) {
    let lines = help_lines(theme);
    let content = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let rect = centered(area, 78, content.saturating_add(2));
    let visible = rect.height.saturating_sub(2);
    let scroll = scroll.min(content.saturating_sub(visible));
    let more = if content > visible + scroll {
        " ↓ more "
    } else {
        ""
    };
    let block = Block::bordered()
        .border_style(theme.bold())
        .title(Line::from(styled(
            " Help · Esc or ? closes ",
            theme.title(true),
        )))
        .title_bottom(Line::from(more).right_aligned());
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), rect);
}

pub fn confirm(frame: &mut Frame, area: Rect, what: &Confirm, yes: bool, theme: &Theme) {
    let (title, body): (String, Vec<Line>) = match what {
        Confirm::Backfill { pipeline, target } => (
            format!(" Backfill {pipeline}? "),
            vec![
                Line::from(vec![
                    Span::raw("Backfill pipeline "),
                    styled(pipeline.clone(), theme.bold()),
                    Span::raw(": its target"),
                ]),
                Line::from(styled(target.clone(), theme.bold())),
                Line::from(vec![
                    Span::raw("is "),
                    styled("fully reloaded", theme.error()),
                    Span::raw(": every stream is copied again from scratch."),
                ]),
            ],
        ),
        Confirm::Cancel { pipeline } => (
            format!(" Cancel {pipeline}? "),
            vec![
                Line::from(vec![
                    Span::raw("Cancel the running pipeline "),
                    styled(pipeline.clone(), theme.bold()),
                    Span::raw("?"),
                ]),
                Line::from("Sling is stopped (SIGINT) and the run is recorded as cancelled."),
            ],
        ),
        Confirm::Quit { active } => (
            " Quit? ".to_string(),
            vec![
                Line::from(vec![
                    styled(format!("{active} pipeline(s)"), theme.bold()),
                    Span::raw(" are queued or running."),
                ]),
                Line::from("Quitting cancels them (Sling gets SIGINT) and waits for them to stop."),
            ],
        ),
    };
    let button = |label: &str, on: bool| {
        let style = if on {
            theme.selected(true)
        } else {
            theme.base()
        };
        styled(format!("[ {label} ]"), style)
    };
    let mut lines = body;
    lines.push(Line::from(""));
    lines.push(
        Line::from(vec![
            button("No", !yes),
            Span::raw("   "),
            button("Yes", yes),
        ])
        .centered(),
    );
    lines.push(
        Line::from(styled(
            "y yes · n/Esc no · Enter presses the highlighted button",
            theme.dim(),
        ))
        .centered(),
    );
    // Long targets wrap: size the dialog for the wrapped text so the buttons are never cut off.
    let inner = usize::from(area.width.min(DIALOG_W).saturating_sub(2)).max(1);
    // Word wrapping can need a row more than the character count says.
    let rows: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner) + usize::from(l.width() > inner))
        .sum();
    let rect = centered(area, DIALOG_W, u16::try_from(rows + 2).unwrap_or(u16::MAX));
    let block = Block::bordered()
        .border_style(theme.bold())
        .title(Line::from(styled(title, theme.title(true))));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        rect,
    );
}
