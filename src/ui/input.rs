//! Keys → actions → model changes and engine `Command`s. Pure: the console sends what `update` returns.

use crossterm::event::KeyEvent;

use super::keys::{self, Action};
use super::model::{Activity, Confirm, LogSource, Model, Overlay, Pane};
use crate::sync::event::{Command, Mode};

/// Rows moved by PgUp/PgDn in the pipeline table.
const TABLE_PAGE: usize = 5;
/// A bound for scrolling text whose wrapped height only the renderer knows (it clamps further).
const MAX_TEXT_SCROLL: u16 = 500;

pub fn map_key(model: &Model, ev: &KeyEvent) -> Option<Action> {
    keys::lookup(keys::scope(model), ev)
}

/// Applies an action; returns the commands for the engine. Nothing is sent while the console is stopping.
pub fn update(model: &mut Model, action: Action) -> Vec<Command> {
    if model.stopping {
        return Vec::new();
    }
    match model.overlay.clone() {
        Some(Overlay::Confirm { what, yes }) => dialog(model, what, yes, action),
        Some(Overlay::Help { scroll }) => {
            match action {
                Action::Close | Action::Help => model.overlay = None,
                Action::Quit => {
                    model.overlay = None;
                    return quit(model);
                }
                _ => {
                    let rows = usize::from(model.overlay_rows.max(1));
                    let last = keys::help_rows().saturating_sub(rows);
                    let scroll = moved(usize::from(scroll), last, rows, action);
                    model.overlay = Some(Overlay::Help {
                        scroll: u16::try_from(scroll).unwrap_or(u16::MAX),
                    });
                }
            }
            Vec::new()
        }
        Some(Overlay::History {
            pipeline,
            runs,
            selected,
        }) => {
            match action {
                Action::Close => model.overlay = None,
                Action::Quit => {
                    model.overlay = None;
                    return quit(model);
                }
                _ => {
                    let rows = usize::from(model.overlay_rows.max(1));
                    let last = runs.len().saturating_sub(1);
                    let selected = moved(selected, last, rows, action);
                    model.overlay = Some(Overlay::History {
                        pipeline,
                        runs,
                        selected,
                    });
                }
            }
            Vec::new()
        }
        None if model.filter_editing => {
            filter(model, action);
            if action == Action::Quit {
                model.filter_editing = false;
                return quit(model);
            }
            Vec::new()
        }
        None => main(model, action),
    }
}

/// A position in a list of `last + 1` entries after a movement key; `page` entries per page.
fn moved(pos: usize, last: usize, page: usize, action: Action) -> usize {
    match action {
        Action::Up => pos.saturating_sub(1),
        Action::Down => pos + 1,
        Action::PageUp => pos.saturating_sub(page),
        Action::PageDown => pos + page,
        Action::First => 0,
        Action::Last => last,
        _ => pos,
    }
    .min(last)
}

