//! The interactive console's shell: terminal setup and restore, the input thread, and the event loop that feeds
//! engine events and keys into `ui::model` and draws `ui::view`. It drives the same `Engine::serve` as any other
//! front-end, so runs get the same events, telemetry, locks and history journal as batch mode.
//!
//! The loop waits on four things and draws after each: a shutdown signal, a key, engine events (drained in a batch
//! so a chatty Sling costs one frame per batch), and a slow tick for countdowns and export health. Idle means a few
//! wake-ups a second, no polling in a busy loop.

mod input_thread;
mod terminal;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use crossterm::event::{Event, KeyEventKind};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::settings::Settings;
use super::signals::Shutdown;
use super::tty;
use crate::sync::event::{self, Command, SyncEvent};
use crate::sync::pipeline::{self, Pipeline};
use crate::sync::state::StateStore;
use crate::sync::Engine;
use crate::telemetry::ExportHealth;
use crate::ui::model::{self, Model, ModelInit};
use crate::ui::{describe, input};
use input_thread::{Input, InputThread};
use terminal::{restore_terminal, Term};

/// Everything the console needs from `main`.
pub struct ConsoleContext {
    pub engine: Engine,
    pub pipelines: Vec<Pipeline>,
    pub settings: Settings,
    pub health: Arc<ExportHealth>,
    pub shutdown: Shutdown,
}

/// Redraw cadence when nothing happens: enough for a seconds countdown.
const TICK: Duration = Duration::from_millis(500);
/// Log events that may wait in the engine channel before the engine drops (and counts) lines.
const EVENT_LOG_CAPACITY: usize = 10_000;
/// Events folded into the model before the next frame.
const EVENT_BATCH: usize = 2_000;
/// After a signal, how much longer than the cancel grace the console may take before it exits regardless.
const EXIT_GUARD_MARGIN: Duration = Duration::from_secs(2);
/// How often (in ticks) rows refused by another process's lock are checked: every 2 s.
const LOCK_CHECK_TICKS: u32 = 4;
/// Journal records read to refresh such a row (enough to find its newest sync and noop).
const LOCK_REFRESH_RUNS: usize = 50;
/// Journal records the history view reads for one pipeline.
const HISTORY_LIMIT: usize = 500;

/// Refuses a terminal that cannot show the console: `TERM=dumb` (Emacs shells, some CI consoles) understands no
/// cursor movement, so the screen would be a stream of escape codes. An unset `TERM` (`kubectl exec -it`) is fine:
/// crossterm writes plain ANSI.
pub fn check_terminal(env: &BTreeMap<String, String>) -> Result<(), String> {
    if env.get("TERM").is_some_and(|t| t.trim() == "dumb") {
        return Err("TERM=dumb: this terminal cannot show the console (no cursor movement). Run with --batch for \
                    plain output, or set TERM to your terminal (for example TERM=xterm-256color)"
            .into());
    }
    Ok(())
}

