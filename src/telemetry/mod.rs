//! Telemetry: OTel providers built from the standard `OTEL_*` environment, the tracing layers that feed them and
//! the front-end's own output, and a bounded shutdown.
//!
//! The engine only uses `tracing`. Here its spans become OTel spans (tracing-opentelemetry), its events become span
//! events and OTel log records (our own encoder, `otlp`), and events on target `spans::METRICS` become metrics.
//! What is exported is decided by the explicit targets of `sync::spans`, never by module paths. The one exception
//! is Sling's lines, a flood of data rather than diagnostics: the engine hands each to the line outputs (batch
//! output, log records, span events) it finds in the subscriber (`spans::LineOutputs`). Only without those outputs
//! (a test's own subscriber) are they tracing events, and their span events tracing events too.

pub(crate) mod batch_format;
pub mod config;
mod console_log;
pub mod health;
pub(crate) mod metrics;
pub mod otlp;
mod skipped_events;
pub mod stdout;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Metadata;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

pub use config::{OtelConfig, Protocol};

use crate::sync::spans;
/// For the binary: its usage errors carry outside text too.
pub use batch_format::escape_control;
pub use health::{ExportHealth, HealthSnapshot};

pub use spans::MAX_EVENTS_PER_SPAN;

/// Where the front-end's own output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Batch: engine and Sling events on stdout, as text or JSON lines.
    Stdout { json: bool },
    /// Console: engine diagnostics into tui-logger (Sling lines are shown from the model instead).
    Console,
    /// Nothing local (tests).
    None,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The running providers; `shutdown` flushes them within a bound.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    logs: Option<Arc<otlp::LogQueue>>,
    meter: Option<SdkMeterProvider>,
    pub health: Arc<ExportHealth>,
    /// Writes out the batch output when dropped; kept past `shutdown` so the last lines still print.
    _stdout: Option<stdout::StdoutGuard>,
}

fn is_ours(meta: &Metadata<'_>) -> bool {
    spans::is_exported(meta.target())
}

/// A Sling line's span-event twin (see `spans::LINE_SPAN_EVENT`): for the span-event layer only.
fn is_span_event_line(meta: &Metadata<'_>) -> bool {
    meta.name() == spans::LINE_SPAN_EVENT
}

/// What becomes a span event: our spans and events, but of the Sling lines only their span-event twins.
fn is_span_or_event(meta: &Metadata<'_>) -> bool {
    is_ours(meta) && (meta.target() != spans::SLING || is_span_event_line(meta))
}

/// What becomes a log record or a line of batch output: our events, but not the span-event twins.
fn is_output(meta: &Metadata<'_>) -> bool {
    is_ours(meta) && !is_span_event_line(meta)
}

fn is_metric(meta: &Metadata<'_>) -> bool {
    meta.target() == spans::METRICS
}

/// The line outputs ride in the subscriber as a layer, for `spans::LineOutputs::current` to find (tracing's
/// downcast); see `line_outputs_layer`.
impl<S: tracing::Subscriber> Layer<S> for spans::LineOutputs {}

/// `outputs` as a layer behind a filter that takes nothing: wherever it sits among a subscriber's layers, it then
/// enables nothing, disables nothing and receives nothing. (Unfiltered, the interest it reports in call sites would
/// either enable every call site of every crate, or, as the outer layer, disable them all.)
pub(crate) fn line_outputs_layer<S>(outputs: spans::LineOutputs) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    outputs.with_filter(filter_fn(|_| false))
}

fn resource(cfg: &OtelConfig, mission_cluster_id: &str) -> Resource {
    // The builder also reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
    Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("mission_cluster_id", mission_cluster_id.to_owned()),
        ])
        .build()
}

fn tonic_metadata(headers: &HashMap<String, String>) -> tonic::metadata::MetadataMap {
    let mut map = tonic::metadata::MetadataMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            k.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(),
            v.parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>(),
        ) {
            map.insert(k, v);
        }
    }
    map
}

