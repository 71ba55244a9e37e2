//! The standard `OTEL_*` environment, read once into typed settings.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use opentelemetry_sdk::metrics::Temporality;

pub const DEFAULT_ENDPOINT: &str = "http://otel-collector:4317";
pub const DEFAULT_SERVICE_NAME: &str = "sling-sync-wrapper";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    pub disabled: bool,
    pub protocol: Protocol,
    pub traces_endpoint: String,
    pub logs_endpoint: String,
    pub metrics_endpoint: String,
    /// `OTEL_EXPORTER_OTLP_HEADERS` with the signal's own `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS` over it, so that e.g.
    /// GreptimeDB's trace pipeline header goes on traces only.
    pub traces_headers: HashMap<String, String>,
    pub logs_headers: HashMap<String, String>,
    pub metrics_headers: HashMap<String, String>,
    pub timeout: Duration,
    pub service_name: String,
    /// How often metrics are pushed while the process runs (they are always pushed at exit).
    pub metric_interval: Duration,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`; delta unless set (see `DEFAULT_TEMPORALITY`).
    pub metric_temporality: Temporality,
    /// The log-record queue (`OTEL_BLRP_*`).
    pub log_queue: LogQueueConfig,
}

/// Counters and histograms go out as deltas: every CronJob pod is a new process, so a cumulative series starts
/// over with each pod and `increase()` across pods is wrong, while GreptimeDB (up to 1.2) stores a delta point as
/// the count of its interval, which `sum_over_time` adds up exactly however many pods and exports there were.
pub const DEFAULT_TEMPORALITY: Temporality = Temporality::Delta;

fn parse_temporality(v: &str) -> Result<Temporality, String> {
    match v.to_ascii_lowercase().as_str() {
        "cumulative" => Ok(Temporality::Cumulative),
        "delta" => Ok(Temporality::Delta),
        "lowmemory" => Ok(Temporality::LowMemory),
        _ => Err(format!(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE = `{v}` is not valid: expected cumulative, delta or \
             lowmemory"
        )),
    }
}

/// Sizes of the log-record queue, from the standard batch-log-processor variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogQueueConfig {
    /// `OTEL_BLRP_MAX_QUEUE_SIZE`: records held before the engine waits (or, while the collector fails, drops).
    pub max_queue: usize,
    /// `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`: records per export request (at most `max_queue`).
    pub max_batch: usize,
    /// `OTEL_BLRP_SCHEDULE_DELAY`: the longest a record waits for a batch to fill.
    pub delay: Duration,
}

impl Default for LogQueueConfig {
    fn default() -> Self {
        // The SDK's defaults.
        Self {
            max_queue: 2048,
            max_batch: 512,
            delay: Duration::from_millis(1000),
        }
    }
}

fn positive(var: &str, text: Option<&str>, default: u64, example: &str) -> Result<u64, String> {
    match text {
        None => Ok(default),
        Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("{var} = `{v}` is not valid: expected a whole number above 0, e.g. {example}")
        }),
    }
}

/// Accepts the seed's `host:port` as well as a URL.
fn with_scheme(endpoint: &str) -> String {
    let e = endpoint.trim();
    if e.contains("://") {
        e.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", e.trim_end_matches('/'))
    }
}

/// `k1=v1,k2=v2` with percent-encoded values, as the OTel spec defines `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_headers(var: &str, text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (i, pair) in text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        // The entry itself is not echoed: header values are often credentials.
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            format!(
                "{var}: entry {} is not key=value (expected k1=v1,k2=v2)",
                i + 1
            )
        })?;
        out.insert(k.trim().to_ascii_lowercase(), percent_decode(v.trim()));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl OtelConfig {
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let protocol = match get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            None | Some("grpc") => Protocol::Grpc,
            Some("http/protobuf") => Protocol::HttpProtobuf,
            Some(other) => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL = `{other}` is not supported: expected grpc or http/protobuf \
                     (GreptimeDB rejects http/json)"
                ))
            }
        };
        let default_base = match protocol {
            Protocol::Grpc => DEFAULT_ENDPOINT.to_owned(),
            Protocol::HttpProtobuf => "http://otel-collector:4318".to_owned(),
        };
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(with_scheme)
            .unwrap_or(default_base);
        // With HTTP the base gets the per-signal path; a per-signal variable is a full URL and is used as given.
        let signal = |var: &str, path: &str| match get(var) {
            Some(v) => with_scheme(v),
            None if protocol == Protocol::HttpProtobuf => format!("{base}{path}"),
            None => base.clone(),
        };
        let timeout = match get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            None => Duration::from_secs(10),
            Some(v) => Duration::from_millis(v.parse::<u64>().map_err(|_| {
                format!("OTEL_EXPORTER_OTLP_TIMEOUT = `{v}` is not valid: expected milliseconds, e.g. 10000")
            })?),
        };
        let metric_interval = match get("OTEL_METRIC_EXPORT_INTERVAL") {
            None => Duration::from_secs(60),
            Some(v) => Duration::from_millis(v.parse::<u64>().map_err(|_| {
                format!("OTEL_METRIC_EXPORT_INTERVAL = `{v}` is not valid: expected milliseconds, e.g. 60000")
            })?),
        };
        let d = LogQueueConfig::default();
        let max_queue = positive(
            "OTEL_BLRP_MAX_QUEUE_SIZE",
            get("OTEL_BLRP_MAX_QUEUE_SIZE"),
            d.max_queue as u64,
            "2048",
        )? as usize;
        let max_batch = positive(
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
            get("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"),
            d.max_batch as u64,
            "512",
        )? as usize;
        let delay = positive(
            "OTEL_BLRP_SCHEDULE_DELAY",
            get("OTEL_BLRP_SCHEDULE_DELAY"),
            d.delay.as_millis() as u64,
            "1000 (milliseconds)",
        )?;
        let log_queue = LogQueueConfig {
            max_queue,
            // As the spec says: a batch is never larger than the queue.
            max_batch: max_batch.min(max_queue),
            delay: Duration::from_millis(delay),
        };
        let common = get("OTEL_EXPORTER_OTLP_HEADERS")
            .map(|t| parse_headers("OTEL_EXPORTER_OTLP_HEADERS", t))
            .transpose()?
            .unwrap_or_default();
        let headers = |var: &str| -> Result<HashMap<String, String>, String> {
            let mut h = common.clone();
            if let Some(t) = get(var) {
                h.extend(parse_headers(var, t)?);
            }
            Ok(h)
        };
        Ok(Self {
            disabled,
            protocol,
            traces_endpoint: signal("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces"),
            logs_endpoint: signal("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "/v1/logs"),
            metrics_endpoint: signal("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "/v1/metrics"),
            traces_headers: headers("OTEL_EXPORTER_OTLP_TRACES_HEADERS")?,
            logs_headers: headers("OTEL_EXPORTER_OTLP_LOGS_HEADERS")?,
            metrics_headers: headers("OTEL_EXPORTER_OTLP_METRICS_HEADERS")?,
            timeout,
            service_name: get("OTEL_SERVICE_NAME")
                .unwrap_or(DEFAULT_SERVICE_NAME)
                .to_owned(),
            metric_interval,
            metric_temporality: get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
                .map(parse_temporality)
                .transpose()?
                .unwrap_or(DEFAULT_TEMPORALITY),
            log_queue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<OtelConfig, String> {
        OtelConfig::from_env(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_to_grpc_collector() {
        let c = cfg(&[]).expect("valid");
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.traces_endpoint, "http://otel-collector:4317");
        assert_eq!(c.service_name, "sling-sync-wrapper");
        assert!(!c.disabled);
        assert_eq!(c.metric_temporality, Temporality::Delta);
    }

    #[test]
    fn temporality_preference_is_honoured_and_bad_values_named() {
        for (v, t) in [
            ("cumulative", Temporality::Cumulative),
            ("Delta", Temporality::Delta),
            ("lowmemory", Temporality::LowMemory),
        ] {
            let c =
                cfg(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", v)]).expect("valid");
            assert_eq!(c.metric_temporality, t, "{v}");
        }
        let err = cfg(&[(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "sometimes",
        )])
        .expect_err("bad");
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
                && err.contains("sometimes"),
            "{err}"
        );
    }

    #[test]
    fn seed_host_port_gets_a_scheme() {
        let c = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]).expect("valid");
        assert_eq!(c.traces_endpoint, "http://localhost:4317");
    }

    #[test]
    fn http_appends_signal_paths_to_greptime_base() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://greptimedb:4000/v1/otlp/",
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://other:4318/v1/logs",
            ),
        ])
        .expect("valid");
        assert_eq!(
            c.traces_endpoint,
            "http://greptimedb:4000/v1/otlp/v1/traces"
        );
        assert_eq!(
            c.metrics_endpoint,
            "http://greptimedb:4000/v1/otlp/v1/metrics"
        );
        assert_eq!(c.logs_endpoint, "http://other:4318/v1/logs");
    }

    #[test]
    fn per_signal_headers_override_the_common_ones() {
        let c = cfg(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-greptime-db-name=sync_obs"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "x-greptime-pipeline-name=greptime_trace_v1",
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "x-greptime-db-name=metrics_db",
            ),
        ])
        .expect("valid");
        assert_eq!(
            c.traces_headers
                .get("x-greptime-pipeline-name")
                .map(String::as_str),
            Some("greptime_trace_v1")
        );
        assert_eq!(
            c.traces_headers
                .get("x-greptime-db-name")
                .map(String::as_str),
            Some("sync_obs")
        );
        assert!(
            !c.logs_headers.contains_key("x-greptime-pipeline-name"),
            "trace header stays off logs"
        );
        assert_eq!(
            c.metrics_headers
                .get("x-greptime-db-name")
                .map(String::as_str),
            Some("metrics_db")
        );
    }

    #[test]
    fn log_queue_takes_the_blrp_variables_and_names_bad_ones() {
        assert_eq!(
            cfg(&[]).expect("valid").log_queue,
            LogQueueConfig::default()
        );
        let c = cfg(&[
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "400"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "250"),
        ])
        .expect("valid");
        assert_eq!(
            c.log_queue,
            LogQueueConfig {
                max_queue: 100,
                max_batch: 100,
                delay: Duration::from_millis(250)
            }
        );
        for var in [
            "OTEL_BLRP_MAX_QUEUE_SIZE",
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
            "OTEL_BLRP_SCHEDULE_DELAY",
        ] {
            for bad in ["0", "-1", "lots"] {
                let e = cfg(&[(var, bad)]).expect_err("invalid");
                assert!(e.starts_with(&format!("{var} = `{bad}`")), "{e}");
            }
        }
    }

    #[test]
    fn headers_are_decoded_and_bad_values_named() {
        let c = cfg(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-greptime-db-name=sync_obs,Authorization=Basic%20abc",
        )])
        .expect("valid");
        assert_eq!(
            c.traces_headers
                .get("x-greptime-db-name")
                .map(String::as_str),
            Some("sync_obs")
        );
        assert_eq!(
            c.logs_headers.get("authorization").map(String::as_str),
            Some("Basic abc")
        );
        let err = cfg(&[("OTEL_EXPORTER_OTLP_HEADERS", "ok=1,Basic c2VjcmV0")]).expect_err("bad");
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_HEADERS") && err.contains("entry 2"),
            "{err}"
        );
        assert!(
            !err.contains("c2VjcmV0"),
            "a malformed header value is not echoed: {err}"
        );
        assert!(cfg(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])
            .expect_err("bad")
            .contains("http/json"));
        assert!(cfg(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "5s")])
            .expect_err("bad")
            .contains("milliseconds"));
        assert!(
            cfg(&[("OTEL_SDK_DISABLED", "true")])
                .expect("valid")
                .disabled
        );
    }
}