fn main(model: &mut Model, action: Action) -> Vec<Command> {
    match action {
        Action::Up
        | Action::Down
        | Action::First
        | Action::Last
        | Action::PageUp
        | Action::PageDown => {
            navigate(model, action);
            Vec::new()
        }
        Action::NextPane | Action::PrevPane => {
            let i = Pane::ALL
                .iter()
                .position(|p| *p == model.focus)
                .unwrap_or(0);
            let n = Pane::ALL.len();
            let next = if action == Action::NextPane {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            model.focus = Pane::ALL[next];
            Vec::new()
        }
        Action::Filter => {
            model.filter_editing = true;
            model.focus = Pane::Pipelines;
            Vec::new()
        }
        Action::Run => run_selected(model, Mode::Incremental),
        Action::Noop => run_selected(model, Mode::Noop),
        Action::Backfill => {
            if let Some(p) = startable(model) {
                model.overlay = Some(Overlay::Confirm {
                    what: Confirm::Backfill {
                        pipeline: p.0,
                        target: p.1,
                    },
                    yes: false,
                });
            }
            Vec::new()
        }
        Action::RunAll => run_all(model),
        Action::Cancel => {
            ask_cancel(model);
            Vec::new()
        }
        Action::ToggleLog => {
            model.log_source = match model.log_source {
                LogSource::Sling => LogSource::Engine,
                LogSource::Engine => LogSource::Sling,
            };
            Vec::new()
        }
        Action::Help => {
            model.overlay = Some(Overlay::Help { scroll: 0 });
            Vec::new()
        }
        Action::History => {
            match model.selected_pipeline() {
                // The console reads the journal and opens the view (`model::show_history`).
                Some(p) => model.history_request = Some(p.info.name.clone()),
                None => model.warn("no pipeline selected"),
            }
            Vec::new()
        }
        Action::Rescan => {
            // The console reads the pipeline files (`model::set_pipelines`) and tells the engine.
            model.rescan_request = true;
            Vec::new()
        }
        Action::Quit => quit(model),
        _ => Vec::new(),
    }
}

fn navigate(model: &mut Model, action: Action) {
    match model.focus {
        Pane::Pipelines => {
            let last = model.visible().len().saturating_sub(1);
            let sel = model.selected;
            let new = match action {
                Action::Up => sel.saturating_sub(1),
                Action::Down => (sel + 1).min(last),
                Action::First => 0,
                Action::Last => last,
                Action::PageUp => sel.saturating_sub(TABLE_PAGE),
                Action::PageDown => (sel + TABLE_PAGE).min(last),
                _ => sel,
            };
            if new != sel {
                model.selected = new;
                model.detail_scroll = 0;
            }
        }
        Pane::Detail => {
            let page = model.log_rows.max(1);
            model.detail_scroll = match action {
                Action::Up => model.detail_scroll.saturating_sub(1),
                Action::Down => model.detail_scroll.saturating_add(1),
                Action::First => 0,
                Action::Last => MAX_TEXT_SCROLL,
                Action::PageUp => model.detail_scroll.saturating_sub(page),
                Action::PageDown => model.detail_scroll.saturating_add(page),
                _ => model.detail_scroll,
            }
            .min(MAX_TEXT_SCROLL);
        }
        Pane::Log => {
            let rows = usize::from(model.log_rows.max(1));
            if model.log_source != LogSource::Sling {
                return;
            }
            let Some(p) = model.selected_pipeline_mut() else {
                return;
            };
            match action {
                Action::Up => p.log.scroll_up(1, rows),
                Action::Down => p.log.scroll_down(1),
                Action::First => p.log.top(rows),
                Action::Last => p.log.follow(),
                Action::PageUp => p.log.scroll_up(rows, rows),
                Action::PageDown => p.log.scroll_down(rows),
                _ => {}
            }
        }
    }
}

fn filter(model: &mut Model, action: Action) {
    let previous = model.selected_index();
    match action {
        Action::FilterChar(c) => model.filter.push(c),
        Action::FilterBackspace => {
            model.filter.pop();
        }
        Action::FilterDone => model.filter_editing = false,
        Action::FilterClear => {
            model.filter.clear();
            model.filter_editing = false;
        }
        Action::Up | Action::Down => return navigate(model, action),
        _ => return,
    }
    model.reselect(previous);
}

/// The selected pipeline's name and target if it can start now; otherwise says why not.
fn startable(model: &mut Model) -> Option<(String, String)> {
    let Some(p) = model.selected_pipeline() else {
        model.warn("no pipeline selected");
        return None;
    };
    if p.is_active() {
        let text = format!("{} is already {}", p.name(), p.shown().label());
        model.warn(text);
        return None;
    }
    Some((p.info.name.clone(), p.info.target.clone()))
}

fn queue(model: &mut Model, names: &[String], mode: Mode) {
    for name in names {
        if let Some(p) = model.pipeline_mut(name) {
            // Shown as queued at once, so a second key press cannot ask for the same run twice.
            p.activity = Activity::Queued { job_id: None, mode };
        }
    }
}

fn run_selected(model: &mut Model, mode: Mode) -> Vec<Command> {
    let Some((name, _)) = startable(model) else {
        return Vec::new();
    };
    queue(model, std::slice::from_ref(&name), mode);
    model.say(format!("{mode} run of {name} requested"));
    vec![Command::Run {
        pipelines: vec![name],
        mode,
    }]
}

/// `a`: the pipelines the filter shows that are not busy. One starts at once; more ask first.
fn run_all(model: &mut Model) -> Vec<Command> {
    let names: Vec<String> = model
        .visible()
        .into_iter()
        .map(|i| &model.pipelines[i])
        .filter(|p| !p.is_active())
        .map(|p| p.info.name.clone())
        .collect();
    match names.len() {
        0 => {
            model.warn("every pipeline shown is already queued or running");
            Vec::new()
        }
        1 => start_all(model, names),
        _ => {
            model.overlay = Some(Overlay::Confirm {
                what: Confirm::RunAll { pipelines: names },
                yes: false,
            });
            Vec::new()
        }
    }
}

fn start_all(model: &mut Model, names: Vec<String>) -> Vec<Command> {
    // Anything that got busy while the dialog was open is left out.
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| model.pipeline(n).is_some_and(|p| !p.is_active()))
        .collect();
    if names.is_empty() {
        model.warn("every pipeline shown is already queued or running");
        return Vec::new();
    }
    queue(model, &names, Mode::Incremental);
    model.say(format!(
        "incremental run of {} pipeline(s) requested",
        names.len()
    ));
    vec![Command::Run {
        pipelines: names,
        mode: Mode::Incremental,
    }]
}

