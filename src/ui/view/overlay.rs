//! Overlays drawn over the panes: the help (built from the key list), the confirmation dialog and a pipeline's
//! run history.

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Clear, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap,
};
use ratatui::Frame;

use super::format::{clean, duration, short_id, thousands};
use super::theme::Theme;
use super::{styled, verify};
use crate::sync::event::{CheckOutcome, Mode, PipelineReport};
use crate::sync::verify::VerifyStatus;
use crate::ui::keys;
use crate::ui::model::{Confirm, Shown};

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
    for scope in keys::HELP_ORDER {
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

fn help_rect(area: Rect) -> Rect {
    let content = u16::try_from(keys::help_rows()).unwrap_or(u16::MAX);
    centered(area, 78, content.saturating_add(2))
}

/// Text rows the help shows at once (for paging).
pub fn help_rows(area: Rect) -> u16 {
    help_rect(area).height.saturating_sub(2)
}

pub fn help(frame: &mut Frame, area: Rect, scroll: u16, theme: &Theme) {
    let lines = help_lines(theme);
    let content = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let rect = help_rect(area);
    let visible = rect.height.saturating_sub(2);
    let scroll = scroll.min(content.saturating_sub(visible));
    let more = match (scroll > 0, content > visible + scroll) {
        (true, true) => " ↑↓ more · PgUp/PgDn ",
        (false, true) => " ↓ more · PgDn ",
        (true, false) => " ↑ more · PgUp ",
        (false, false) => "",
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
        Confirm::RunAll { pipelines } => {
            let mut names = pipelines
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if pipelines.len() > 3 {
                names.push_str(&format!(" and {} more", pipelines.len() - 3));
            }
            (
                format!(" Run {} pipelines? ", pipelines.len()),
                vec![
                    Line::from(vec![
                        Span::raw("Start an incremental run of "),
                        styled(format!("{} pipelines", pipelines.len()), theme.bold()),
                        Span::raw(":"),
                    ]),
                    Line::from(names),
                    Line::from("They run one after another in one job."),
                ],
            )
        }
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

/// Rows under the history table for the selected run's error.
const HISTORY_ERROR_ROWS: u16 = 3;

fn history_rect(area: Rect) -> Rect {
    centered(
        area,
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
    )
}

/// Runs the history table shows at once (for paging): the box less borders, header and the error rows.
pub fn history_rows(area: Rect) -> u16 {
    history_rect(area)
        .height
        .saturating_sub(3 + HISTORY_ERROR_ROWS + 1)
        .max(1)
}

/// One pipeline's runs from the journal, newest first, like lazygit's log: a table, and the selected run's error
/// in full underneath.
pub fn history(
    frame: &mut Frame,
    area: Rect,
    pipeline: &str,
    runs: &[PipelineReport],
    selected: usize,
    theme: &Theme,
) {
    let rect = history_rect(area);
    let title = Line::from(vec![
        styled(format!(" History · {pipeline} "), theme.title(true)),
        Span::raw(format!(
            " {} run(s), newest first · Esc closes ",
            runs.len()
        )),
    ]);
    let block = Block::bordered().border_style(theme.bold()).title(title);
    let inner = block.inner(rect);
    frame.render_widget(Clear, rect);
    frame.render_widget(block, rect);
    let [table_area, rule, error_area] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(HISTORY_ERROR_ROWS),
    ])
    .areas(inner);
    if runs.is_empty() {
        frame.render_widget(
            Paragraph::new("no runs recorded in the journal yet"),
            table_area,
        );
        return;
    }
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let rows = runs.iter().map(|r| {
        let shown = Shown::Done(r.status);
        Row::new(vec![
            Cell::from(r.finished_at.format("%Y-%m-%d %H:%MZ").to_string()),
            Cell::from(r.mode.as_str()),
            Cell::from(Span::styled(r.status.as_str(), theme.status(shown))),
            right(thousands(r.rows)),
            Cell::from(Span::styled(
                verify::mark(r.verify.as_ref()),
                verify::style(r.verify.as_ref(), theme),
            )),
            right(duration(r.duration_seconds)),
            right(r.attempts.to_string()),
            Cell::from(clean(r.error.as_deref().unwrap_or("-"))),
        ])
    });
    let header = Row::new(vec![
        Cell::from("FINISHED"),
        Cell::from("MODE"),
        Cell::from("STATUS"),
        right("ROWS".into()),
        Cell::from("VERIFY"),
        right("TOOK".into()),
        right("TRY".into()),
        Cell::from("ERROR"),
    ])
    .style(theme.bold());
    let widths = [
        Constraint::Length(17),
        Constraint::Length(11),
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(3),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(theme.selected(true))
        .highlight_symbol("> ")
        .highlight_spacing(HighlightSpacing::Always);
    let selected = selected.min(runs.len() - 1);
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, table_area, &mut state);

    let r = &runs[selected];
    frame.render_widget(
        Paragraph::new(Line::from(styled(
            format!(
                "run {} of {} · job {} · started {}",
                selected + 1,
                runs.len(),
                short_id(&r.sync_job_id),
                r.started_at.format("%H:%M:%SZ")
            ),
            theme.dim(),
        ))),
        rule,
    );
    let error = match (
        &r.error,
        r.checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Failed)
            .count(),
    ) {
        (Some(e), _) => Line::from(styled(clean(e), theme.error())),
        (None, 0) if r.mode == Mode::Noop && !r.checks.is_empty() => {
            Line::from(format!("all {} checks passed", r.checks.len()))
        }
        // A run that synced but did not verify clean says what verification found.
        (None, _) => match &r.verify {
            Some(v) if matches!(v.status, VerifyStatus::Drift | VerifyStatus::Error) => Line::from(
                styled(clean(&v.summary_line()), verify::style(Some(v), theme)),
            ),
            _ => Line::from("no error"),
        },
    };
    frame.render_widget(Paragraph::new(error).wrap(Wrap { trim: true }), error_area);
}
