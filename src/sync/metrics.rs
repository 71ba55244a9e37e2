//! Metric events. They are plain `tracing` events whose field prefixes (`monotonic_counter.`, `histogram.`) the
//! telemetry layer turns into OTel instruments; the target (this module's path) keeps them out of logs and stdout.

/// The tracing target of every metric event.
pub const TARGET: &str = module_path!();

pub fn job_finished(status: &str, sync_mode: &str, duration_seconds: f64) {
    tracing::info!(
        monotonic_counter.sync_jobs = 1u64,
        histogram.sync_job_duration_seconds = duration_seconds,
        status,
        sync_mode,
    );
}

pub fn pipeline_finished(
    pipeline: &str,
    status: &str,
    sync_mode: &str,
    rows: u64,
    duration_seconds: f64,
) {
    tracing::info!(
        monotonic_counter.sync_pipeline_runs = 1u64,
        monotonic_counter.sync_rows = rows,
        histogram.sync_pipeline_duration_seconds = duration_seconds,
        pipeline,
        status,
        sync_mode,
    );
}

pub fn retry_scheduled(pipeline: &str) {
    tracing::info!(monotonic_counter.sync_retries = 1u64, pipeline);
}
