//! The selected pipeline: source → target (redacted at start), run mode and attempt, state path, last error,
//! streams with their rows, and noop check results.

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::format::{ago, short_id, thousands};
use super::theme::Theme;
use super::{focused, pane, styled};
use crate::ui::model::{Activity, Model, Pane, PipelineView};

const LABEL_W: usize = 9;

pub fn render(frame: &mut Frame, area: Rect, model: &Model, now: DateTime<Utc>, theme: &Theme) {
    let has_focus = focused(model, Pane::Detail);
    let Some(p) = model.selected_pipeline() else {
        let block = pane("Detail", Vec::new(), has_focus, theme);
        frame.render_widget(
            Paragraph::new("no pipeline matches the filter").block(block),
            area,
        );
        return;
    };
    let lines = lines(p, now, theme);
    let inner_rows = area.height.saturating_sub(2);
    let max_scroll = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_sub(inner_rows);
    let block = pane(p.name(), Vec::new(), has_focus, theme);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((model.detail_scroll.min(max_scroll), 0)),
        area,
    );
}

fn label<'a>(text: &str, theme: &Theme) -> Span<'a> {
    styled(format!("{text:<LABEL_W$}"), theme.bold())
}

fn lines<'a>(p: &PipelineView, now: DateTime<Utc>, theme: &Theme) -> Vec<Line<'a>> {
    let mut out = vec![
        Line::from(vec![
            label("source", theme),
            Span::raw(p.info.source.clone()),
        ]),
        Line::from(vec![
            label("→ target", theme),
            Span::raw(p.info.target.clone()),
        ]),
    ];
    let run = match (&p.activity, &p.last) {
        (Activity::Active(r), _) => format!(
            "{} · attempt {}/{} · started {} · job {}",
            r.mode,
            r.attempt,
            r.max_attempts,
            ago(r.started_at, now),
            short_id(&r.job_id)
        ),
        (Activity::Queued { mode, .. }, _) => format!("{mode} · queued"),
        (Activity::Idle, Some(r)) => format!(
            "{} (last run) · {} · {} attempt(s) · job {}",
            r.mode,
            r.status,
            r.attempts,
            short_id(&r.sync_job_id)
        ),
        (Activity::Idle, None) => "not run yet".into(),
    };
    out.push(Line::from(vec![label("mode", theme), Span::raw(run)]));
    out.push(Line::from(vec![
        label("state", theme),
        Span::raw(p.info.state_path.clone()),
    ]));
    let error = match (&p.activity, &p.last) {
        (Activity::Active(r), _) => r.error.clone(),
        (Activity::Idle, Some(r)) => r.error.clone(),
        _ => None,
    }
    .or_else(|| p.info.problem.clone());
    out.push(Line::from(vec![
        label("error", theme),
        match error {
            Some(e) => styled(e, theme.error()),
            None => Span::raw("-"),
        },
    ]));
    out.extend(streams(p, theme));
    let checks = match (&p.activity, &p.last) {
        (Activity::Active(r), _) => r.checks.as_slice(),
        (Activity::Idle, Some(r)) => r.checks.as_slice(),
        _ => &[],
    };
    for (i, c) in checks.iter().enumerate() {
        let verdict = match (c.ok, c.warning) {
            (true, false) => styled("ok", theme.ok()),
            (true, true) => styled("warning", theme.bold()),
            (false, _) => styled("FAILED", theme.error()),
        };
        out.push(Line::from(vec![
            label(if i == 0 { "checks" } else { "" }, theme),
            verdict,
            Span::raw(format!(" {}: {}", c.name, c.detail)),
        ]));
    }
    out
}

fn streams<'a>(p: &PipelineView, theme: &Theme) -> Vec<Line<'a>> {
    let counts = match (&p.activity, &p.last) {
        (Activity::Active(r), _) => Some(&r.streams),
        (Activity::Idle, Some(r)) => Some(&r.streams),
        _ => None,
    };
    let rows = |name: &str| counts.and_then(|c| c.get(name)).copied();
    let mut names: Vec<(String, Option<String>)> = p
        .info
        .streams
        .iter()
        .map(|s| (s.name.clone(), s.mode.clone()))
        .collect();
    // Sling may report a stream under a name the file does not use; show it rather than lose its rows.
    if let Some(c) = counts {
        for name in c.keys() {
            if !names.iter().any(|(n, _)| n == name) {
                names.push((name.clone(), None));
            }
        }
    }
    if names.is_empty() {
        return vec![Line::from(vec![label("streams", theme), Span::raw("-")])];
    }
    let width = names
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    names
        .iter()
        .enumerate()
        .map(|(i, (name, mode))| {
            let count = rows(name).map_or_else(|| "-".into(), |n| format!("{} rows", thousands(n)));
            let mode = mode.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
            Line::from(vec![
                label(if i == 0 { "streams" } else { "" }, theme),
                Span::raw(format!("{name:<width$}  ")),
                styled(format!("{count:>12}"), theme.bold()),
                styled(mode, theme.dim()),
            ])
        })
        .collect()
}
