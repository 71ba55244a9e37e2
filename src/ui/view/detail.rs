//! The selected pipeline: source → target (redacted at start), run mode and attempt, state path, last error,
//! streams with their rows, the last sync's verification per stream, and noop check results.

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::format::{ago, clean, short_id, thousands};
use super::theme::Theme;
use super::{focused, pane, styled, verify};
use crate::sync::event::{CheckOutcome, PipelineReport, Status};
use crate::ui::model::{outcome_text, Activity, Model, Pane, PipelineView, Shown};

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
    let width = usize::from(area.width.saturating_sub(2));
    let lines: Vec<Line> = fields(p, now, theme)
        .into_iter()
        .flat_map(|(label, text, style)| wrap_field(label, &clean(&text), style, width, theme))
        .collect();
    let inner_rows = area.height.saturating_sub(2);
    let total = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let max_scroll = total.saturating_sub(inner_rows);
    let scroll = model.detail_scroll.min(max_scroll);
    // Say when there is more than fits, and how to get to it.
    let below = total.saturating_sub(scroll + inner_rows);
    let more = match (scroll > 0, below > 0) {
        (_, true) => format!(" ↓ {below} more (Tab, j) "),
        (true, false) => format!(" ↑ {scroll} more "),
        (false, false) => String::new(),
    };
    let block = pane(p.name(), Vec::new(), has_focus, theme)
        .title_bottom(Line::from(styled(more, theme.bold())).right_aligned());
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

/// Text rows the selected pipeline's detail needs at this inner width. Times do not change the count much, so any
/// fixed `now` will do for sizing.
pub fn rows(model: &Model, width: usize) -> u16 {
    let Some(p) = model.selected_pipeline() else {
        return 1;
    };
    let theme = Theme::new(true);
    let n: usize = fields(p, model.now, &theme)
        .into_iter()
        .map(|(label, text, style)| wrap_field(label, &clean(&text), style, width, &theme).len())
        .sum();
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// One labelled field, wrapped by hand so continuation lines stay indented under the value.
fn wrap_field<'a>(
    label: &str,
    text: &str,
    style: Style,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let room = width.saturating_sub(LABEL_W).max(10);
    let mut out = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    loop {
        let cut = if rest.len() <= room {
            rest.len()
        } else {
            // Break after the last space that fits, else mid-word (URLs and paths have no spaces).
            rest[..room]
                .iter()
                .rposition(|c| *c == ' ')
                .filter(|&i| i > 0)
                .map_or(room, |i| i + 1)
        };
        let chunk: String = rest.drain(..cut).collect();
        let first = out.is_empty();
        out.push(Line::from(vec![
            styled(
                format!("{:<LABEL_W$}", if first { label } else { "" }),
                theme.bold(),
            ),
            styled(chunk.trim_end().to_string(), style),
        ]));
        if rest.is_empty() {
            break;
        }
    }
    out
}

