//! Every span and event the engine writes carries an exported target, checked on the engine as a library with the
//! real Sling on SQLite. Alone in its test binary: tracing caches per-callsite interest process-wide, and another
//! test hitting the same callsites at the same moment without this subscriber can make them skip it.

mod common;

use std::sync::{Arc, Mutex};

use common::World;
use sling_sync_wrapper::sync::pipeline::{self, PipelineSource};
use sling_sync_wrapper::sync::{event, spans, JobSpec, Mode, Status};
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
        [
            spans::ATTEMPT_SPAN,
            spans::JOB_SPAN,
            spans::PIPELINE_SPAN,
            spans::VERIFY_SPAN
        ]
        .into(),
        "the three span levels and the verification were created"
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
