//! No text leaves the engine unredacted: checked on the engine as a library with the real Sling on SQLite.

mod common;

use common::World;
use sling_sync_wrapper::sync::pipeline::{self, PipelineSource};
use sling_sync_wrapper::sync::{event, JobSpec, Mode, SyncEvent};

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
