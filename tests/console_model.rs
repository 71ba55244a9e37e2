//! Console model and key handling: mostly on synthetic engine events and keys (no terminal, no engine, no clock);
//! the event sequences the engine's answers decide are driven with the real engine (`Live`).

mod common;
#[path = "console_fixture.rs"]
mod fixture;

use crossterm::event::KeyCode;
use fixture::*;
use sling_sync_wrapper::sync::event::{
    self, AttemptOutcome, Check, CheckKind, CheckOutcome, Command, EventStream, JobReport, Mode,
    PipelineReport, Status, SyncEvent,
};
use sling_sync_wrapper::sync::pipeline::{self, PipelineSource};
use sling_sync_wrapper::sync::redact::Redactor;
use sling_sync_wrapper::sync::sling_log::Level;
use sling_sync_wrapper::sync::{Engine, EngineConfig};
use sling_sync_wrapper::ui::describe;
use sling_sync_wrapper::ui::keys::{self, Scope, KEYS};
use sling_sync_wrapper::ui::logbuf::LOG_CAPACITY;
use sling_sync_wrapper::ui::model::{self, Activity, Confirm, Overlay, Pane, Shown};
use sling_sync_wrapper::ui::model::{Model, ModelInit};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[test]
fn history_gives_every_pipeline_its_last_known_state() {
    let m = model();
    let shown: Vec<Shown> = m.pipelines.iter().map(|p| p.shown()).collect();
    assert_eq!(
        shown,
        [
            Shown::Never,
            Shown::Done(Status::Success),
            Shown::Done(Status::Failed)
        ]
    );
    assert_eq!(m.last_job.as_deref(), Some(JOB_OLD));
    assert_eq!(m.current_job(), Some((JOB_OLD, false)));
}

