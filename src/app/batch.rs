//! Headless mode for the CronJob: runs one job, lets the engine's `tracing` events be the progress output (text on a
//! terminal, JSON lines otherwise; the same events feed the trace), and maps the result to an exit code.

use tokio_util::sync::CancellationToken;

use crate::sync::{event, Engine, JobReport, JobSpec, Status};

/// Exit codes a CronJob can alert on.
pub mod exit {
    pub const OK: i32 = 0;
    /// A pipeline failed or is invalid (the others still ran).
    pub const FAILED: i32 = 1;
    /// Usage or configuration error before any pipeline ran.
    pub const USAGE: i32 = 2;
}

/// Runs the job and returns the report. Events are drained here; the engine's tracing output is the progress.
pub async fn run(engine: &Engine, job: JobSpec, cancel: CancellationToken) -> JobReport {
    // No log events: in batch mode Sling's lines reach stdout through tracing.
    let (sink, mut stream) = event::channel(0);
    let drain = tokio::spawn(async move { while stream.recv().await.is_some() {} });
    let report = engine.run_job(job, &sink, cancel).await;
    drop(sink);
    let _ = drain.await;
    report
}

/// 0 when every pipeline succeeded, 1 when any failed, 128+signal when interrupted.
pub fn exit_code(report: &JobReport, signal_exit: Option<i32>) -> i32 {
    match (report.status, signal_exit) {
        (Status::Success, _) => exit::OK,
        (Status::Cancelled, Some(code)) => code,
        _ => exit::FAILED,
    }
}
