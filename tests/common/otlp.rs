//! A real OTLP receiver for tests: gRPC (tonic with the OTLP service definitions) or HTTP/protobuf (axum), on
//! 127.0.0.1, capturing every export request. Also endpoints that are dead or accept and never answer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// Request size accepted, as GreptimeDB's default (64 MB): the libraries' own defaults (axum 2 MB, tonic 4 MB) are
/// smaller than an attempt span carrying its 10,000 events.
const BODY_LIMIT: usize = 64 << 20;

#[derive(Default, Debug)]
pub struct Captured {
    pub traces: Vec<ExportTraceServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
    /// HTTP request paths, to check the per-signal paths.
    pub paths: Vec<String>,
    /// HTTP request path and headers, to check per-signal headers.
    pub http_headers: Vec<(String, Vec<(String, String)>)>,
}

impl Captured {
    pub fn spans(&self) -> Vec<Span> {
        self.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    }
    pub fn log_records(&self) -> Vec<LogRecord> {
        self.logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| sl.log_records.clone())
            .collect()
    }
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| sm.metrics.iter().map(|m| m.name.clone()))
            .collect()
    }
    pub fn metrics(&self) -> Vec<Metric> {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| sm.metrics.clone())
            .collect()
    }
    pub fn resource_attrs(&self) -> Vec<KeyValue> {
        self.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .filter_map(|rs| rs.resource.as_ref())
            .flat_map(|r| r.attributes.clone())
            .collect()
    }
    /// Everything captured, as text, for leak checks.
    pub fn dump(&self) -> String {
        format!("{:?}{:?}{:?}", self.traces, self.logs, self.metrics)
    }
}

pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

pub fn str_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

pub fn double_attr(attrs: &[KeyValue], key: &str) -> Option<f64> {
    match attr(attrs, key)? {
        any_value::Value::DoubleValue(d) => Some(*d),
        _ => None,
    }
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Captured>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").traces.push(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").logs.push(req.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").metrics.push(req.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A receiver running on its own runtime thread until dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    captured: Arc<Mutex<Captured>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn captured(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.captured.lock().expect("lock")
    }

    fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, Sink, tokio::sync::oneshot::Receiver<()>) -> Fut
            + Send
            + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let sink = Sink::default();
        let captured = sink.0.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                serve(listener, sink, stop_rx).await;
            });
        });
        let addr = addr_rx.recv().expect("receiver started");
        Self {
            addr,
            captured,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn grpc() -> Self {
        Self::start(|listener, sink, stop| async move {
            let incoming = tokio_stream_from(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(
                    TraceServiceServer::new(sink.clone()).max_decoding_message_size(BODY_LIMIT),
                )
                .add_service(
                    LogsServiceServer::new(sink.clone()).max_decoding_message_size(BODY_LIMIT),
                )
                .add_service(MetricsServiceServer::new(sink).max_decoding_message_size(BODY_LIMIT))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop.await;
                })
                .await;
        })
    }

    /// OTLP/HTTP with binary protobuf under `/v1/otlp` (GreptimeDB's base path), or any base path: the test checks
    /// which paths were hit.
    pub fn http() -> Self {
        Self::start(|listener, sink, stop| async move {
            use axum::body::Bytes;
            use axum::extract::State;
            use axum::routing::post;
            async fn handle(
                State(sink): State<Sink>,
                uri: axum::http::Uri,
                headers: axum::http::HeaderMap,
                body: Bytes,
            ) -> Vec<u8> {
                let path = uri.path().to_string();
                let mut c = sink.0.lock().expect("lock");
                c.paths.push(path.clone());
                let hs = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                c.http_headers.push((path.clone(), hs));
                if path.ends_with("/v1/traces") {
                    if let Ok(r) = ExportTraceServiceRequest::decode(body) {
                        c.traces.push(r);
                    }
                    ExportTraceServiceResponse::default().encode_to_vec()
                } else if path.ends_with("/v1/logs") {
                    if let Ok(r) = ExportLogsServiceRequest::decode(body) {
                        c.logs.push(r);
                    }
                    ExportLogsServiceResponse::default().encode_to_vec()
                } else {
                    if let Ok(r) = ExportMetricsServiceRequest::decode(body) {
                        c.metrics.push(r);
                    }
                    ExportMetricsServiceResponse::default().encode_to_vec()
                }
            }
            // GreptimeDB's default body limit: an attempt span with its 10,000 events is larger than axum's 2 MB.
            let app = axum::Router::new()
                .fallback(post(handle))
                .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
                .with_state(sink);
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await;
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}

/// An address where nothing listens.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

/// A listener that accepts connections and never answers; kept open while the value lives.
pub struct Silent {
    pub addr: SocketAddr,
    _listener: std::net::TcpListener,
    _held: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Silent {
    pub fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let held = Arc::new(Mutex::new(Vec::new()));
        let (l2, h2) = (listener.try_clone().expect("clone"), held.clone());
        std::thread::spawn(move || {
            for s in l2.incoming().flatten() {
                h2.lock().expect("lock").push(s);
            }
        });
        Self {
            addr,
            _listener: listener,
            _held: held,
        }
    }
}
