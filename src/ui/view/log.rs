//! The log pane: the selected pipeline's Sling output from the model (only the visible window is formatted), or
//! the wrapper's own diagnostics from tui-logger.

use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tui_logger::TuiLoggerWidget;

use super::format::{clean, thousands, wrap};
use super::theme::Theme;
use super::{focused, pane, styled};
use crate::sync::sling_log::Level;
use crate::ui::logbuf::LogEntry;
use crate::ui::model::{LogSource, Model, Pane};

pub fn render(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let has_focus = focused(model, Pane::Log);
    if model.log_source == LogSource::Engine {
        engine(frame, area, has_focus, theme);
        return;
    }
    let Some(p) = model.selected_pipeline() else {
        frame.render_widget(pane("Sling log", Vec::new(), has_focus, theme), area);
        return;
    };
    let mut title = vec![Span::raw(format!("· {} · ", p.name()))];
    if p.log.following() {
        title.push(Span::raw("following "));
    } else {
        title.push(styled(
            format!("{} lines up (G follows) ", p.log.scroll()),
            theme.bold(),
        ));
    }
    if p.log.dropped > 0 {
        title.push(styled(
            format!("· dropped {} lines ", thousands(p.log.dropped)),
            theme.error(),
        ));
    }
    let rows = usize::from(area.height.saturating_sub(2));
    let width = usize::from(area.width.saturating_sub(2));
    // Long lines wrap (continuations indented under the text); the newest lines stay at the bottom, so only the
    // last `rows` wrapped rows of the window are kept.
    let mut lines: Vec<Line> = p
        .log
        .window(rows)
        .flat_map(|e| wrapped(e, width, theme))
        .collect();
    lines.drain(..lines.len().saturating_sub(rows));
    let text = if lines.is_empty() {
        vec![Line::from("no output yet: r runs this pipeline")]
    } else {
        lines
    };
    frame.render_widget(
        Paragraph::new(text).block(pane("Sling log", title, has_focus, theme)),
        area,
    );
}

fn tag(level: Level) -> &'static str {
    match level {
        Level::Trace => "TRC",
        Level::Debug => "DBG",
        Level::Info => "INF",
        Level::Warn => "WRN",
        Level::Error => "ERR",
    }
}

/// Width of `HH:MM:SS LVL ` before a Sling line's text.
const PREFIX_W: usize = 13;

fn wrapped<'a>(e: &LogEntry, width: usize, theme: &Theme) -> Vec<Line<'a>> {
    let text = clean(&e.text);
    if e.marker {
        return wrap(&text, width, width)
            .into_iter()
            .map(|chunk| Line::from(styled(chunk, theme.marker())))
            .collect();
    }
    let room = width.saturating_sub(PREFIX_W).max(10);
    let style = theme.level(e.level);
    wrap(&text, room, room)
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            if i == 0 {
                Line::from(vec![
                    styled(
                        format!("{:<8} ", e.time.as_deref().unwrap_or("")),
                        theme.dim(),
                    ),
                    styled(tag(e.level), style),
                    Span::raw(" "),
                    styled(chunk, style),
                ])
            } else {
                Line::from(vec![Span::raw(" ".repeat(PREFIX_W)), styled(chunk, style)])
            }
        })
        .collect()
}

/// tui-logger keeps its own global buffer, so this is the one part of the screen not drawn from the model.
fn engine(frame: &mut Frame, area: Rect, has_focus: bool, theme: &Theme) {
    let widget = TuiLoggerWidget::default()
        .block(pane(
            "Wrapper log",
            vec![Span::raw("e: back to Sling output ")],
            has_focus,
            theme,
        ))
        .output_separator(' ')
        .output_timestamp(Some("%H:%M:%S".into()))
        .output_level(Some(tui_logger::TuiLoggerLevelOutput::Abbreviated))
        .output_target(false)
        .output_file(false)
        .output_line(false)
        .opt_style_error(theme.color(Color::Red))
        .opt_style_warn(theme.color(Color::Yellow));
    frame.render_widget(widget, area);
}
