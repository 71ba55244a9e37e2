//! Export health: every exporter is wrapped so that failures are counted and the last one remembered. Batch mode
//! prints a line when telemetry could not be delivered; the console shows "failing since …" in its header.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

#[derive(Debug, Default)]
pub struct ExportHealth {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Log records that found the queue full while the collector was failing or stalled (see `otlp::log_queue`).
    logs_dropped: AtomicU64,
    /// When the current run of failures began, and the last error text.
    failing: Mutex<Option<(chrono::DateTime<chrono::Utc>, String)>>,
}

/// A snapshot for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSnapshot {
    pub exports_ok: u64,
    pub exports_failed: u64,
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
}

impl ExportHealth {
    pub(crate) fn observe(&self, signal: &str, result: &OTelSdkResult) {
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                *failing = None;
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let text = format!("{signal}: {e}");
                let since = failing
                    .as_ref()
                    .map(|(s, _)| *s)
                    .unwrap_or_else(chrono::Utc::now);
                *failing = Some((since, text));
            }
        }
    }

    pub(crate) fn log_records_dropped(&self, n: u64) {
        self.logs_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Log records lost because the collector failed or stalled while the queue was full.
    pub fn logs_dropped(&self) -> u64 {
        self.logs_dropped.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let failing = self
            .failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        HealthSnapshot {
            exports_ok: self.ok.load(Ordering::Relaxed),
            exports_failed: self.failed.load(Ordering::Relaxed),
            failing_since: failing.as_ref().map(|(s, _)| *s),
            last_error: failing.map(|(_, e)| match self.logs_dropped() {
                0 => e,
                n => format!("{e} ({n} log record(s) dropped)"),
            }),
        }
    }
}

/// An exporter that reports its results to `ExportHealth`.
#[derive(Debug)]
pub struct Tracked<E> {
    pub inner: E,
    pub health: Arc<ExportHealth>,
}

impl<E: SpanExporter> SpanExporter for Tracked<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let r = self.inner.export(batch).await;
        self.health.observe("traces", &r);
        r
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Tracked<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let r = self.inner.export(metrics).await;
        self.health.observe("metrics", &r);
        r
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}
