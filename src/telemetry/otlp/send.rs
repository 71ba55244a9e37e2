//! Sending encoded export requests: OTLP/HTTP (a protobuf body) or OTLP/gRPC (the request bytes as the message of the
//! signal's `Export` method, over a tonic channel), with the retries the SDK's exporters made: up to 3 more attempts,
//! 100 ms doubling, on errors the OTLP spec calls retryable, never past the export timeout.
//!
//! Both run on a small runtime of the export thread's own, driven only while a request is under way, never on the
//! wrapper's runtime. While the collector answers, a full log queue holds the engine — a task on that runtime —
//! until an export makes room; an export that needed the runtime could then wait on the task that waits on it. It
//! happened: with the gRPC channel on the main runtime, the first export (the connection) sometimes stalled until
//! the engine gave up after `STALL_BOUND`, and a 20k-line flood lost a thousand records. (HTTP went through reqwest's
//! blocking client, which keeps a runtime thread of its own; the async client on this thread's runtime saves the
//! hand-over to that thread on every request.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _, Bytes};
use tokio::runtime::Runtime;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use super::log_queue::Export;

const RETRIES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
/// The gRPC method of each signal we send.
pub const LOGS_METHOD: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
pub const TRACES_METHOD: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const USER_AGENT: &str = concat!("sling-sync-wrapper/", env!("CARGO_PKG_VERSION"));

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    message: String,
    retryable: bool,
}

impl Failure {
    fn fatal(message: String) -> Self {
        Self {
            message,
            retryable: false,
        }
    }
}

/// Where and how requests go. The runtime and the client are made on first use, on the export thread.
pub struct Sender {
    transport: Transport,
    timeout: Duration,
    runtime: Option<Runtime>,
}

enum Transport {
    Http {
        endpoint: String,
        headers: HashMap<String, String>,
        client: Option<reqwest::Client>,
    },
    Grpc {
        /// Boxed: tonic's endpoint settings are large.
        endpoint: Box<Endpoint>,
        metadata: tonic::metadata::MetadataMap,
        method: &'static str,
        /// Connects on first use.
        channel: Option<Channel>,
    },
}

impl Sender {
    /// `method`: `LOGS_METHOD` or `TRACES_METHOD`.
    pub fn grpc(
        endpoint: &str,
        method: &'static str,
        metadata: tonic::metadata::MetadataMap,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| anyhow::anyhow!("invalid OTLP logs endpoint `{endpoint}`: {e}"))?
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .map_err(|e| anyhow::anyhow!("gRPC user agent: {e}"))?;
        Ok(Self {
            transport: Transport::Grpc {
                endpoint: Box::new(endpoint),
                metadata,
                method,
                channel: None,
            },
            timeout,
            runtime: None,
        })
    }

    pub fn http(endpoint: &str, headers: HashMap<String, String>, timeout: Duration) -> Self {
        Self {
            transport: Transport::Http {
                endpoint: endpoint.to_owned(),
                headers,
                client: None,
            },
            timeout,
            runtime: None,
        }
    }

    fn once(&mut self, request: &Bytes) -> Result<(), Failure> {
        let runtime = match &mut self.runtime {
            Some(r) => r,
            None => self.runtime.insert(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Failure::fatal(format!("starting the export runtime: {e}")))?,
            ),
        };
        match &mut self.transport {
            Transport::Http {
                endpoint,
                headers,
                client,
            } => {
                let client = match client {
                    Some(c) => c,
                    None => client.insert(
                        reqwest::Client::builder()
                            .timeout(self.timeout)
                            .user_agent(USER_AGENT)
                            .build()
                            .map_err(|e| {
                                Failure::fatal(format!("building the HTTP client: {e}"))
                            })?,
                    ),
                };
                runtime.block_on(http_once(client, endpoint, headers, request))
            }
            Transport::Grpc {
                endpoint,
                metadata,
                method,
                channel,
            } => {
                let channel = match channel {
                    Some(c) => c,
                    None => {
                        let _inside = runtime.enter();
                        channel.insert(endpoint.connect_lazy())
                    }
                };
                runtime.block_on(grpc_once(channel, metadata, method, request))
            }
        }
    }
}

async fn http_once(
    client: &reqwest::Client,
    endpoint: &str,
    headers: &HashMap<String, String>,
    request: &Bytes,
) -> Result<(), Failure> {
    let mut req = client
        .post(endpoint)
        .header("content-type", "application/x-protobuf")
        .body(request.clone());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    // The error's text names no header: header values are often credentials.
    let response = req.send().await.map_err(|e| Failure {
        message: format!(
            "HTTP export failed: {}",
            if e.is_timeout() {
                "timed out"
            } else {
                "network error"
            }
        ),
        retryable: true,
    })?;
    let status = response.status().as_u16();
    // Read the (small) answer to the end, so the connection is reused.
    let _ = response.bytes().await;
    match status {
        200..=299 => Ok(()),
        _ => Err(Failure {
            message: format!("HTTP export failed with status code: {status}"),
            retryable: matches!(status, 429 | 502 | 503 | 504),
        }),
    }
}

async fn grpc_once(
    channel: &Channel,
    metadata: &tonic::metadata::MetadataMap,
    method: &'static str,
    request: &Bytes,
) -> Result<(), Failure> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    let mut req = tonic::Request::new(request.clone());
    *req.metadata_mut() = metadata.clone();
    let result = async {
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("gRPC channel not ready: {e}")))?;
        grpc.unary(req, PathAndQuery::from_static(method), RawCodec)
            .await
    }
    .await;
    result.map(|_| ()).map_err(|status| Failure {
        message: format!(
            "gRPC export failed: {:?}: {}",
            status.code(),
            status.message()
        ),
        retryable: matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::Cancelled
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Aborted
                | tonic::Code::OutOfRange
                | tonic::Code::DataLoss
        ),
    })
}

impl Export for Sender {
    fn export(&mut self, request: Bytes) -> Result<(), String> {
        let start = Instant::now();
        let mut delay = FIRST_DELAY;
        let mut retries = 0;
        loop {
            match self.once(&request) {
                Ok(()) => return Ok(()),
                Err(f)
                    if f.retryable
                        && retries < RETRIES
                        && start.elapsed() + delay < self.timeout =>
                {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_DELAY);
                    retries += 1;
                }
                Err(f) => return Err(f.message),
            }
        }
    }
}

/// The request is already protobuf: sent as it is. The answer (an `ExportLogsServiceResponse`, whose partial
/// success the SDK's exporter only logged) is read and dropped.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