fn ask_cancel(model: &mut Model) {
    let Some(p) = model.selected_pipeline() else {
        model.warn("no pipeline selected");
        return;
    };
    let name = p.info.name.clone();
    match &p.activity {
        Activity::Active(run) if run.cancel_requested => {
            model.warn(format!("{name} is already being cancelled"))
        }
        Activity::Active(_) => {
            model.overlay = Some(Overlay::Confirm {
                what: Confirm::Cancel { pipeline: name },
                yes: false,
            })
        }
        // Once the engine has taken it into a job it can be cancelled before it starts.
        Activity::Queued {
            job_id: Some(_), ..
        } => {
            model.overlay = Some(Overlay::Confirm {
                what: Confirm::Cancel { pipeline: name },
                yes: false,
            })
        }
        Activity::Queued { job_id: None, .. } => model.warn(format!(
            "{name} is being handed to the engine; try again in a moment"
        )),
        Activity::Idle => model.warn(format!("{name} is not running")),
    }
}

fn quit(model: &mut Model) -> Vec<Command> {
    let active = model.active_count();
    if active > 0 {
        model.overlay = Some(Overlay::Confirm {
            what: Confirm::Quit { active },
            yes: false,
        });
        return Vec::new();
    }
    model.quit = true;
    Vec::new()
}

fn dialog(model: &mut Model, what: Confirm, yes: bool, action: Action) -> Vec<Command> {
    let confirmed = match action {
        // Ctrl-C twice quits: the second one answers the quit dialog; in any other dialog it asks to quit.
        Action::Quit if matches!(what, Confirm::Quit { .. }) => true,
        Action::Quit => {
            model.overlay = None;
            return quit(model);
        }
        Action::Yes => true,
        Action::No => false,
        Action::Press => yes,
        Action::Toggle => {
            model.overlay = Some(Overlay::Confirm { what, yes: !yes });
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    model.overlay = None;
    if !confirmed {
        model.say(match &what {
            Confirm::Backfill { pipeline, .. } => format!("backfill of {pipeline} not started"),
            Confirm::Cancel { pipeline } => format!("{pipeline} keeps running"),
            Confirm::Quit { .. } => "not quitting".to_string(),
            Confirm::RunAll { .. } => "nothing started".to_string(),
        });
        return Vec::new();
    }
    match what {
        Confirm::Backfill { pipeline, .. } => {
            if model.pipeline(&pipeline).is_none_or(|p| p.is_active()) {
                model.warn(format!("{pipeline} is busy; backfill not started"));
                return Vec::new();
            }
            queue(model, std::slice::from_ref(&pipeline), Mode::Backfill);
            model.say(format!("backfill of {pipeline} requested"));
            vec![Command::Run {
                pipelines: vec![pipeline],
                mode: Mode::Backfill,
            }]
        }
        Confirm::Cancel { pipeline } => {
            // Say what will really happen: only a running attempt has a Sling to interrupt.
            let how = match model.pipeline_mut(&pipeline).map(|p| &mut p.activity) {
                Some(Activity::Active(run)) => {
                    run.cancel_requested = true;
                    if run.retry.is_some() {
                        "the retry will not start"
                    } else if run.attempt == 0 {
                        "it stops before Sling starts"
                    } else {
                        "Sling gets SIGINT"
                    }
                }
                Some(Activity::Queued {
                    job_id: Some(_), ..
                }) => "it will not start",
                _ => {
                    model.say(format!("{pipeline} already finished"));
                    return Vec::new();
                }
            };
            model.say(format!("cancelling {pipeline}: {how}"));
            vec![Command::Cancel { pipeline }]
        }
        Confirm::RunAll { pipelines } => start_all(model, pipelines),
        Confirm::Quit { .. } => {
            model.quit = true;
            vec![Command::CancelAll]
        }
    }
}
