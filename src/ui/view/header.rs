//! Two header lines: where we are (mission, job) and how things stand (counts, telemetry export health).

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::format::{ago, clean, short_id};
use super::styled;
use super::theme::Theme;
use crate::sync::event::Status;
use crate::ui::model::{Model, Shown};

pub fn render(frame: &mut Frame, area: Rect, model: &Model, now: DateTime<Utc>, theme: &Theme) {
    let job = match model.current_job() {
        Some((id, true)) => {
            let more = model.active_jobs.len().saturating_sub(1);
            let more = if more > 0 {
                format!(" (+{more})")
            } else {
                String::new()
            };
            vec![
                Span::raw("job "),
                styled(format!("{}{more}", short_id(id)), theme.bold()),
            ]
        }
        Some((id, false)) => vec![Span::raw("last job "), Span::raw(short_id(id).to_string())],
        None => vec![Span::raw("no job yet")],
    };
    let mut first = vec![
        Span::raw(" mission "),
        styled(model.mission_cluster_id.clone(), theme.bold()),
        Span::raw("  "),
    ];
    first.extend(job);
    // The state directory in use (it may be the per-user fallback), cut from the left to fit: its end says most.
    let used: usize = first.iter().map(|s| s.content.chars().count()).sum();
    let room = usize::from(area.width).saturating_sub(used + "  state ".len());
    first.push(Span::raw("  state "));
    first.push(Span::raw(cut_left(&model.state_root, room)));
    let used: usize = first.iter().map(|s| s.content.chars().count()).sum();
    const PRODUCT: &str = " sling-sync-wrapper ";
    if used + PRODUCT.len() <= usize::from(area.width) {
        first.insert(0, styled(PRODUCT, theme.bold()));
    }

    let running = model.count(|s| matches!(s, Shown::Running | Shown::Cancelling));
    let failed = model.failed_count();
    let retrying = model.count(|s| s == Shown::Retrying);
    let queued = model.count(|s| s == Shown::Queued);
    let count = |n: usize, word: &str, style| {
        let style = if n > 0 { style } else { theme.base() };
        styled(format!("{word} {n}"), style)
    };
    let mut second = vec![
        Span::raw(" "),
        count(running, "running", theme.status(Shown::Running)),
        Span::raw(" · "),
        count(failed, "failed", theme.status(Shown::Done(Status::Failed))),
        Span::raw(" · "),
        count(retrying, "retrying", theme.status(Shown::Retrying)),
    ];
    if queued > 0 {
        second.push(Span::raw(format!(" · queued {queued}")));
    }
    second.push(Span::raw(" · "));
    second.extend(telemetry(model, now, theme));
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

fn telemetry<'a>(model: &Model, now: DateTime<Utc>, theme: &Theme) -> Vec<Span<'a>> {
    if !model.telemetry_enabled {
        return vec![Span::raw("telemetry off")];
    }
    let failing = model
        .health
        .as_ref()
        .and_then(|h| h.failing_since.map(|s| (s, h.last_error.clone())));
    match failing {
        None => vec![Span::raw("telemetry "), styled("ok", theme.ok())],
        Some((since, error)) => {
            let mut spans = vec![
                Span::raw("telemetry "),
                styled(
                    format!(
                        "failing since {} ({})",
                        since.format("%H:%M:%SZ"),
                        ago(since, now)
                    ),
                    theme.error(),
                ),
            ];
            if let Some(e) = error {
                spans.push(Span::raw(format!(": {}", clean(&e))));
            }
            spans
        }
    }
}

/// Keeps the last `width` characters, marking the cut with `…` at the front.
fn cut_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::from("…");
    out.extend(s.chars().skip(n - (width - 1)));
    out
}