macro_rules! exporter {
    ($kind:ident, $cfg:expr, $endpoint:expr, $headers:expr $(, $option:ident($value:expr))?) => {{
        let cfg: &OtelConfig = $cfg;
        match cfg.protocol {
            Protocol::Grpc => opentelemetry_otlp::$kind::builder()
                $(.$option($value))?
                .with_tonic()
                .with_endpoint($endpoint.clone())
                .with_timeout(cfg.timeout)
                .with_metadata(tonic_metadata(&$headers))
                .build(),
            Protocol::HttpProtobuf => opentelemetry_otlp::$kind::builder()
                $(.$option($value))?
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint($endpoint.clone())
                .with_timeout(cfg.timeout)
                .with_headers($headers.clone())
                .build(),
        }
    }};
}

impl Telemetry {
    /// Builds providers (unless `OTEL_SDK_DISABLED=true`) and installs the global subscriber. Must run inside the
    /// tokio runtime: the gRPC exporter's channel lives on it.
    pub fn init(cfg: OtelConfig, mission_cluster_id: &str, output: Output) -> anyhow::Result<Self> {
        let health = Arc::new(ExportHealth::default());
        let mut layers: Vec<BoxedLayer> = Vec::new();
        // Where Sling lines go, as calls from the engine (see `spans::LineOutputs`).
        let mut line_outputs: Vec<Box<dyn spans::LineOutput>> = Vec::new();
        let (mut tracer, mut logs, mut meter) = (None, None, None);
        let mut stdout_guard = None;
        if !cfg.disabled {
            let res = resource(&cfg, mission_cluster_id);
            // Our own encoder: opentelemetry-otlp's conversion of the attempt span's 10,000 events was most of the
            // wait at exit (see `otlp`).
            // The Sling lines' span events go to the exporter as calls, like their log records (`span_events`).
            let pending_events = Arc::new(otlp::PendingEvents::default());
            let span_exporter = otlp::span_exporter(&cfg, pending_events.clone())
                .context("building the OTLP trace exporter")?;
            let tp = SdkTracerProvider::builder()
                .with_resource(res.clone())
                .with_max_events_per_span(MAX_EVENTS_PER_SPAN)
                .with_span_processor(skipped_events::CountSkippedEvents(
                    BatchSpanProcessor::builder(health::Tracked {
                        inner: span_exporter,
                        health: health.clone(),
                    })
                    .build(),
                ))
                .build();
            // Not the SDK's log pipeline: it dropped records whenever its queue was full, and cost more CPU per
            // Sling line than all the rest of the wrapper (see `otlp`).
            let log_queue = otlp::start(&cfg, &res, &spans::EXPORTED, health.clone())
                .context("starting the OTLP log export")?;
            let metric_exporter = exporter!(
                MetricExporter,
                &cfg,
                cfg.metrics_endpoint,
                cfg.metrics_headers,
                with_temporality(cfg.metric_temporality)
            )
            .context("building the OTLP metric exporter")?;
            let reader = PeriodicReader::builder(health::Tracked {
                inner: metric_exporter,
                health: health.clone(),
            })
            .with_interval(cfg.metric_interval)
            .build();
            let mp = SdkMeterProvider::builder()
                .with_resource(res)
                .with_reader(reader)
                .with_view(metrics::view)
                .build();

            layers.push(
                tracing_opentelemetry::layer()
                    .with_tracer(tp.tracer("sling-sync-wrapper"))
                    // The source location would be the same line of spans.rs on every Sling line: three attributes
                    // per span event that say nothing, in time and memory.
                    .with_location(false)
                    .with_filter(filter_fn(is_span_or_event))
                    .boxed(),
            );
            layers.push(
                otlp::OtlpLogLayer::new(log_queue.clone(), &spans::EXPORTED)
                    .with_filter(filter_fn(is_output))
                    .boxed(),
            );
            line_outputs.extend(
                otlp::LogLines::new(log_queue.clone(), &spans::EXPORTED)
                    .map(|l| Box::new(l) as Box<dyn spans::LineOutput>),
            );
            line_outputs.push(Box::new(otlp::SpanEventLines::new(pending_events)));
            layers.push(
                tracing_opentelemetry::MetricsLayer::new(mp.clone())
                    .with_filter(filter_fn(is_metric))
                    .boxed(),
            );
            (tracer, logs, meter) = (Some(tp), Some(log_queue), Some(mp));
        }
        match output {
            Output::Stdout { json } => {
                // Lossless and bounded: when stdout is slow the engine waits, as Sling would (see `stdout`).
                let (writer, guard) =
                    stdout::spawn(std::io::stdout()).context("starting the stdout writer")?;
                stdout_guard = Some(guard);
                let format = if json {
                    batch_format::Format::Json
                } else {
                    batch_format::Format::Text {
                        ansi: std::io::IsTerminal::is_terminal(&std::io::stdout()),
                    }
                };
                line_outputs.push(Box::new(batch_format::BatchLines::new(
                    writer.clone(),
                    format,
                )));
                let layer = batch_format::BatchLayer::new(writer, format)
                    .with_filter(filter_fn(|m| {
                        is_output(m) && *m.level() <= tracing::Level::INFO
                    }))
                    .boxed();
                layers.push(layer);
            }
            Output::Console => {
                layers.push(
                    console_log::ConsoleLogLayer
                        .with_filter(filter_fn(|m| is_ours(m) && m.target() != spans::SLING))
                        .boxed(),
                );
            }
            Output::None => {}
        }
        // Found by the engine through the dispatcher; as a layer it takes no part in dispatching.
        layers.push(line_outputs_layer(spans::LineOutputs::new(line_outputs)).boxed());
        let subscriber = tracing_subscriber::registry().with(layers);
        tracing::subscriber::set_global_default(subscriber)
            .context("installing the tracing subscriber")?;
        Ok(Self {
            tracer,
            logs,
            meter,
            health,
            _stdout: stdout_guard,
        })
    }

