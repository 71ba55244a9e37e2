//! The log pane: the selected pipeline's Sling output from the model (only the visible window is formatted), or
//! the wrapper's own diagnostics from tui-logger.

use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tui_logger::TuiLoggerWidget;

use super::format::{clean, thousands};
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
    let lines: Vec<Line> = p.log.window(rows).map(|e| line(e, theme)).collect();
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

fn line<'a>(e: &LogEntry, theme: &Theme) -> Line<'a> {
    if e.marker {
        return Line::from(styled(clean(&e.text), theme.marker()));
    }
    Line::from(vec![
        styled(
            format!("{:<8} ", e.time.as_deref().unwrap_or("")),
            theme.dim(),
        ),
        styled(tag(e.level), theme.level(e.level)),
        Span::raw(" "),
        styled(clean(&e.text), theme.level(e.level)),
    ])
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
