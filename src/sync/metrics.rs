//! Metric events. They are plain `tracing` events whose field prefixes (`monotonic_counter.`, `histogram.`, `gauge.`)
//! the telemetry layer turns into OTel instruments; their target (`spans::METRICS`) keeps them out of logs and
//! stdout. `SPECS` gives every instrument its unit and description (tracing fields cannot carry them); telemetry
//! applies them, with `DURATION_BOUNDARIES` for the histograms.
//!
//! Names follow OTel style (`sync.pipeline.duration` with unit `s`); GreptimeDB's Prometheus translation turns them
//! into `sync_pipeline_duration_seconds_bucket`, `sync_rows_total`, `sync_pipeline_last_run_rows`, …
//!
//! Every data point carries `mission_cluster_id`: GreptimeDB keeps only a few resource attributes as labels, and the
//! series of different mission clusters must not merge.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::event::{Mode, PipelineReport, Status};
use super::spans::METRICS;

/// Which OTel instrument a metric field becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `monotonic_counter.`: a count that only grows (exported with the configured temporality).
    Counter,
    /// `histogram.`: durations, with `DURATION_BOUNDARIES`.
    Histogram,
    /// `gauge.`: the last value; the batch-job numbers a short-lived pod leaves behind.
    Gauge,
}

/// One instrument as exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    /// UCUM unit; `{…}` annotations add no suffix to the Prometheus name.
    pub unit: &'static str,
    pub description: &'static str,
}

pub const JOBS: &str = "sync.jobs";
pub const JOB_DURATION: &str = "sync.job.duration";
pub const PIPELINE_RUNS: &str = "sync.pipeline.runs";
pub const ROWS: &str = "sync.rows";
pub const PIPELINE_DURATION: &str = "sync.pipeline.duration";
pub const RETRIES: &str = "sync.retries";
pub const LAST_SUCCESS: &str = "sync.pipeline.last_success_timestamp";
pub const LAST_RUN_DURATION: &str = "sync.pipeline.last_run_duration";
pub const LAST_RUN_ROWS: &str = "sync.pipeline.last_run_rows";
pub const LAST_RUN_STATUS: &str = "sync.pipeline.last_run_status";
/// The name issue 11 gave it (a `{row}` unit adds no suffix, so GreptimeDB's table has the same name).
pub const DRIFT_ROWS: &str = "sync_drift_rows";

pub const SPECS: &[Spec] = &[
    Spec {
        name: JOBS,
        kind: Kind::Counter,
        unit: "{run}",
        description: "Finished jobs, by status and sync_mode",
    },
    Spec {
        name: JOB_DURATION,
        kind: Kind::Histogram,
        unit: "s",
        description: "Wall time of a job",
    },
    Spec {
        name: PIPELINE_RUNS,
        kind: Kind::Counter,
        unit: "{run}",
        description: "Finished pipeline runs, by pipeline, status and sync_mode",
    },
    Spec {
        name: ROWS,
        kind: Kind::Counter,
        unit: "{row}",
        description: "Rows written to the target, by pipeline",
    },
    Spec {
        name: PIPELINE_DURATION,
        kind: Kind::Histogram,
        unit: "s",
        description: "Wall time of a pipeline run, retries included",
    },
    Spec {
        name: RETRIES,
        kind: Kind::Counter,
        unit: "{attempt}",
        description: "Retries scheduled after a failed attempt",
    },
    Spec {
        name: LAST_SUCCESS,
        kind: Kind::Gauge,
        unit: "s",
        description:
            "Unix time of the pipeline's last successful sync (from the history journal; 0 = never)",
    },
    Spec {
        name: LAST_RUN_DURATION,
        kind: Kind::Gauge,
        unit: "s",
        description: "Wall time of the pipeline's last run",
    },
    Spec {
        name: LAST_RUN_ROWS,
        kind: Kind::Gauge,
        unit: "{row}",
        description: "Rows written by the pipeline's last run",
    },
    Spec {
        name: LAST_RUN_STATUS,
        kind: Kind::Gauge,
        unit: "{status}",
        description: "1 when the pipeline's last run succeeded, 0 when it did not",
    },
    Spec {
        name: DRIFT_ROWS,
        kind: Kind::Gauge,
        unit: "{row}",
        description: "Target rows minus source rows of a stream after its last verified run, by pipeline and stream",
    },
];