type Field = (&'static str, String, Style);

fn fields(p: &PipelineView, now: DateTime<Utc>, theme: &Theme) -> Vec<Field> {
    let plain = theme.base();
    let mut out: Vec<Field> = vec![
        ("source", p.info.source.clone(), plain),
        ("→ target", p.info.target.clone(), plain),
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
    out.push(("mode", run, plain));
    if let Some(l) = p.run().and_then(|r| r.progress.as_ref()) {
        let rate = l
            .rows_per_sec
            .map_or_else(String::new, |r| format!(" · {} r/s", thousands(r)));
        out.push((
            "progress",
            format!(
                "{}{} rows so far{rate}",
                l.stream
                    .as_deref()
                    .map_or_else(String::new, |s| format!("{s}: ")),
                thousands(l.rows)
            ),
            plain,
        ));
    }
    if let Some(l) = &p.locked {
        out.push((
            "busy",
            format!(
                "another process holds the run lock: {} (refreshes when it is free)",
                l.holder
            ),
            theme.status(Shown::Busy),
        ));
    }
    // While a run is active the table says `now`; the run before it is here.
    if let (Activity::Active(_) | Activity::Queued { .. }, Some(r)) = (&p.activity, &p.last) {
        out.push((
            "previous",
            format!(
                "{} {} · {} · {} rows",
                r.mode,
                r.status,
                ago(r.finished_at, now),
                thousands(r.rows)
            ),
            theme.status(Shown::Done(r.status)),
        ));
    }
    if let Some(n) = &p.last_noop {
        out.push(("noop", noop_text(n, now), noop_style(n, theme)));
    }
    // The last finished sync's verification, high up: it is what an operator looks for after a run (while a run is active it is not verified yet).
    if let (Activity::Idle, Some(v)) =
        (&p.activity, p.last.as_ref().and_then(|r| r.verify.as_ref()))
    {
        for (i, (text, style)) in verify::detail(v, theme).into_iter().enumerate() {
            out.push((if i == 0 { "verify" } else { "" }, text, style));
        }
    }
    out.push(("state", p.info.state_path.clone(), plain));
    let error = match (&p.activity, &p.last) {
        (Activity::Active(r), _) => r.error.as_ref().map(|e| e.to_string()),
        (Activity::Idle, Some(r)) => r.error.as_ref().map(|e| e.to_string()),
        _ => None,
    }
    .or_else(|| p.info.problem.clone());
    out.push(match error {
        Some(e) => ("error", e, theme.error()),
        None => ("error", "-".into(), plain),
    });
    out.extend(streams(p, theme));
    let checks = match (&p.activity, &p.last_noop) {
        (Activity::Active(r), _) => r.checks.as_slice(),
        (Activity::Idle, Some(r)) => r.checks.as_slice(),
        _ => &[],
    };
    for (i, c) in checks.iter().enumerate() {
        let (verdict, style) = match c.outcome {
            CheckOutcome::Ok => ("ok", theme.ok()),
            CheckOutcome::Warning => ("warning", theme.bold()),
            CheckOutcome::Failed => ("FAILED", theme.error()),
        };
        out.push((
            if i == 0 { "checks" } else { "" },
            format!("{verdict} {}: {}", c.kind, c.detail),
            style,
        ));
    }
    out
}

/// A noop's outcome in one line: it validates, it does not sync, so it has its own line.
fn noop_text(n: &PipelineReport, now: DateTime<Utc>) -> String {
    let failed = n
        .checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Failed)
        .count();
    let verdict = match (n.status, failed, n.checks.len()) {
        (Status::Success, 0, 0) => "passed".to_string(),
        (Status::Success, 0, total) => format!("passed: {total} of {total} checks ok"),
        (Status::Failed, f, total) if f > 0 => format!("failed: {f} of {total} checks failed"),
        (s, _, _) => outcome_text(s, n.error.as_deref()),
    };
    format!("{verdict} · {}", ago(n.finished_at, now))
}

fn noop_style(n: &PipelineReport, theme: &Theme) -> Style {
    theme.status(Shown::Done(n.status))
}

/// One line per stream: name, rows of the current (or last) run, and Sling's mode for it.
fn streams(p: &PipelineView, theme: &Theme) -> Vec<Field> {
    let counts = match (&p.activity, &p.last) {
        (Activity::Active(r), _) => Some(&r.streams),
        (Activity::Idle, Some(r)) => Some(&r.streams),
        _ => None,
    };
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
        return vec![("streams", "-".into(), theme.base())];
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
            let rows = counts
                .and_then(|c| c.get(name))
                .map_or_else(|| "-".into(), |n| format!("{} rows", thousands(*n)));
            let mode = mode
                .as_deref()
                .map(|m| format!("  {m}"))
                .unwrap_or_default();
            (
                if i == 0 { "streams" } else { "" },
                format!("{name:<width$} {rows:>14}{mode}"),
                theme.base(),
            )
        })
        .collect()
}
