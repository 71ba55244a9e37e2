//! The engine's promises to everything downstream, checked on the engine as a library with the real Sling on
//! SQLite: every span and event meant for export carries an exported target, and no text leaves it unredacted.

mod common;

use std::sync::{Arc, Mutex};

use common::World;
use sling_sync_wrapper::sync::pipeline::{self, PipelineSource};
use sling_sync_wrapper::sync::{event, spans, JobSpec, Mode, Status, SyncEvent};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// A callsite seen while the engine ran: span or event, its name and target, and the module it was written in.
#[derive(Debug, Clone)]
struct Seen {
    span: bool,
    name: String,
    target: String,
    module: String,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

impl Capture {
    fn push(&self, span: bool, meta: &Metadata<'_>) {
        self.0.lock().expect("capture lock").push(Seen {
            span,
            name: meta.name().to_owned(),
            target: meta.target().to_owned(),
            module: meta.module_path().unwrap_or_default().to_owned(),
        });
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        self.push(true, attrs.metadata());
    }
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        self.push(false, event.metadata());
    }
}

fn run(engine: &sling_sync_wrapper::sync::Engine, w: &World, mode: Mode) -> event::JobReport {
    let pipelines =
        pipeline::discover(&PipelineSource::Dir(w.pipelines.clone())).expect("discover");
    let job = JobSpec {
        sync_job_id: format!("job-{mode}"),
        mode,
        pipelines,
    };
    let (sink, _events) = event::channel(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(engine.run_job(job, &sink, Default::default()))
}

/// Telemetry exports what carries an exported target (`spans::is_exported`). A span or event written without an
/// explicit target gets its module path, which is exported by no rule; this test names it.
#[test]
fn every_span_and_event_of_the_engine_carries_an_exported_target() {
    let w = World::new();
    let engine = common::engine(&w, common::sling_bin(), &[]);
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let reports = tracing::subscriber::with_default(subscriber, || {
        [
            run(&engine, &w, Mode::Incremental),
            run(&engine, &w, Mode::Noop),
        ]
    });
    for r in &reports {
        assert_eq!(r.status, Status::Success, "{r:#?}");
    }
    let seen = capture.0.lock().expect("capture lock").clone();
    let span_names: std::collections::BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.span)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        span_names,
        [spans::ATTEMPT_SPAN, spans::JOB_SPAN, spans::PIPELINE_SPAN].into(),
        "the three span levels were created"
    );
    assert!(
        seen.iter().any(|s| !s.span && s.target == spans::SLING),
        "Sling lines were seen"
    );
    let wrong: Vec<String> = seen
        .iter()
        .filter(|s| s.module.starts_with("sling_sync_wrapper::sync"))
        .filter(|s| !spans::is_exported(&s.target) && s.target != spans::METRICS)
        .map(|s| {
            format!(
                "{} `{}` in {} has target `{}`",
                if s.span { "span" } else { "event" },
                s.name,
                s.module,
                s.target
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "not exported (give it a target from sync::spans):\n{}",
        wrong.join("\n")
    );
}

/// noop check texts reach the journal, the report and the events only through the Redactor. A stream named by a
/// URL with a password (a file source) shows up in the `replication` check's detail.
#[test]
fn noop_check_details_are_redacted_in_the_journal_the_report_and_the_events() {
    let w = World::new();
    std::fs::remove_file(w.pipelines.join("products.yaml")).expect("remove");
    w.write_pipeline(
        "orders",
        "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: full-refresh\n  object: main.files\nstreams:\n  \"sftp://reader:hunter2secret@files.example/orders.csv\":\n",
    );
    let engine = common::engine(&w, common::sling_bin(), &[]);
    let pipelines =
        pipeline::discover(&PipelineSource::Dir(w.pipelines.clone())).expect("discover");
    let (sink, mut events) = event::channel(1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = rt.block_on(engine.run_job(
        JobSpec {
            sync_job_id: "job-redact".into(),
            mode: Mode::Noop,
            pipelines,
        },
        &sink,
        Default::default(),
    ));
    drop(sink);
    let mut check_texts = Vec::new();
    while let Some(ev) = events.try_recv() {
        if let SyncEvent::CheckDone { check, .. } = ev {
            check_texts.push(check.detail.to_string());
        }
    }
    let journal = std::fs::read_to_string(w.state.join("history.jsonl")).expect("journal");
    let report_checks: Vec<String> = report.pipelines[0]
        .checks
        .iter()
        .map(|c| c.detail.to_string())
        .collect();
    for (place, text) in [
        ("journal", journal.clone()),
        ("report", report_checks.join("\n")),
        ("events", check_texts.join("\n")),
    ] {
        assert!(
            text.contains("sftp://reader:***@files.example/orders.csv"),
            "{place} lacks the redacted stream name:\n{text}"
        );
        assert!(
            !text.contains("hunter2secret"),
            "{place} holds the password:\n{text}"
        );
    }
}
