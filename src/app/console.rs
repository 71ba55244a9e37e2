//! The interactive console's shell: terminal setup and restore, the input thread, and the event loop that feeds
//! engine events and keys into `ui::model` and draws `ui::view`. It drives the same `Engine::serve` as any other
//! front-end, so runs get the same events, telemetry, locks and history journal as batch mode.
//!
//! The loop waits on four things and draws after each: a shutdown signal, a key, engine events (drained in a batch
//! so a chatty Sling costs one frame per batch), and a slow tick for countdowns and export health. Idle means a few
//! wake-ups a second, no polling in a busy loop.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context};
use crossterm::event::{Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::settings::Settings;
use super::signals::Shutdown;
use crate::sync::event::{self, Command, SyncEvent};
use crate::sync::pipeline::Pipeline;
use crate::sync::Engine;
use crate::telemetry::ExportHealth;
use crate::ui::model::{self, Model, ModelInit};
use crate::ui::{describe, input, view};

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
/// How often the input thread looks up from `poll` to see whether it should stop.
const INPUT_POLL: Duration = Duration::from_millis(200);

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

    let mut term = Term::enter(settings.cancel_grace)?;
    let (sink, mut events) = event::channel(EVENT_LOG_CAPACITY);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<Command>();
    // A child token: quitting stops the engine without pretending a signal arrived.
    let engine_stop = shutdown.token.child_token();
    let mut serve = tokio::spawn(engine.serve(cmd_rx, pipelines, sink, engine_stop.clone()));
    let mut keys = InputThread::spawn();
    let mut cmd_tx = Some(cmd_tx);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut serve_done = false;
    let mut failure = None;
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
                Some(Event::Key(k)) if k.kind == KeyEventKind::Press => {
                    if let Some(action) = input::map_key(&model, &k) {
                        for cmd in input::update(&mut model, action) {
                            send(&cmd_tx, cmd);
                        }
                    }
                }
                Some(_) => {} // resize and the like: just redraw
                None => {
                    // The terminal is gone (EOF or read error): nobody can quit by key, so stop as if asked.
                    keys.open = false;
                    model.quit = true;
                }
            },
            // Before engine events, so a flood of log lines cannot starve the countdown and health refresh.
            _ = tick.tick() => {
                model.health = Some(health.snapshot());
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
        if model.quit && !model.stopping {
            // Dropping the command sender ends `serve`, which cancels every run (Sling gets SIGINT) and waits for
            // the jobs, so spans close and history is written before we exit.
            model.stopping = true;
            send(&cmd_tx, Command::CancelAll);
            cmd_tx = None;
            engine_stop.cancel();
        }
        if let Err(e) = term.draw(&mut model) {
            failure = Some(e);
            break;
        }
    }
    keys.stop().await;
    drop(term);
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
    let history = cfg.state.history();
    let mut model = Model::new(ModelInit {
        mission_cluster_id: cfg.mission_cluster_id.clone(),
        pipelines: pipelines
            .iter()
            .map(|p| describe::pipeline_info(p, &cfg.env, &cfg.state))
            .collect(),
        history: history.latest,
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

/// Set while the terminal is in raw mode on the alternate screen, so the panic hook knows to restore it.
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);

fn restore_terminal() {
    if TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
    }
}

/// The terminal in raw mode on the alternate screen; restored on drop, and by the panic hook. No mouse capture:
/// operators must be able to select and copy log text.
struct Term {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Term {
    fn enter(cancel_grace: Duration) -> anyhow::Result<Self> {
        install_panic_hook(cancel_grace);
        enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
        let setup = execute!(io::stdout(), EnterAlternateScreen)
            .context("cannot enter the alternate screen")
            .and_then(|()| {
                Terminal::new(CrosstermBackend::new(io::stdout()))
                    .context("cannot set up the terminal")
            });
        match setup {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore_terminal();
                Err(e)
            }
        }
    }

    fn draw(&mut self, model: &mut Model) -> anyhow::Result<()> {
        let size = self
            .terminal
            .size()
            .context("cannot read the terminal size")?;
        model.log_rows = view::log_rows(Rect::new(0, 0, size.width, size.height), model);
        let now = chrono::Utc::now();
        self.terminal
            .draw(|f| view::render(f, model, now))
            .context("cannot draw the console")?;
        Ok(())
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// A panic anywhere (a tokio task included) would leave the terminal raw while the UI keeps drawing: restore it,
/// report the panic as usual, stop every Sling process group as a cancel does (SIGINT, SIGKILL after the grace), and
/// exit 1. `process::exit` runs no destructor: without the stop, Sling would outlive the run lock, and a second run
/// could write to the same target at the same time.
fn install_panic_hook(cancel_grace: Duration) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
        crate::sync::sling::stop_all_children(cancel_grace);
        std::process::exit(1);
    }));
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

/// crossterm's blocking reader on its own thread (the `event-stream` feature is not enabled); it waits in `poll`,
/// so it costs nothing while idle, and forwards every event to the loop.
struct InputThread {
    rx: mpsc::UnboundedReceiver<Event>,
    open: bool,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl InputThread {
    fn spawn() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("console-input".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match crossterm::event::poll(INPUT_POLL) {
                        Ok(false) => {}
                        Ok(true) => match crossterm::event::read() {
                            Ok(ev) => {
                                if tx.send(ev).is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        },
                        Err(_) => break,
                    }
                }
            })
            .ok();
        Self {
            open: handle.is_some(),
            rx,
            stop,
            handle,
        }
    }

    /// Stops the reader before the terminal is restored, so it cannot swallow keys meant for the shell.
    async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}