    pub fn enabled(&self) -> bool {
        self.tracer.is_some()
    }

    /// Flushes and stops every provider, in parallel, waiting at most `bound` in all. Returns `false` when the bound
    /// was reached (what was still queued is lost; the sync result is not affected).
    pub async fn shutdown(&mut self, bound: Duration) -> bool {
        // Plain threads, not spawn_blocking: the runtime would wait for a stuck flush when it is dropped.
        let mut waits = Vec::new();
        let mut spawn = |f: Box<dyn FnOnce() -> bool + Send>| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(f());
            });
            waits.push(rx);
        };
        if let Some(t) = self.tracer.take() {
            spawn(Box::new(move || t.shutdown_with_timeout(bound).is_ok()));
        }
        if let Some(l) = self.logs.take() {
            spawn(Box::new(move || l.shutdown_with_timeout(bound).is_ok()));
        }
        if let Some(m) = self.meter.take() {
            spawn(Box::new(move || m.shutdown_with_timeout(bound).is_ok()));
        }
        let all = async {
            let mut ok = true;
            for w in waits {
                ok &= w.await.unwrap_or(false);
            }
            ok
        };
        // Keep a little of the bound for printing the verdict and leaving the process.
        tokio::time::timeout(bound.saturating_sub(Duration::from_millis(100)), all)
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Counts the events it receives.
    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The line outputs' layer is found wherever it sits, and changes nothing for the other layers: placed outermost
    /// (where an unfiltered layer that wants no call site would disable them all) or among boxed layers (where one
    /// that wants every call site would enable them all).
    #[test]
    fn the_line_outputs_layer_is_found_anywhere_and_changes_no_other_layers_events() {
        let emit = || {
            tracing::info!(target: "sync", "seen");
            tracing::debug!(target: "sync", "filtered out by the other layer");
            let debug_enabled = tracing::enabled!(target: "sync", tracing::Level::DEBUG);
            (spans::LineOutputs::current().is_some(), debug_enabled)
        };
        let info = || tracing_subscriber::filter::LevelFilter::INFO;

        let count = Count::default();
        let outermost = tracing_subscriber::registry()
            .with(count.clone().with_filter(info()))
            .with(line_outputs_layer(spans::LineOutputs::default()));
        assert_eq!(
            tracing::subscriber::with_default(outermost, emit),
            (true, false)
        );
        assert_eq!(count.0.load(Ordering::Relaxed), 1);

        let count = Count::default();
        let layers: Vec<BoxedLayer> = vec![
            line_outputs_layer(spans::LineOutputs::default()).boxed(),
            count.clone().with_filter(info()).boxed(),
        ];
        let boxed = tracing_subscriber::registry().with(layers);
        assert_eq!(
            tracing::subscriber::with_default(boxed, emit),
            (true, false)
        );
        assert_eq!(count.0.load(Ordering::Relaxed), 1);

        let without = tracing_subscriber::registry().with(Count::default());
        assert!(!tracing::subscriber::with_default(without, emit).0);
    }
}