/// Runs the console until the operator quits; returns the process exit code.
pub async fn run(ctx: ConsoleContext) -> anyhow::Result<i32> {
    // telemetry installed tui-logger's tracing layer; its buffer needs the mover thread started here.
    tui_logger::init_logger(tui_logger::LevelFilter::Info)
        .map_err(|e| anyhow!("cannot start the console's log buffer: {e}"))?;

    let ConsoleContext {
        engine,
        pipelines,
        settings,
        health,
        shutdown,
    } = ctx;
    let mut model = initial_model(&engine, &pipelines, &settings);
    let state = engine.config().state.clone();
    let engine_env = (engine.config().env.clone(), state.clone());
    let start_parent = tty::parent();

    let mut term = Term::enter(settings.cancel_grace)?;
    let (sink, mut events) = event::channel(EVENT_LOG_CAPACITY);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<Command>();
    // A child token: quitting stops the engine without pretending a signal arrived, and a signal stops the engine
    // (Sling gets SIGINT) even if this loop were stuck.
    let engine_stop = shutdown.token.child_token();
    let mut serve = tokio::spawn(engine.serve(cmd_rx, pipelines, sink, engine_stop.clone()));
    spawn_exit_guard(&shutdown, settings.cancel_grace);
    let mut keys = InputThread::spawn();
    let mut cmd_tx = Some(cmd_tx);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut resized = signal(SignalKind::window_change()).ok();

    let mut serve_done = false;
    let mut failure = None;
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.token.cancelled(), if !model.stopping => {
                model.warn("signal received: cancelling runs");
                model.quit = true;
            }
            done = &mut serve, if model.stopping => {
                serve_done = true;
                if let Err(e) = done {
                    tracing::error!(target: crate::sync::spans::SYNC, "the engine task ended abnormally: {e}");
                }
                break;
            }
            ev = keys.rx.recv(), if keys.open => match ev {
                Some(Input::Event(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                    if let Some(action) = input::map_key(&model, &k) {
                        for cmd in input::update(&mut model, action) {
                            send(&cmd_tx, cmd);
                        }
                        load_history(&mut model, &state);
                        if std::mem::take(&mut model.rescan_request) {
                            rescan(&mut model, &engine_env, &settings, &cmd_tx);
                        }
                    }
                }
                Some(Input::Event(_)) => {} // resize and the like: just redraw
                Some(Input::Gone(why)) => {
                    keys.open = false;
                    term.lost(why, &shutdown);
                }
                None => {
                    keys.open = false;
                    term.lost("the terminal reader stopped", &shutdown);
                }
            },
            Some(_) = async { resized.as_mut()?.recv().await }, if resized.is_some() => {}
            // Before engine events, so a flood of log lines cannot starve the countdown and health refresh.
            _ = tick.tick() => {
                model.health = Some(health.snapshot());
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(LOCK_CHECK_TICKS) {
                    refresh_locked(&mut model, &state);
                }
                if let Some(why) = tty::gone(start_parent) {
                    term.lost(why, &shutdown);
                }
            }
            Some(ev) = events.recv() => {
                fold(&mut model, ev);
                for _ in 0..EVENT_BATCH {
                    match events.try_recv() {
                        Some(ev) => fold(&mut model, ev),
                        None => break,
                    }
                }
            }
        }
        model::tick(&mut model, chrono::Utc::now());
        if shutdown.token.is_cancelled() {
            model.quit = true;
        }
        if model.quit && !model.stopping {
            // Dropping the command sender ends `serve`, which cancels every run (Sling gets SIGINT) and waits for
            // the jobs, so spans close and history is written before we exit.
            model.stopping = true;
            send(&cmd_tx, Command::CancelAll);
            cmd_tx = None;
            engine_stop.cancel();
        }
        if let Err(e) = term.draw(&mut model) {
            // A terminal that cannot be written to any more is a dropped session, not a console failure.
            if let Some(why) = tty::gone(start_parent) {
                term.lost(why, &shutdown);
            } else if !model.stopping {
                failure = Some(e);
                break;
            }
        }
    }
    keys.stop().await;
    term.close();
    if !serve_done {
        // Only after a drawing failure: the runs are still cancelled and awaited, so Sling stops cleanly.
        drop(cmd_tx);
        engine_stop.cancel();
        let _ = serve.await;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(shutdown.exit_code().unwrap_or(0)),
    }
}

/// Rows refused by another process's run lock go back to the journal's word once the lock is free. Reads
/// `/proc/locks`, never takes the lock, so the other holder is never disturbed.
fn refresh_locked(model: &mut Model, state: &StateStore) {
    let locked: Vec<String> = model
        .pipelines
        .iter()
        .filter(|p| p.locked.is_some())
        .map(|p| p.info.name.clone())
        .collect();
    for name in locked {
        if state.lock_held(&name) == Some(false) {
            let runs = state.pipeline_history(&name, LOCK_REFRESH_RUNS);
            model::lock_released(model, &name, &runs);
        }
    }
}

