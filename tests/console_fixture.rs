//! Fixed pipelines, history, times and ids for the console tests (included by `console_model` and
//! `console_render` with `#[path]`; as a test target of its own it holds only a smoke test).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sling_sync_wrapper::sync::event::{Command, Mode, PipelineReport, Status, SyncEvent};
use sling_sync_wrapper::sync::redact::Redactor;
use sling_sync_wrapper::sync::sling_log::{Level, LogLine, Pipe};
use sling_sync_wrapper::ui::input;
use sling_sync_wrapper::ui::model::{self, Model, ModelInit, PipelineInfo, StreamInfo};
use sling_sync_wrapper::ui::view;

pub const JOB_OLD: &str = "0badc0de-1111-4222-8333-444455556666";
pub const JOB_NEW: &str = "5eed5eed-aaaa-4bbb-8ccc-ddddeeeeffff";

/// 2026-03-01 12:00:00 UTC: every test's "now".
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

pub fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

pub fn info(name: &str, streams: &[(&str, &str)]) -> PipelineInfo {
    PipelineInfo {
        name: name.into(),
        source: "MISSION (postgres://sync:***@mission-db:5432/ops)".into(),
        target: "COMMAND (postgres://sync:***@command-db:5432/hq)".into(),
        streams: streams
            .iter()
            .map(|(n, m)| StreamInfo {
                name: (*n).into(),
                mode: Some((*m).into()),
            })
            .collect(),
        state_path: format!("/var/lib/sling_state/pipelines/{name}"),
        problem: None,
    }
}

pub fn report(
    pipeline: &str,
    status: Status,
    rows: u64,
    streams: &[(&str, u64)],
    finished_ago: i64,
    error: Option<&str>,
) -> PipelineReport {
    let finished_at = t0() - secs(finished_ago);
    PipelineReport {
        sync_job_id: JOB_OLD.into(),
        pipeline: pipeline.into(),
        mode: Mode::Incremental,
        status,
        rows,
        streams: streams
            .iter()
            .map(|(s, n)| ((*s).into(), *n))
            .collect::<BTreeMap<_, _>>(),
        attempts: if status == Status::Failed { 4 } else { 1 },
        started_at: finished_at - secs(12),
        finished_at,
        duration_seconds: 12.4,
        error: error.map(|e| Redactor::default().redacted(e)),
        checks: Vec::new(),
        verify: None,
    }
}

/// `products` failed 2 hours ago: its table is missing on the source.
pub fn products_failed() -> PipelineReport {
    report(
        "products",
        Status::Failed,
        0,
        &[],
        7200,
        Some("sling exited with 1: table public.products does not exist"),
    )
}

/// Three pipelines: `inventory` never ran, `orders` succeeded 5 minutes ago, `products` failed 2 hours ago.
pub fn model() -> Model {
    model_with(vec![
        report(
            "orders",
            Status::Success,
            1_234_567,
            &[("main.orders", 1_234_000), ("main.customers", 567)],
            300,
            None,
        ),
        products_failed(),
    ])
}

/// The three pipelines with the given journal records.
pub fn model_with(history: Vec<PipelineReport>) -> Model {
    Model::new(ModelInit {
        mission_cluster_id: "mission-01".into(),
        pipelines: vec![
            info("inventory", &[("main.products", "full-refresh")]),
            info(
                "orders",
                &[
                    ("main.orders", "incremental"),
                    ("main.customers", "incremental"),
                ],
            ),
            info("products", &[("public.products", "full-refresh")]),
        ],
        history,
        state_root: "/var/lib/sling_state".into(),
        max_attempts: 4,
        telemetry_enabled: true,
        no_color: false,
        now: t0(),
    })
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

pub fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

pub fn ctrl_c() -> KeyEvent {
    KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
}

/// Maps and applies one key, as the console loop does.
pub fn press(m: &mut Model, ev: KeyEvent) -> Vec<Command> {
    match input::map_key(m, &ev) {
        Some(action) => input::update(m, action),
        None => Vec::new(),
    }
}

pub fn select(m: &mut Model, name: &str) {
    let pos = m
        .visible()
        .iter()
        .position(|&i| m.pipelines[i].info.name == name)
        .expect("pipeline is visible");
    m.selected = pos;
}

pub fn started(m: &mut Model, pipeline: &str, mode: Mode) {
    model::apply(
        m,
        SyncEvent::JobStarted {
            sync_job_id: JOB_NEW.into(),
            mode,
            pipelines: vec![pipeline.into()],
        },
    );
    model::apply(
        m,
        SyncEvent::PipelineStarted {
            sync_job_id: JOB_NEW.into(),
            pipeline: pipeline.into(),
            mode,
            max_attempts: 3,
        },
    );
    model::apply(
        m,
        SyncEvent::AttemptStarted {
            pipeline: pipeline.into(),
            attempt: 1,
            max_attempts: 3,
            pid: Some(4242),
        },
    );
}

pub fn log(m: &mut Model, pipeline: &str, level: Level, msg: &str) {
    model::apply(
        m,
        SyncEvent::Log {
            pipeline: pipeline.into(),
            attempt: 1,
            line: Redactor::default().redact_line(LogLine {
                pipe: Pipe::Stdout,
                level,
                time: Some("2026-03-01T11:59:58Z".into()),
                message: msg.into(),
            }),
        },
    );
}

pub fn retry_in(m: &mut Model, pipeline: &str, secs_from_t0: u64) {
    let at = SystemTime::from(t0()) + Duration::from_secs(secs_from_t0);
    model::apply(
        m,
        SyncEvent::RetryScheduled {
            pipeline: pipeline.into(),
            next_attempt: 2,
            max_attempts: 3,
            delay: Duration::from_secs(secs_from_t0),
            at,
        },
    );
}

/// Renders into a TestBackend of the given size at a fixed `now`.
pub fn render(m: &Model, w: u16, h: u16, now: DateTime<Utc>) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| view::render(f, m, now)).expect("draw");
    t
}

/// The screen as plain text, one line per row.
pub fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn fixture_builds() {
    let m = model();
    assert_eq!(m.pipelines.len(), 3);
}
