//! Frame-render benchmark for the console (run by `scripts/bench-console.sh`, release build): 200 pipelines with
//! 500 buffered Sling lines each (100k lines in all), some running, retrying and failed, drawn into ratatui's
//! TestBackend at 80x24 and 160x48. Prints the median, 99th percentile and maximum time per frame.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sling_sync_wrapper::sync::event::{Mode, PipelineReport, Status, SyncEvent};
use sling_sync_wrapper::sync::redact::Redactor;
use sling_sync_wrapper::sync::sling_log::{Level, LogLine, Pipe};
use sling_sync_wrapper::ui::model::{self, Model, ModelInit, PipelineInfo, StreamInfo};
use sling_sync_wrapper::ui::view;

const PIPELINES: usize = 200;
const LINES_EACH: usize = 500;
const FRAMES: usize = 300;

fn main() {
    let now = Utc::now();
    let redactor = Redactor::default();
    let names: Vec<String> = (0..PIPELINES)
        .map(|i| format!("mission{:02}-pipeline-{i:03}", i % 7))
        .collect();
    let history = names
        .iter()
        .enumerate()
        .map(|(i, n)| PipelineReport {
            sync_job_id: "0badc0de-1111-4222-8333-444455556666".into(),
            pipeline: n.clone(),
            mode: Mode::Incremental,
            status: if i % 9 == 0 {
                Status::Failed
            } else {
                Status::Success
            },
            rows: (i as u64) * 1_234,
            streams: BTreeMap::from([("main.orders".to_string(), (i as u64) * 1_234)]),
            attempts: 1,
            started_at: now - chrono::Duration::seconds(400),
            finished_at: now - chrono::Duration::seconds(300),
            duration_seconds: 100.0,
            error: (i % 9 == 0)
                .then(|| redactor.redacted("sling exited with code 1: could not connect")),
            checks: Vec::new(),
            verify: None,
        })
        .collect();
    let mut m = Model::new(ModelInit {
        mission_cluster_id: "mission-01".into(),
        pipelines: names
            .iter()
            .map(|n| PipelineInfo {
                name: n.clone(),
                source: "MISSION (postgres://sync:***@mission-db:5432/ops)".into(),
                target: "COMMAND (postgres://sync:***@command-db:5432/hq)".into(),
                streams: vec![StreamInfo {
                    name: "main.orders".into(),
                    mode: Some("incremental".into()),
                }],
                state_path: format!("/var/lib/sling_state/{n}"),
                problem: None,
            })
            .collect(),
        history,
        state_root: "/var/lib/sling_state".into(),
        max_attempts: 4,
        telemetry_enabled: true,
        no_color: false,
        now,
    });
    for (i, n) in names.iter().enumerate().take(20) {
        model::apply(
            &mut m,
            SyncEvent::PipelineStarted {
                sync_job_id: "5eed5eed-aaaa-4bbb-8ccc-ddddeeeeffff".into(),
                pipeline: n.clone(),
                mode: Mode::Incremental,
                max_attempts: 4,
            },
        );
        if i % 2 == 0 {
            model::apply(
                &mut m,
                SyncEvent::RetryScheduled {
                    pipeline: n.clone(),
                    next_attempt: 2,
                    max_attempts: 4,
                    delay: Duration::from_secs(30),
                    at: SystemTime::now() + Duration::from_secs(30),
                },
            );
        }
    }
    for n in &names {
        for j in 0..LINES_EACH {
            model::apply(
                &mut m,
                SyncEvent::Log {
                    pipeline: n.clone(),
                    attempt: 1,
                    line: redactor.redact_line(LogLine {
                        pipe: Pipe::Stdout,
                        level: if j % 50 == 0 { Level::Warn } else { Level::Info },
                        time: Some("2026-03-01T11:59:58Z".into()),
                        message: format!(
                            "line {j} of a chatty run: inserted rows into \"main\".\"orders\" with a long tail that wraps at 80 columns"
                        ),
                    }),
                },
            );
        }
    }
    let buffered: usize = m.pipelines.iter().map(|p| p.log.len()).sum();
    println!("pipelines: {PIPELINES}, log lines buffered: {buffered}");
    m.selected = PIPELINES / 2;
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut terminal = match Terminal::new(TestBackend::new(w, h)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot create the test terminal: {e}");
                std::process::exit(1);
            }
        };
        let mut times = Vec::with_capacity(FRAMES);
        for f in 0..FRAMES {
            // Move the selection and the clock like an operator and the tick would.
            m.selected = (PIPELINES / 2 + f) % PIPELINES;
            let frame_now = now + chrono::Duration::milliseconds(f as i64 * 500);
            let started = Instant::now();
            if let Err(e) = terminal.draw(|frame| view::render(frame, &m, frame_now)) {
                eprintln!("draw failed: {e}");
                std::process::exit(1);
            }
            times.push(started.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "frame {w}x{h}: median {:.3} ms, p99 {:.3} ms, max {:.3} ms ({FRAMES} frames)",
            ms(times[FRAMES / 2]),
            ms(times[FRAMES * 99 / 100]),
            ms(times[FRAMES - 1])
        );
    }
}
