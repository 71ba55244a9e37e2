//! The engine as a library: cancelling a running pipeline and one still queued behind it in the same job.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use sling_sync_wrapper::sync::pipeline::{self, PipelineSource};
use sling_sync_wrapper::sync::redact::Redactor;
use sling_sync_wrapper::sync::retry::RetryPolicy;
use sling_sync_wrapper::sync::state::StateStore;
use sling_sync_wrapper::sync::verify::VerifyMode;
use sling_sync_wrapper::sync::{
    event, ChildEnv, Engine, EngineConfig, JobSpec, Mode, Status, SyncEvent,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_pipeline_can_be_cancelled_before_it_starts() {
    let w = common::World::new();
    let shim_dir = tempfile::tempdir().expect("tempdir");
    // The child inherits the test's environment; the shim reads these.
    std::env::set_var("SHIM_DIR", shim_dir.path());
    std::env::set_var("SHIM_MODE", "hang");
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let engine = Engine::new(
        EngineConfig {
            mission_cluster_id: "test".into(),
            sling_bin: format!(
                "{}/tests/fixtures/sling-shim.sh",
                env!("CARGO_MANIFEST_DIR")
            )
            .into(),
            state: StateStore::new(&w.state),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(50),
                max: Duration::from_secs(1),
                jitter: 0.2,
            },
            attempt_timeout: Duration::from_secs(60),
            cancel_grace: Duration::from_secs(2),
            concurrency: 1,
            job_deadline: None,
            verify: VerifyMode::Off,
            verify_timeout: Duration::from_secs(60),
            child_env: ChildEnv::for_sling(&env),
            env,
        },
        Redactor::default(),
    );
    let pipelines =
        pipeline::discover(&PipelineSource::Dir(w.pipelines.clone())).expect("discover");
    assert_eq!(
        pipelines
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["orders", "products"]
    );
    let (sink, mut events) = event::channel(1000);
    let job = JobSpec {
        sync_job_id: "job-cancel".into(),
        mode: Mode::Incremental,
        pipelines,
    };
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run_job(job, &sink, Default::default()).await })
    };
    // Wait until orders' first attempt is running; products is queued behind it.
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("event in time")
        {
            Some(SyncEvent::AttemptStarted { pipeline, .. }) if pipeline == "orders" => break,
            Some(_) => continue,
            None => panic!("engine ended early"),
        }
    }
    assert!(
        engine.is_running("products"),
        "a queued pipeline is known to the engine"
    );
    assert!(engine.cancel("products"));
    assert!(engine.cancel("orders"));
    let report = tokio::time::timeout(Duration::from_secs(20), runner)
        .await
        .expect("job ends")
        .expect("join");
    assert_eq!(report.status, Status::Cancelled);
    let orders = &report.pipelines[0];
    assert_eq!((orders.status, orders.attempts), (Status::Cancelled, 1));
    let products = &report.pipelines[1];
    assert_eq!((products.status, products.attempts), (Status::Cancelled, 0));
    let mut finished = Vec::new();
    while let Some(ev) = events.try_recv() {
        if let SyncEvent::PipelineFinished { report } = ev {
            finished.push(report.pipeline);
        }
    }
    // Each reports its end once; the queued one leaves the queue as soon as it is cancelled, so which of the two
    // is heard first is a race with the running one's Sling stopping.
    finished.sort();
    assert_eq!(
        finished,
        ["orders", "products"],
        "every pipeline reports its end"
    );
    assert_eq!(w.journal().len(), 2, "both are in the history");
    assert!(!engine.is_running("orders") && !engine.is_running("products"));
}
