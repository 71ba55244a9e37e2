//! Metric events. They are plain `tracing` events whose field prefixes (`monotonic_counter.`, `histogram.`) the
//! telemetry layer turns into OTel instruments; their target (`spans::METRICS`) keeps them out of logs and stdout.

use super::spans::METRICS;

pub fn job_finished(status: &str, sync_mode: &str, duration_seconds: f64) {
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
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
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        monotonic_counter.sync_pipeline_runs = 1u64,
        monotonic_counter.sync_rows = rows,
        histogram.sync_pipeline_duration_seconds = duration_seconds,
        pipeline,
        status,
        sync_mode,
    );
}

pub fn retry_scheduled(pipeline: &str) {
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        monotonic_counter.sync_retries = 1u64,
        pipeline
    );
}

/// Drift of one stream after a verified run (target rows minus source rows; 0 on a match).
pub fn stream_drift(pipeline: &str, stream: &str, drift_rows: i64) {
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        gauge.sync_drift_rows = drift_rows,
        pipeline,
        stream
    );
}