/// `u`: reads the pipeline files again, shows what changed and hands the new list to the engine.
fn rescan(
    model: &mut Model,
    env: &(BTreeMap<String, String>, StateStore),
    settings: &Settings,
    cmd_tx: &Option<mpsc::UnboundedSender<Command>>,
) {
    let found = pipeline::discover(&settings.pipelines)
        .and_then(|all| pipeline::select(all, &settings.only));
    match found {
        Ok(list) => {
            let infos = list
                .iter()
                .map(|p| describe::pipeline_info(p, &env.0, &env.1))
                .collect();
            model::set_pipelines(model, infos);
            send(cmd_tx, Command::SetPipelines(list));
        }
        Err(e) => model.warn(format!("cannot read the pipeline files again: {e}")),
    }
}

/// Opens the history view the operator asked for: the journal is read here, not in the pure model.
fn load_history(model: &mut Model, state: &StateStore) {
    if let Some(name) = model.history_request.take() {
        let runs = state.pipeline_history(&name, HISTORY_LIMIT);
        model::show_history(model, name, runs);
    }
}

/// If the engine cannot stop within the cancel grace after a signal or a dropped terminal (this loop stuck on a
/// terminal that takes no more output, say), exit anyway: the engine has had its chance to stop Sling cleanly.
fn spawn_exit_guard(shutdown: &Shutdown, grace: Duration) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        shutdown.token.cancelled().await;
        tokio::time::sleep(grace + EXIT_GUARD_MARGIN).await;
        restore_terminal();
        std::process::exit(shutdown.exit_code().unwrap_or(1));
    });
}

fn fold(model: &mut Model, ev: SyncEvent) {
    panic_if_asked(&ev);
    model::tick(model, chrono::Utc::now());
    model::apply(model, ev);
}

fn send(tx: &Option<mpsc::UnboundedSender<Command>>, cmd: Command) {
    if let Some(tx) = tx {
        let _ = tx.send(cmd);
    }
}

fn initial_model(engine: &Engine, pipelines: &[Pipeline], settings: &Settings) -> Model {
    let cfg = engine.config();
    let telemetry_enabled = !cfg
        .env
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    // The model starts from each pipeline's newest sync and noop; unreadable lines are counted and shown.
    let history = cfg.state.history();
    let mut model = Model::new(ModelInit {
        mission_cluster_id: cfg.mission_cluster_id.clone(),
        pipelines: pipelines
            .iter()
            .map(|p| describe::pipeline_info(p, &cfg.env, &cfg.state))
            .collect(),
        history: history.latest,
        state_root: home_short(&cfg.state.root().display().to_string()),
        max_attempts: cfg.retry.max_attempts(),
        telemetry_enabled,
        no_color: settings.no_color,
        now: chrono::Utc::now(),
    });
    if history.skipped_lines > 0 {
        let text = format!(
            "history: {} unreadable line(s) in {} skipped",
            history.skipped_lines,
            cfg.state.root().join("history.jsonl").display()
        );
        tracing::warn!(target: "sync", "{text}");
        model.warn(text);
    }
    model
}

/// `~/…` for a path under `$HOME`: shorter in the header, and what the operator would type.
fn home_short(path: &str) -> String {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() && home != "/" => match path.strip_prefix(home.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("~{rest}"),
            _ => path.to_string(),
        },
        _ => path.to_string(),
    }
}

/// Test-only, debug builds only: with `SYNC_TEST_PANIC_ON_ATTEMPT` set, the console panics as soon as a Sling attempt
/// has started, so a test can prove that a panic leaves no Sling behind. Compiled out of release builds.
#[cfg(debug_assertions)]
fn panic_if_asked(ev: &SyncEvent) {
    if matches!(ev, SyncEvent::AttemptStarted { pid: Some(_), .. })
        && std::env::var_os("SYNC_TEST_PANIC_ON_ATTEMPT").is_some()
    {
        panic!("SYNC_TEST_PANIC_ON_ATTEMPT is set: panicking with Sling running");
    }
}

#[cfg(not(debug_assertions))]
fn panic_if_asked(_: &SyncEvent) {}