#[test]
fn r_and_enter_run_the_selected_pipeline_incrementally_once() {
    let mut m = model();
    select(&mut m, "orders");
    let cmds = press(&mut m, key('r'));
    assert_eq!(
        cmds,
        [Command::Run {
            pipelines: vec!["orders".into()],
            mode: Mode::Incremental
        }]
    );
    assert_eq!(
        m.selected_pipeline().map(|p| p.shown()),
        Some(Shown::Queued)
    );
    // A second press before the engine answers must not ask for the same run again.
    assert!(press(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(m.message.as_ref().is_some_and(|msg| msg.error));

    select(&mut m, "inventory");
    assert_eq!(
        press(&mut m, code(KeyCode::Enter)),
        [Command::Run {
            pipelines: vec!["inventory".into()],
            mode: Mode::Incremental
        }]
    );
}

#[test]
fn n_validates_without_asking() {
    let mut m = model();
    select(&mut m, "products");
    assert_eq!(
        press(&mut m, key('n')),
        [Command::Run {
            pipelines: vec!["products".into()],
            mode: Mode::Noop
        }]
    );
    assert!(m.overlay.is_none());
}

#[test]
fn backfill_asks_first_and_defaults_to_no() {
    let mut m = model();
    select(&mut m, "orders");
    assert!(press(&mut m, key('b')).is_empty(), "b alone must not run");
    match &m.overlay {
        Some(Overlay::Confirm {
            what: Confirm::Backfill { pipeline, target },
            yes,
        }) => {
            assert_eq!(pipeline, "orders");
            assert!(target.starts_with("COMMAND"), "{target}");
            assert!(!yes, "the highlighted button starts on No");
        }
        other => panic!("expected the backfill dialog, got {other:?}"),
    }
    // Enter presses the highlighted button: No.
    assert!(press(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(m.overlay.is_none());
    assert_eq!(
        m.selected_pipeline().map(|p| p.shown()),
        Some(Shown::Done(Status::Success))
    );
}

#[test]
fn esc_closes_the_dialog_without_confirming() {
    let mut m = model();
    select(&mut m, "orders");
    press(&mut m, key('b'));
    // Even with Yes highlighted, Esc backs out.
    press(&mut m, code(KeyCode::Right));
    assert!(matches!(
        m.overlay,
        Some(Overlay::Confirm { yes: true, .. })
    ));
    assert!(press(&mut m, code(KeyCode::Esc)).is_empty());
    assert!(m.overlay.is_none());
    assert!(!m.quit);
    // `n` backs out too, and unrelated keys do nothing while the dialog is open.
    press(&mut m, key('b'));
    assert!(press(&mut m, key('r')).is_empty());
    assert!(press(&mut m, key('q')).is_empty());
    assert!(m.overlay.is_some() && !m.quit);
    assert!(press(&mut m, key('n')).is_empty());
    assert!(m.overlay.is_none());
}

#[test]
fn y_confirms_the_backfill() {
    let mut m = model();
    select(&mut m, "orders");
    press(&mut m, key('b'));
    assert_eq!(
        press(&mut m, key('y')),
        [Command::Run {
            pipelines: vec!["orders".into()],
            mode: Mode::Backfill
        }]
    );
    assert!(m.overlay.is_none());
    assert!(matches!(
        m.selected_pipeline().map(|p| &p.activity),
        Some(Activity::Queued {
            mode: Mode::Backfill,
            ..
        })
    ));
}

#[test]
fn enter_on_yes_confirms() {
    let mut m = model();
    select(&mut m, "inventory");
    press(&mut m, key('b'));
    press(&mut m, code(KeyCode::Left));
    assert_eq!(
        press(&mut m, code(KeyCode::Enter)),
        [Command::Run {
            pipelines: vec!["inventory".into()],
            mode: Mode::Backfill
        }]
    );
}

#[test]
fn c_cancels_the_selected_run_after_confirmation() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    select(&mut m, "orders");
    assert!(press(&mut m, key('c')).is_empty());
    assert!(matches!(
        &m.overlay,
        Some(Overlay::Confirm { what: Confirm::Cancel { pipeline }, yes: false }) if pipeline == "orders"
    ));
    assert_eq!(
        press(&mut m, key('y')),
        [Command::Cancel {
            pipeline: "orders".into()
        }]
    );
    assert_eq!(
        m.selected_pipeline().map(|p| p.shown()),
        Some(Shown::Cancelling)
    );
}

#[test]
fn c_cancels_a_pipeline_queued_in_a_job_before_it_starts() {
    let mut m = model();
    model::apply(
        &mut m,
        SyncEvent::JobStarted {
            sync_job_id: JOB_NEW.into(),
            mode: Mode::Incremental,
            pipelines: vec!["inventory".into(), "orders".into()],
        },
    );
    select(&mut m, "orders");
    assert!(press(&mut m, key('c')).is_empty());
    assert!(matches!(
        &m.overlay,
        Some(Overlay::Confirm { what: Confirm::Cancel { pipeline }, yes: false }) if pipeline == "orders"
    ));
    assert_eq!(
        press(&mut m, key('y')),
        [Command::Cancel {
            pipeline: "orders".into()
        }]
    );
}

#[test]
fn c_on_an_idle_pipeline_only_says_so() {
    let mut m = model();
    select(&mut m, "orders");
    assert!(press(&mut m, key('c')).is_empty());
    assert!(m.overlay.is_none());
    let msg = m.message.as_ref().expect("a message");
    assert!(msg.text.contains("not running"), "{}", msg.text);
}

#[test]
fn q_quits_at_once_when_nothing_runs() {
    let mut m = model();
    assert!(press(&mut m, key('q')).is_empty());
    assert!(m.quit);

    let mut m = model();
    press(&mut m, ctrl_c());
    assert!(m.quit, "Ctrl-C arrives as a key in raw mode and quits");
}

#[test]
fn quit_asks_first_when_runs_are_active_and_then_cancels_them() {
    let mut m = model();
    started(&mut m, "products", Mode::Incremental);
    assert!(press(&mut m, key('q')).is_empty());
    assert!(!m.quit);
    assert!(matches!(
        m.overlay,
        Some(Overlay::Confirm {
            what: Confirm::Quit { active: 1 },
            yes: false
        })
    ));
    press(&mut m, code(KeyCode::Esc));
    assert!(!m.quit && m.overlay.is_none(), "Esc never quits");

    press(&mut m, ctrl_c());
    assert!(!m.quit, "Ctrl-C asks too");
    assert_eq!(press(&mut m, key('y')), [Command::CancelAll]);
    assert!(m.quit);
}

#[test]
fn esc_outside_a_dialog_does_nothing() {
    let mut m = model();
    let before = m.clone();
    assert!(press(&mut m, code(KeyCode::Esc)).is_empty());
    assert_eq!(m, before);
}

#[test]
fn a_asks_before_starting_every_pipeline_not_already_busy() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    assert!(
        press(&mut m, key('a')).is_empty(),
        "more than one: ask first"
    );
    match &m.overlay {
        Some(Overlay::Confirm {
            what: Confirm::RunAll { pipelines },
            yes: false,
        }) => assert_eq!(pipelines, &["inventory", "products"]),
        other => panic!("expected the run-all dialog, got {other:?}"),
    }
    assert_eq!(
        press(&mut m, key('y')),
        [Command::Run {
            pipelines: vec!["inventory".into(), "products".into()],
            mode: Mode::Incremental
        }]
    );
    assert!(press(&mut m, key('a')).is_empty());
    assert!(m.overlay.is_none(), "nothing left to start: no dialog");
}

#[test]
fn a_runs_what_the_filter_shows_and_one_pipeline_starts_without_asking() {
    let mut m = model();
    press(&mut m, key('/'));
    for c in "inv".chars() {
        press(&mut m, key(c));
    }
    press(&mut m, code(KeyCode::Enter));
    assert_eq!(
        press(&mut m, key('a')),
        [Command::Run {
            pipelines: vec!["inventory".into()],
            mode: Mode::Incremental
        }]
    );
    assert!(m.overlay.is_none());
}

#[test]
fn run_all_dialog_defaults_to_no() {
    let mut m = model();
    press(&mut m, key('a'));
    assert!(press(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(m.overlay.is_none());
    assert!(m.pipelines.iter().all(|p| !p.is_active()));
}

#[test]
fn help_opens_with_question_mark_and_esc_closes_it() {
    let mut m = model();
    press(&mut m, key('?'));
    assert!(matches!(m.overlay, Some(Overlay::Help { .. })));
    press(&mut m, key('j'));
    assert!(matches!(m.overlay, Some(Overlay::Help { scroll: 1 })));
    press(&mut m, code(KeyCode::Esc));
    assert!(m.overlay.is_none() && !m.quit);
}

#[test]
fn navigation_moves_and_jumps() {
    let mut m = model();
    press(&mut m, key('j'));
    assert_eq!(m.selected, 1);
    press(&mut m, code(KeyCode::Down));
    press(&mut m, code(KeyCode::Down));
    assert_eq!(m.selected, 2, "stops at the last row");
    press(&mut m, key('g'));
    assert_eq!(m.selected, 0);
    press(&mut m, key('G'));
    assert_eq!(m.selected, 2);
    press(&mut m, key('k'));
    assert_eq!(m.selected, 1);
    press(&mut m, code(KeyCode::Tab));
    assert_eq!(m.focus, Pane::Detail);
    press(&mut m, code(KeyCode::Tab));
    assert_eq!(m.focus, Pane::Log);
    press(&mut m, code(KeyCode::BackTab));
    assert_eq!(m.focus, Pane::Detail);
}

#[test]
fn filter_narrows_the_list_and_esc_clears_it() {
    let mut m = model();
    select(&mut m, "products");
    press(&mut m, key('/'));
    for c in "prod".chars() {
        press(&mut m, key(c));
    }
    assert_eq!(m.filter, "prod");
    assert_eq!(m.visible().len(), 1);
    assert_eq!(m.selected_pipeline().map(|p| p.name()), Some("products"));
    // Letters are text in the prompt, not commands.
    assert!(press(&mut m, key('q')).is_empty() && !m.quit);
    press(&mut m, code(KeyCode::Backspace));
    press(&mut m, code(KeyCode::Enter));
    assert!(!m.filter_editing);
    assert_eq!(m.filter, "prod");
    press(&mut m, key('/'));
    press(&mut m, code(KeyCode::Esc));
    assert!(m.filter.is_empty() && !m.filter_editing);
    assert_eq!(m.visible().len(), 3);
    assert_eq!(m.selected_pipeline().map(|p| p.name()), Some("products"));
}

#[test]
fn live_rows_then_the_report_from_pipeline_finished() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    for (stream, rows, total) in [("main.orders", 3, 3), ("main.customers", 2, 5)] {
        model::apply(
            &mut m,
            SyncEvent::Rows {
                pipeline: "orders".into(),
                attempt: 1,
                stream: stream.into(),
                rows,
                total,
            },
        );
    }
    let run = m.pipeline("orders").and_then(|p| p.run()).expect("running");
    assert_eq!(run.rows, 5);
    assert_eq!(run.streams.get("main.customers"), Some(&2));

    let mut r = report("orders", Status::Success, 5, &[("main.orders", 3)], 0, None);
    r.sync_job_id = JOB_NEW.into();
    model::apply(&mut m, SyncEvent::PipelineFinished { report: r.clone() });
    let p = m.pipeline("orders").expect("orders");
    assert_eq!(p.activity, Activity::Idle);
    assert_eq!(p.last.as_ref(), Some(&r));
    model::apply(
        &mut m,
        SyncEvent::JobFinished {
            report: JobReport {
                sync_job_id: JOB_NEW.into(),
                mode: Mode::Incremental,
                status: Status::Success,
                rows: 5,
                duration_seconds: 1.0,
                pipelines: vec![r],
            },
        },
    );
    assert!(m.active_jobs.is_empty());
    assert_eq!(m.last_job.as_deref(), Some(JOB_NEW));
}

/// The real engine (with the hanging Sling shim) and the model together: the model folds exactly the events the
/// engine produces, and sends exactly the commands the keys give.
struct Live {
    model: Model,
    events: EventStream,
    commands: mpsc::UnboundedSender<Command>,
    stop: CancellationToken,
    serve: tokio::task::JoinHandle<()>,
    _world: common::World,
    _shim_dir: tempfile::TempDir,
}

impl Live {
    fn start() -> Self {
        Self::with_concurrency(1)
    }

    /// As the console runs it: the engine's `concurrency` is `SYNC_CONCURRENCY`.
    fn with_concurrency(concurrency: usize) -> Self {
        let world = common::World::new();
        let shim_dir = tempfile::tempdir().expect("tempdir");
        let engine = common::engine(
            &world,
            common::shim(),
            &[
                ("SHIM_DIR", shim_dir.path().display().to_string()),
                ("SHIM_MODE", "hang".into()),
            ],
        );
        let engine = Engine::new(
            EngineConfig {
                concurrency,
                ..engine.config().clone()
            },
            Redactor::default(),
        );
        let pipelines =
            pipeline::discover(&PipelineSource::Dir(world.pipelines.clone())).expect("discover");
        let cfg = engine.config();
        let model = Model::new(ModelInit {
            mission_cluster_id: cfg.mission_cluster_id.clone(),
            pipelines: pipelines
                .iter()
                .map(|p| describe::pipeline_info(p, &cfg.env, &cfg.state))
                .collect(),
            history: cfg.state.history().latest,
            state_root: cfg.state.root().display().to_string(),
            max_attempts: cfg.retry.max_attempts(),
            telemetry_enabled: false,
            no_color: true,
            now: chrono::Utc::now(),
        });
        let (sink, events) = event::channel(1000);
        let (commands, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let serve = tokio::spawn(engine.serve(rx, pipelines, sink, stop.clone()));
        Self {
            model,
            events,
            commands,
            stop,
            serve,
            _world: world,
            _shim_dir: shim_dir,
        }
    }

    /// Presses a key on the model and hands its commands to the engine, as the console loop does.
    fn press(&mut self, ev: crossterm::event::KeyEvent) -> Vec<Command> {
        let cmds = press(&mut self.model, ev);
        for c in &cmds {
            self.commands.send(c.clone()).expect("engine listens");
        }
        cmds
    }

    /// The next engine event; a bound only so that a missing event fails the test instead of hanging it.
    async fn next(&mut self, waiting_for: &str) -> SyncEvent {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.events.recv())
            .await
            .unwrap_or_else(|_| panic!("the engine never sent {waiting_for}"))
            .expect("the engine is serving")
    }

    /// Folds events into the model up to and including the first one `last` accepts; returns them all.
    async fn fold_until(
        &mut self,
        waiting_for: &str,
        mut last: impl FnMut(&SyncEvent) -> bool,
    ) -> Vec<SyncEvent> {
        let mut seen = Vec::new();
        loop {
            let ev = self.next(waiting_for).await;
            let done = last(&ev);
            model::apply(&mut self.model, ev.clone());
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }

    async fn shut_down(self) {
        self.stop.cancel();
        drop(self.commands);
        self.serve.await.expect("serve ends");
    }
}

fn attempt_started(ev: &SyncEvent, name: &str) -> bool {
    matches!(ev, SyncEvent::AttemptStarted { pipeline, .. } if pipeline == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_cancelled_before_it_started_leaves_the_queue() {
    let mut live = Live::start();
    // `a` runs both after a confirmation; orders (first) hangs in Sling, products waits behind it in the same job.
    assert!(live.press(key('a')).is_empty(), "a asks first for two");
    assert_eq!(
        live.press(key('y')),
        [Command::Run {
            pipelines: vec!["orders".into(), "products".into()],
            mode: Mode::Incremental
        }]
    );
    live.fold_until("orders' attempt", |ev| attempt_started(ev, "orders"))
        .await;
    let queued = live.model.pipeline("products").map(|p| p.activity.clone());
    assert!(
        matches!(
            queued,
            Some(Activity::Queued {
                job_id: Some(_),
                ..
            })
        ),
        "{queued:?}"
    );
    for name in ["products", "orders"] {
        select(&mut live.model, name);
        assert!(live.press(key('c')).is_empty(), "c asks first");
        assert_eq!(
            live.press(key('y')),
            [Command::Cancel {
                pipeline: name.into()
            }]
        );
    }
    let seen = live
        .fold_until("the end of the job", |ev| {
            matches!(ev, SyncEvent::JobFinished { .. })
        })
        .await;
    // The engine reports the queued pipeline's end like any other, before the job's end.
    let products_end = seen.iter().position(|ev| {
        matches!(ev, SyncEvent::PipelineFinished { report }
            if report.pipeline == "products" && report.status == Status::Cancelled
                && report.error.as_deref() == Some("cancelled before it started"))
    });
    assert!(products_end.is_some(), "{seen:#?}");
    for name in ["orders", "products"] {
        assert_eq!(
            live.model.pipeline(name).map(|p| p.shown()),
            Some(Shown::Done(Status::Cancelled)),
            "{name}"
        );
    }
    live.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_engine_does_not_start_is_answered_and_the_row_leaves_the_queue() {
    let mut live = Live::start();
    // orders is started by a command the model has not heard of yet (its events are not folded here): from the
    // model's side the row is idle, so `r` asks for it.
    live.commands
        .send(Command::Run {
            pipelines: vec!["orders".into()],
            mode: Mode::Incremental,
        })
        .expect("engine listens");
    while !attempt_started(&live.next("orders' attempt").await, "orders") {}
    select(&mut live.model, "orders");
    assert_eq!(live.press(key('r')).len(), 1);
    assert_eq!(
        live.model.pipeline("orders").map(|p| p.shown()),
        Some(Shown::Queued)
    );
    let seen = live
        .fold_until("an answer to the second run of orders", |ev| {
            matches!(ev, SyncEvent::RunRefused { .. })
        })
        .await;
    assert!(
        matches!(seen.last(), Some(SyncEvent::RunRefused { pipeline, reason })
            if pipeline == "orders" && reason.contains("already")),
        "{seen:#?}"
    );
    assert_eq!(
        live.model.pipeline("orders").map(|p| p.shown()),
        Some(Shown::Never),
        "the row is not left queued"
    );
    let msg = live.model.message.clone().expect("the operator is told");
    assert!(
        msg.error && msg.text.contains("orders was not started"),
        "{msg:?}"
    );
    live.commands
        .send(Command::Cancel {
            pipeline: "orders".into(),
        })
        .expect("engine listens");
    live.fold_until("the end of the job", |ev| {
        matches!(ev, SyncEvent::JobFinished { .. })
    })
    .await;
    live.shut_down().await;
}

#[test]
fn countdown_runs_from_the_deadline_and_a_fixed_now() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    retry_in(&mut m, "orders", 7);
    assert_eq!(
        m.pipeline("orders").map(|p| p.shown()),
        Some(Shown::Retrying)
    );
    assert!(text(&render(&m, 100, 30, t0())).contains(" 2/3 in 7s"));
    let later = t0() + chrono::Duration::milliseconds(5_500);
    assert!(text(&render(&m, 100, 30, later)).contains(" 2/3 in 2s"));
    assert!(text(&render(&m, 100, 30, t0() + secs(8))).contains(" 2/3 now"));
    // The next attempt clears the countdown.
    model::apply(
        &mut m,
        SyncEvent::AttemptStarted {
            pipeline: "orders".into(),
            attempt: 2,
            max_attempts: 3,
            pid: Some(1),
        },
    );
    assert_eq!(
        m.pipeline("orders").map(|p| p.shown()),
        Some(Shown::Running)
    );
    assert!(!text(&render(&m, 100, 30, t0() + secs(8))).contains(" 2/3 in "));
}

#[test]
fn tick_expires_the_message() {
    let mut m = model();
    press(&mut m, key('c'));
    assert!(m.message.is_some());
    model::tick(&mut m, t0() + secs(2));
    assert!(m.message.is_some());
    model::tick(&mut m, t0() + secs(6));
    assert!(m.message.is_none());
}

#[test]
fn log_buffer_is_bounded_and_counts_every_drop() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    let before = m.pipeline("orders").map_or(0, |p| p.log.len());
    for i in 0..LOG_CAPACITY + 100 {
        log(&mut m, "orders", Level::Info, &format!("line {i}"));
    }
    let p = m.pipeline("orders").expect("orders");
    assert_eq!(p.log.len(), LOG_CAPACITY);
    assert_eq!(p.log.dropped, (before + 100) as u64);
    model::apply(
        &mut m,
        SyncEvent::LinesDropped {
            pipeline: "orders".into(),
            count: 7,
        },
    );
    let dropped = m.pipeline("orders").map_or(0, |p| p.log.dropped);
    assert_eq!(dropped, (before + 107) as u64);
    select(&mut m, "orders");
    let screen = text(&render(&m, 100, 30, t0()));
    assert!(
        screen.contains(&format!("dropped {dropped} lines")),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("line {}", LOG_CAPACITY + 99)),
        "follows the tail"
    );
}

#[test]
fn log_pane_scrolls_back_and_follows_again() {
    let mut m = model();
    select(&mut m, "orders");
    for i in 0..50 {
        log(&mut m, "orders", Level::Info, &format!("line {i}"));
    }
    m.log_rows = 10;
    m.focus = Pane::Log;
    press(&mut m, key('k'));
    press(&mut m, code(KeyCode::PageUp));
    let p = m.pipeline("orders").expect("orders");
    assert_eq!(p.log.scroll(), 11);
    // New lines do not move a scrolled-back view.
    log(&mut m, "orders", Level::Warn, "new");
    assert_eq!(m.pipeline("orders").map(|p| p.log.scroll()), Some(12));
    press(&mut m, key('g'));
    let screen = text(&render(&m, 100, 30, t0()));
    assert!(screen.contains("line 0"), "{screen}");
    press(&mut m, key('G'));
    assert!(m.pipeline("orders").is_some_and(|p| p.log.following()));
}

#[test]
fn the_key_list_has_no_clashes_and_feeds_hints_and_help() {
    for scope in keys::HELP_ORDER {
        let keys: Vec<_> = KEYS
            .iter()
            .filter(|b| b.scope == scope)
            .flat_map(|b| b.keys.iter())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(
                !keys[i + 1..].contains(k),
                "{k:?} is bound twice in {scope:?}"
            );
        }
    }
    // Every main action key the brief names is in the list that the help and the hint bar are built from.
    let help: Vec<(&str, &str)> = keys::help(Scope::Main).collect();
    for label in [
        "r Enter", "n", "b", "a", "c", "h", "/", "?", "q ^C", "Tab", "S-Tab", "g Home", "G End",
    ] {
        assert!(help.iter().any(|(l, _)| *l == label), "help lacks {label}");
    }
    assert!(keys::hints(Scope::Dialog).any(|(l, w)| l == "y" && w == "yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_from_the_console_runs_up_to_the_concurrency_limit_at_once() {
    let mut live = Live::with_concurrency(2);
    assert!(live.press(key('a')).is_empty(), "a asks first for two");
    assert_eq!(
        live.press(key('y')),
        [Command::Run {
            pipelines: vec!["orders".into(), "products".into()],
            mode: Mode::Incremental
        }]
    );
    // Both hang in Sling; with one at a time, products would wait behind orders and never start.
    let mut started = std::collections::BTreeSet::new();
    live.fold_until("both attempts", |ev| {
        if let SyncEvent::AttemptStarted { pipeline, .. } = ev {
            started.insert(pipeline.clone());
        }
        started.len() == 2
    })
    .await;
    for name in ["orders", "products"] {
        let activity = live.model.pipeline(name).map(|p| p.activity.clone());
        assert!(
            matches!(activity, Some(Activity::Active(_))),
            "{name}: {activity:?}"
        );
    }
    live.shut_down().await;
}

fn noop_report(pipeline: &str, checks: &[(CheckKind, bool)]) -> PipelineReport {
    let mut r = report(pipeline, Status::Success, 0, &[], 0, None);
    r.mode = Mode::Noop;
    r.attempts = 1;
    r.checks = checks
        .iter()
        .map(|(kind, ok)| Check {
            kind: kind.clone(),
            outcome: if *ok {
                CheckOutcome::Ok
            } else {
                CheckOutcome::Failed
            },
            detail: Redactor::default().redacted("detail"),
        })
        .collect();
    if checks.iter().any(|(_, ok)| !ok) {
        r.status = Status::Failed;
        r.error = Some(Redactor::default().redacted("a check failed"));
    }
    r
}

#[test]
fn a_noop_never_overwrites_the_last_sync_result() {
    let mut m = model();
    assert_eq!(m.failed_count(), 1);
    started(&mut m, "products", Mode::Noop);
    model::apply(
        &mut m,
        SyncEvent::PipelineFinished {
            report: noop_report(
                "products",
                &[(CheckKind::Source, true), (CheckKind::Target, true)],
            ),
        },
    );
    let p = m.pipeline("products").expect("products");
    assert_eq!(
        p.shown(),
        Shown::Done(Status::Failed),
        "still the last sync"
    );
    assert_eq!(p.last.as_ref().map(|r| r.mode), Some(Mode::Incremental));
    assert_eq!(p.last_noop.as_ref().map(|r| r.checks.len()), Some(2));
    assert_eq!(m.failed_count(), 1, "a passing noop does not clear failed");

    // A noop on a pipeline that never synced leaves it `never run`.
    started(&mut m, "inventory", Mode::Noop);
    model::apply(
        &mut m,
        SyncEvent::PipelineFinished {
            report: noop_report("inventory", &[(CheckKind::Source, false)]),
        },
    );
    assert_eq!(
        m.pipeline("inventory").map(|p| p.shown()),
        Some(Shown::Never)
    );
    assert_eq!(m.failed_count(), 1, "a failed noop is not a failed sync");
}

#[test]
fn the_journal_gives_sync_and_noop_apart_and_the_log_starts_with_the_last_error() {
    let mut init_history = vec![
        products_failed(),
        noop_report("products", &[(CheckKind::Source, true)]),
    ];
    init_history[1].finished_at = t0() - secs(60);
    let m = model_with(init_history);
    let p = m.pipeline("products").expect("products");
    assert_eq!(p.shown(), Shown::Done(Status::Failed));
    assert!(p.last_noop.is_some());
    let lines: Vec<String> = p.log.window(10).map(|e| e.text.clone()).collect();
    assert!(
        lines.iter().any(
            |l| l.contains("failed: sling exited with 1: table public.products does not exist")
        ),
        "{lines:?}"
    );
    assert!(
        m.pipeline("inventory").is_some_and(|p| p.log.is_empty()),
        "never run: nothing to say"
    );
}

#[test]
fn cancelled_with_a_cancel_reason_is_said_once() {
    assert_eq!(
        model::outcome_text(Status::Cancelled, Some("cancelled: context canceled")),
        "cancelled: context canceled"
    );
    assert_eq!(
        model::outcome_text(Status::Cancelled, Some("cancelled")),
        "cancelled"
    );
    assert_eq!(
        model::outcome_text(Status::Failed, Some("sling exited with code 1")),
        "failed: sling exited with code 1"
    );
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    model::apply(
        &mut m,
        SyncEvent::AttemptFinished {
            pipeline: "orders".into(),
            outcome: AttemptOutcome {
                attempt: 1,
                exit_code: Some(1),
                status: Status::Cancelled,
                rows: 0,
                streams: Default::default(),
                reason: Some(Redactor::default().redacted("cancelled: context canceled")),
                retryable: false,
                duration: std::time::Duration::from_secs(1),
            },
        },
    );
    let last = m
        .pipeline("orders")
        .and_then(|p| p.log.window(1).next().map(|e| e.text.clone()))
        .unwrap_or_default();
    assert_eq!(last, "── attempt 1 cancelled: context canceled ──");
}

#[test]
fn cancelling_during_the_backoff_does_not_promise_a_sigint() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    retry_in(&mut m, "orders", 30);
    select(&mut m, "orders");
    press(&mut m, key('c'));
    assert_eq!(
        press(&mut m, key('y')),
        [Command::Cancel {
            pipeline: "orders".into()
        }]
    );
    let text = m
        .message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default();
    assert!(text.contains("the retry will not start"), "{text}");
    assert!(!text.contains("SIGINT"), "{text}");
}

#[test]
fn a_second_ctrl_c_in_the_quit_dialog_quits_at_once() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    assert!(press(&mut m, ctrl_c()).is_empty());
    assert!(matches!(
        m.overlay,
        Some(Overlay::Confirm {
            what: Confirm::Quit { .. },
            ..
        })
    ));
    assert_eq!(press(&mut m, ctrl_c()), [Command::CancelAll]);
    assert!(m.quit);
}

#[test]
fn ctrl_c_in_another_dialog_asks_to_quit() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    select(&mut m, "products");
    press(&mut m, key('b'));
    press(&mut m, ctrl_c());
    assert!(matches!(
        m.overlay,
        Some(Overlay::Confirm {
            what: Confirm::Quit { active: 1 },
            yes: false
        })
    ));
    assert!(!m.quit);
}

#[test]
fn help_pages_and_jumps() {
    let mut m = model();
    m.overlay_rows = 5;
    press(&mut m, key('?'));
    press(&mut m, code(KeyCode::PageDown));
    assert_eq!(m.overlay, Some(Overlay::Help { scroll: 5 }));
    press(&mut m, key('G'));
    let last = u16::try_from(keys::help_rows() - 5).expect("fits");
    assert_eq!(m.overlay, Some(Overlay::Help { scroll: last }));
    press(&mut m, key('j'));
    assert_eq!(
        m.overlay,
        Some(Overlay::Help { scroll: last }),
        "clamped at the end"
    );
    press(&mut m, code(KeyCode::PageUp));
    assert_eq!(m.overlay, Some(Overlay::Help { scroll: last - 5 }));
    press(&mut m, key('g'));
    assert_eq!(m.overlay, Some(Overlay::Help { scroll: 0 }));
}

#[test]
fn h_asks_for_the_history_which_scrolls_and_takes_new_runs() {
    let mut m = model();
    select(&mut m, "orders");
    assert!(press(&mut m, key('h')).is_empty());
    assert_eq!(m.history_request.as_deref(), Some("orders"));
    // What the console does with the request: read the journal, newest first.
    let runs: Vec<PipelineReport> = (0..30)
        .map(|i| report("orders", Status::Success, i, &[], i as i64 * 60, None))
        .collect();
    let name = m.history_request.take().expect("request");
    model::show_history(&mut m, name, runs);
    m.overlay_rows = 10;
    let selected = |m: &Model| match &m.overlay {
        Some(Overlay::History { selected, .. }) => *selected,
        other => panic!("expected the history, got {other:?}"),
    };
    press(&mut m, key('j'));
    assert_eq!(selected(&m), 1);
    press(&mut m, code(KeyCode::PageDown));
    assert_eq!(selected(&m), 11);
    press(&mut m, key('G'));
    assert_eq!(selected(&m), 29);
    press(&mut m, key('g'));
    assert_eq!(selected(&m), 0);
    press(&mut m, key('j'));
    // A run that finishes meanwhile goes on top; the selection stays on the same run.
    started(&mut m, "orders", Mode::Incremental);
    let mut fresh = report("orders", Status::Failed, 0, &[], 0, Some("boom"));
    fresh.sync_job_id = JOB_NEW.into();
    model::apply(&mut m, SyncEvent::PipelineFinished { report: fresh });
    match &m.overlay {
        Some(Overlay::History { runs, selected, .. }) => {
            assert_eq!(runs.len(), 31);
            assert_eq!(runs[0].sync_job_id, JOB_NEW);
            assert_eq!(*selected, 2);
        }
        other => panic!("expected the history, got {other:?}"),
    }
    press(&mut m, code(KeyCode::Esc));
    assert!(m.overlay.is_none());
}

#[test]
fn clearing_the_filter_keeps_the_pipeline_selected_under_it() {
    let mut m = model();
    press(&mut m, key('/'));
    for c in "o".chars() {
        press(&mut m, key(c));
    }
    // `o` matches inventory, orders and products; pick products under the filter.
    press(&mut m, code(KeyCode::Down));
    press(&mut m, code(KeyCode::Down));
    assert_eq!(m.selected_pipeline().map(|p| p.name()), Some("products"));
    press(&mut m, code(KeyCode::Esc));
    assert_eq!(m.selected_pipeline().map(|p| p.name()), Some("products"));
}

#[test]
fn progress_ticks_show_rows_so_far_until_sling_counts_the_stream() {
    let mut m = model();
    started(&mut m, "orders", Mode::Incremental);
    let tick = |m: &mut Model, rows, rate| {
        model::apply(
            m,
            SyncEvent::Progress {
                pipeline: "orders".into(),
                attempt: 1,
                stream: Some("main.orders".into()),
                rows,
                rows_per_sec: rate,
            },
        )
    };
    tick(&mut m, 31_791, None);
    tick(&mut m, 57_247, Some(25_489));
    let run = m.pipeline("orders").and_then(|p| p.run()).expect("running");
    assert_eq!(run.rows_so_far(), 57_247);
    assert_eq!(
        run.progress.as_ref().and_then(|p| p.rows_per_sec),
        Some(25_489)
    );
    // `inserted N rows` counts the stream: its progress must not be added on top.
    model::apply(
        &mut m,
        SyncEvent::Rows {
            pipeline: "orders".into(),
            attempt: 1,
            stream: "main.orders".into(),
            rows: 60_000,
            total: 60_000,
        },
    );
    let run = m.pipeline("orders").and_then(|p| p.run()).expect("running");
    assert_eq!(run.rows_so_far(), 60_000);
    assert!(run.progress.is_none());
}

#[test]
fn a_run_refused_by_another_process_lock_is_busy_not_failed_until_the_lock_is_free() {
    let mut m = model();
    let failed_before = m.failed_count();
    started(&mut m, "orders", Mode::Incremental);
    model::apply(
        &mut m,
        SyncEvent::PipelineLocked {
            pipeline: "orders".into(),
            sync_job_id: JOB_NEW.into(),
            holder: "pid 4711 job cron-17 since 2026-03-01T11:58:00Z".into(),
        },
    );
    let mut refused = report(
        "orders",
        Status::Skipped,
        0,
        &[],
        0,
        Some("pipeline `orders` is already running (pid 4711 job cron-17 since …)"),
    );
    refused.sync_job_id = JOB_NEW.into();
    model::apply(&mut m, SyncEvent::PipelineFinished { report: refused });
    let p = m.pipeline("orders").expect("orders");
    assert_eq!(p.shown(), Shown::Busy);
    assert_eq!(
        p.last.as_ref().map(|r| r.status),
        Some(Status::Success),
        "the refusal is not a run"
    );
    assert_eq!(m.failed_count(), failed_before, "busy is not failed");
    assert!(p
        .locked
        .as_ref()
        .is_some_and(|l| l.holder.contains("pid 4711")));

    // The other process finished and recorded its run; the row takes it from the journal.
    let mut theirs = report("orders", Status::Success, 42, &[], 0, None);
    theirs.sync_job_id = "cron-17".into();
    model::lock_released(&mut m, "orders", &[theirs]);
    let p = m.pipeline("orders").expect("orders");
    assert_eq!(p.shown(), Shown::Done(Status::Success));
    assert_eq!(p.last.as_ref().map(|r| r.rows), Some(42));
}

#[test]
fn u_rescans_and_the_list_follows_the_files_keeping_state_and_selection() {
    let mut m = model();
    select(&mut m, "products");
    assert!(press(&mut m, key('u')).is_empty());
    assert!(m.rescan_request, "the console reads the files");
    started(&mut m, "orders", Mode::Incremental);
    // The console read the directory again: inventory and orders were removed, audit was added.
    model::set_pipelines(
        &mut m,
        vec![
            info("audit", &[("main.audit", "incremental")]),
            info("products", &[("public.products", "full-refresh")]),
        ],
    );
    let names: Vec<&str> = m.pipelines.iter().map(|p| p.name()).collect();
    // orders is still running, so it stays until it finishes; inventory is gone.
    assert_eq!(names, ["audit", "orders", "products"]);
    assert_eq!(m.selected_pipeline().map(|p| p.name()), Some("products"));
    assert_eq!(
        m.pipeline("products").map(|p| p.shown()),
        Some(Shown::Done(Status::Failed)),
        "kept its state"
    );
    assert_eq!(m.pipeline("audit").map(|p| p.shown()), Some(Shown::Never));
    let text = m
        .message
        .as_ref()
        .map(|x| x.text.clone())
        .unwrap_or_default();
    assert!(text.contains("1 new, 1 gone"), "{text}");
}
