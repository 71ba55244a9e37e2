//! The bottom line: the filter prompt, or a short-lived message followed by the key hints of the live scope.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::styled;
use super::theme::Theme;
use crate::ui::input::scope;
use crate::ui::keys;
use crate::ui::model::Model;

pub fn render(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let mut spans: Vec<Span> = Vec::new();
    if model.stopping {
        spans.push(styled(
            format!(
                " stopping: waiting for {} run(s) to end… ",
                model.active_count()
            ),
            theme.error(),
        ));
    } else if model.filter_editing {
        spans.push(styled(" filter: ", theme.bold()));
        spans.push(Span::raw(format!("{}█ ", model.filter)));
    } else if let Some(m) = &model.message {
        let style = if m.error { theme.error() } else { theme.bold() };
        spans.push(styled(format!(" {} ", m.text), style));
        spans.push(styled("│", theme.dim()));
    }
    let mut used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let width = usize::from(area.width);
    for (keys, word) in keys::hints(scope(model)) {
        let key = keys.split(' ').next().unwrap_or(keys);
        let len = key.chars().count() + word.chars().count() + 2;
        if used + len > width {
            break;
        }
        used += len;
        spans.push(Span::raw(" "));
        spans.push(styled(key, theme.key()));
        spans.push(Span::raw(format!(" {word}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