/// Histogram boundaries in seconds: sub-second noop checks up to hour-long backfills (the SDK's default buckets,
/// 0 … 10000, put every ordinary run into the first two).
pub const DURATION_BOUNDARIES: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0,
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

pub fn job_finished(
    mission_cluster_id: &str,
    status: &str,
    sync_mode: &str,
    duration_seconds: f64,
) {
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        monotonic_counter.sync.jobs = 1u64,
        histogram.sync.job.duration = duration_seconds,
        mission_cluster_id,
        status,
        sync_mode,
    );
}

pub fn pipeline_finished(
    mission_cluster_id: &str,
    pipeline: &str,
    status: &str,
    sync_mode: &str,
    rows: u64,
    duration_seconds: f64,
) {
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        monotonic_counter.sync.pipeline.runs = 1u64,
        monotonic_counter.sync.rows = rows,
        histogram.sync.pipeline.duration = duration_seconds,
        mission_cluster_id,
        pipeline,
        status,
        sync_mode,
    );
}

pub fn retry_scheduled(mission_cluster_id: &str, pipeline: &str) {
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        monotonic_counter.sync.retries = 1u64,
        mission_cluster_id,
        pipeline
    );
}

/// Drift of one stream after a verified run (target rows minus source rows; 0 on a match).
pub fn stream_drift(mission_cluster_id: &str, pipeline: &str, stream: &str, drift_rows: i64) {
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        gauge.sync_drift_rows = drift_rows,
        mission_cluster_id,
        pipeline,
        stream
    );
}

/// The batch-job gauges of one pipeline once its job is done with it. `last_success` holds, per pipeline, the last
/// successful sync known from the journal; a success here updates it, so a failed run still reports the last success.
/// noop jobs check, they do not sync: they report nothing here. A pipeline that never started (cancelled while
/// queued, skipped at the job deadline) reports only its last success, which keeps its staleness visible.
pub fn pipeline_gauges(
    mission_cluster_id: &str,
    report: &PipelineReport,
    last_success: &mut BTreeMap<String, DateTime<Utc>>,
) {
    if report.mode == Mode::Noop {
        return;
    }
    if report.status == Status::Success {
        last_success.insert(report.pipeline.clone(), report.finished_at);
    }
    let pipeline = report.pipeline.as_str();
    let at = last_success
        .get(pipeline)
        .map_or(0.0, |t| t.timestamp_millis() as f64 / 1000.0);
    tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
        gauge.sync.pipeline.last_success_timestamp = at,
        mission_cluster_id,
        pipeline
    );
    let never_started =
        matches!(report.status, Status::Cancelled | Status::Skipped) && report.attempts == 0;
    if !never_started {
        tracing::event!(
        target: METRICS,
        tracing::Level::INFO,
            gauge.sync.pipeline.last_run_duration = report.duration_seconds,
            gauge.sync.pipeline.last_run_rows = report.rows,
            gauge.sync.pipeline.last_run_status = u64::from(report.status == Status::Success),
            mission_cluster_id,
            pipeline
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instrument_has_a_unit_and_a_unique_name() {
        let mut names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SPECS.len());
        assert!(SPECS
            .iter()
            .all(|s| !s.unit.is_empty() && !s.description.is_empty()));
        assert!(DURATION_BOUNDARIES.windows(2).all(|w| w[0] < w[1]));
        assert!(DURATION_BOUNDARIES[0] < 1.0 && DURATION_BOUNDARIES.last() == Some(&3600.0));
    }
}
