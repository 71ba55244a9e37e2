//! The bottom line: the filter prompt, or a short-lived message followed by the key hints of the live scope.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::styled;
use super::theme::Theme;
use crate::ui::keys::{self, Scope};
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
    }
    // Status messages are drawn above this line (view::message), so they never push a hint out.
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    for (i, (key, word)) in fitting(
        keys::scope(model),
        usize::from(area.width).saturating_sub(used),
    )
    .into_iter()
    .enumerate()
    {
        spans.push(Span::raw(if i == 0 && used == 0 { " " } else { "  " }));
        spans.push(styled(key, theme.key()));
        spans.push(Span::raw(format!(" {word}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The hints that fit in `width`. The last two of a scope (help and quit, or their dialog equivalents) always stay;
/// the others are kept from the front while there is room.
fn fitting(scope: Scope, width: usize) -> Vec<(String, &'static str)> {
    let all: Vec<(String, &'static str)> = keys::hints(scope)
        .map(|(label, word)| {
            // In the main scope one key says enough; in dialogs and prompts "n/Esc" matters.
            let key = match scope {
                Scope::Main => label.split(' ').next().unwrap_or(label).to_string(),
                _ => label.replace(' ', "/"),
            };
            (key, word)
        })
        .collect();
    let cost = |(k, w): &(String, &str)| k.chars().count() + w.chars().count() + 3;
    let keep_from = all.len().saturating_sub(2);
    // The first hint needs one space before it, not two.
    let mut budget = (width + 1).saturating_sub(all[keep_from..].iter().map(cost).sum());
    let mut out = Vec::with_capacity(all.len());
    for (i, h) in all.iter().enumerate() {
        if i >= keep_from || cost(h) <= budget {
            if i < keep_from {
                budget -= cost(h);
            }
            out.push(h.clone());
        } else {
            // Stop at the first that does not fit, so the order on screen stays the order of the key list.
            budget = 0;
        }
    }
    out
}
