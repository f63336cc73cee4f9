//! OTLP/gRPC span export: requests encoded straight from the SDK's span records ([`wire`]),
//! batched where the spans end ([`batch`]), and sent as `TraceService/Export` calls over a
//! tonic channel, with the standard exporter environment honoured and every span counted as
//! exported or dropped.
//!
//! It replaces opentelemetry-otlp's tonic exporter, which in 0.33 deep-copies every batch
//! before converting it (to be able to retry) and builds the request as a tree of structs;
//! here each span is encoded once, in place. Failed batches are not retried: the batch
//! processor goes on with the next one, and the loss is counted and logged.

pub mod batch;
pub mod wire;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

/// The gRPC method every export calls.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Where spans go when nothing is configured, as the OTLP specification says.
const DEFAULT_ENDPOINT: &str = "http://localhost:4317";

/// How long one export may take when `OTEL_EXPORTER_OTLP_TIMEOUT` does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// At most one export-failure log line per this interval, however many batches fail.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Why the exporter's configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The endpoint is not a URI tonic can connect to.
    #[error("OTLP endpoint {value:?} is not a valid URI: {reason}")]
    Endpoint {
        /// The value as given.
        value: String,
        /// What tonic said.
        reason: String,
    },
    /// The endpoint asks for TLS, which this build does not include: every export would fail.
    #[error(
        "OTLP endpoint {endpoint:?} uses https, but this build speaks plain-text gRPC only: \
         point it at a collector's http:// endpoint (e.g. a local OpenTelemetry Collector)"
    )]
    Tls {
        /// The endpoint as configured.
        endpoint: String,
    },
    /// A headers variable holds an entry that is not `key=value` with a valid gRPC key. The
    /// entry is named by position, never shown: header values are often credentials.
    #[error(
        "{variable}: entry {position} is not key=value with a valid header name and value \
         (values are not shown: they are often secrets)"
    )]
    Header {
        /// The variable it came from.
        variable: &'static str,
        /// The entry's position in the list, from 1.
        position: usize,
    },
    /// A timeout variable is not a whole number of milliseconds.
    #[error("{variable}={value:?} is not a whole number of milliseconds")]
    Timeout {
        /// The variable it came from.
        variable: &'static str,
        /// The value as given.
        value: String,
    },
    /// The exporter's own event loop could not be created.
    #[error("OTLP exporter runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Compression was asked for; this build sends uncompressed requests only.
    #[error(
        "{variable}={value:?}: compression is not supported by this build (unset it or set `none`)"
    )]
    Compression {
        /// The variable it came from.
        variable: &'static str,
        /// The value as given.
        value: String,
    },
}

/// The exporter's settings, from the standard `OTEL_EXPORTER_OTLP_*` environment (the
/// `_TRACES_` variant of each variable first).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// Collector URI, `http://` added when the scheme is missing (the spec's own example sets
    /// `localhost:4317`, which tonic would reject).
    pub endpoint: String,
    /// Metadata sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`, e.g. an API key).
    pub headers: Vec<(String, String)>,
    /// Deadline of one export call.
    pub timeout: Duration,
}

impl OtlpConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |specific: &'static str, generic: &'static str| {
            [specific, generic].into_iter().find_map(|name| {
                lookup(name)
                    .map(|value| value.trim().to_owned())
                    .filter(|value| !value.is_empty())
                    .map(|value| (name, value))
            })
        };
        let endpoint = match get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ) {
            Some((_, raw)) if raw.contains("://") => raw,
            Some((_, raw)) => format!("http://{raw}"),
            None => DEFAULT_ENDPOINT.to_owned(),
        };
        if endpoint
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        {
            return Err(ConfigError::Tls { endpoint });
        }
        let headers = match get(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ) {
            Some((variable, raw)) => parse_headers(variable, &raw)?,
            None => Vec::new(),
        };
        let timeout = match get(
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ) {
            Some((variable, raw)) => {
                raw.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| ConfigError::Timeout {
                        variable,
                        value: raw,
                    })?
            }
            None => DEFAULT_TIMEOUT,
        };
        if let Some((variable, value)) = get(
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ) && !value.eq_ignore_ascii_case("none")
        {
            return Err(ConfigError::Compression { variable, value });
        }
        Ok(Self {
            endpoint,
            headers,
            timeout,
        })
    }
}

/// `key1=value1,key2=value2`, values percent-decoded (the W3C baggage form the OTLP
/// exporter specification uses). Keys must make valid gRPC metadata.
fn parse_headers(variable: &'static str, raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            let invalid = || ConfigError::Header {
                variable,
                position: index + 1,
            };
            let (key, value) = entry.split_once('=').ok_or_else(invalid)?;
            let key = key.trim().to_ascii_lowercase();
            let value = percent_decode(value.trim()).ok_or_else(invalid)?;
            let valid = MetadataKey::<tonic::metadata::Ascii>::from_bytes(key.as_bytes()).is_ok()
                && !key.ends_with("-bin")
                && MetadataValue::<tonic::metadata::Ascii>::try_from(value.as_str()).is_ok();
            if valid {
                Ok((key, value))
            } else {
                Err(invalid())
            }
        })
        .collect()
}

/// `%XX` sequences to bytes; `None` for a malformed sequence or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What happens to exported spans, on `/metrics`.
#[derive(Debug, Clone)]
pub struct ExportCounters {
    /// Spans the collector accepted.
    pub exported: IntCounter,
    /// Spans lost to a failed export or rejected by the collector.
    pub dropped: IntCounter,
}

/// Sends encoded span batches to an OTLP/gRPC collector; see the module docs.
///
/// It owns a single-threaded runtime that drives its channel, and [`OtlpExporter::export`]
/// blocks on it: the batch thread that calls it does all the export's work itself, with no
/// hand-off to the request workers' runtime and back for every call.
pub struct OtlpExporter {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    headers: MetadataMap,
    counters: ExportCounters,
    /// Seconds since `started` of the last failure line, 0 for never: a lock-free rate limit.
    last_failure_log: AtomicU64,
    started: Instant,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// An exporter for `config`. The channel connects lazily, on the first export.
    pub fn new(config: &OtlpConfig, counters: ExportCounters) -> Result<Self, ConfigError> {
        let endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|error| ConfigError::Endpoint {
                value: config.endpoint.clone(),
                reason: error.to_string(),
            })?
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        let mut headers = MetadataMap::new();
        for (key, value) in &config.headers {
            // parse_headers has validated both.
            if let (Ok(key), Ok(value)) = (
                MetadataKey::from_bytes(key.as_bytes()),
                MetadataValue::try_from(value.as_str()),
            ) {
                headers.insert(key, value);
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConfigError::Runtime)?;
        // The channel spawns its tasks (request buffer, then connection) on the runtime
        // entered here; they run while `export` blocks on it.
        let channel = {
            let _entered = runtime.enter();
            endpoint.connect_lazy()
        };
        Ok(Self {
            runtime,
            channel,
            headers,
            counters,
            last_failure_log: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// Sends one encoded `ExportTraceServiceRequest` of `spans` spans, waiting for the answer
    /// (at most the configured timeout), and counts them as exported or dropped. Must not be
    /// called from within a Tokio runtime.
    pub fn export(&self, body: Vec<u8>, spans: usize) -> Result<(), tonic::Status> {
        match self.runtime.block_on(self.send(body)) {
            Ok(rejected) => {
                let rejected = usize::try_from(rejected).unwrap_or(0).min(spans);
                self.counters.exported.inc_by((spans - rejected) as u64);
                if rejected > 0 {
                    self.counters.dropped.inc_by(rejected as u64);
                    self.log_failure(rejected, &"the collector rejected part of the batch");
                }
                Ok(())
            }
            Err(status) => {
                self.counters.dropped.inc_by(spans as u64);
                self.log_failure(spans, &status);
                Err(status)
            }
        }
    }

    /// One `Export` call; `Ok` carries the number of spans the collector rejected.
    async fn send(&self, body: Vec<u8>) -> Result<i64, tonic::Status> {
        let mut client = tonic::client::Grpc::new(self.channel.clone());
        client
            .ready()
            .await
            .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.headers.clone();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT_PATH);
        let response = client.unary(request, path, RawCodec).await?;
        Ok(response.into_inner().rejected_spans)
    }

    fn log_failure(&self, spans: usize, error: &dyn fmt::Display) {
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.last_failure_log.load(Ordering::Relaxed);
        let due = last == 0 || now >= last + FAILURE_LOG_INTERVAL.as_secs();
        if due
            && self
                .last_failure_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                target: "backend::telemetry",
                dropped_spans = spans as u64,
                dropped_total = self.counters.dropped.get(),
                error = %error,
                "Trace export failed; spans dropped (logged at most every 30 s, see otel_spans_dropped_total)"
            );
        }
    }
}

/// The collector's answer: only `partial_success.rejected_spans` matters here.
#[derive(Debug, Default)]
struct ExportResponse {
    rejected_spans: i64,
}

/// Sends an already-encoded request and reads the response's rejected-span count.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ExportResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, Self::Error> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
        use prost::Message;
        let response = ExportTraceServiceResponse::decode(src)
            .map_err(|error| tonic::Status::internal(format!("bad Export response: {error}")))?;
        Ok(Some(ExportResponse {
            rejected_spans: response
                .partial_success
                .map_or(0, |partial| partial.rejected_spans),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<OtlpConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OtlpConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_otlp_specification() {
        let config = config(&[]).unwrap();
        assert_eq!(config.endpoint, "http://localhost:4317");
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert!(config.headers.is_empty());
    }

    #[test]
    fn the_traces_variables_win_and_a_missing_scheme_is_added() {
        let config = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "tempo:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "500"),
        ])
        .unwrap();
        assert_eq!(config.endpoint, "http://tempo:4317");
        assert_eq!(config.timeout, Duration::from_millis(500));
        let generic = self::config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]).unwrap();
        assert_eq!(generic.endpoint, "http://c:4317");
    }

    #[test]
    fn headers_are_percent_decoded_and_bad_entries_refused() {
        let config = config(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=s%3Dcret, X-Tenant = team%20a ,",
        )])
        .unwrap();
        assert_eq!(
            config.headers,
            vec![
                ("api-key".to_owned(), "s=cret".to_owned()),
                ("x-tenant".to_owned(), "team a".to_owned()),
            ]
        );
        for bad in [
            "novalue",
            "bad key=x",
            "k=%zz",
            "k=%+f",
            "k=%4",
            "k=line\nbreak",
            "k-bin=x",
        ] {
            let error = self::config(&[("OTEL_EXPORTER_OTLP_HEADERS", bad)]).unwrap_err();
            assert!(
                matches!(error, ConfigError::Header { position: 1, .. }),
                "{bad}: {error}"
            );
        }
        let error = self::config(&[("OTEL_EXPORTER_OTLP_HEADERS", "a=1,token s3cret-value")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("entry 2"), "{error}");
        assert!(
            !error.contains("s3cret"),
            "a credential must not be echoed: {error}"
        );
    }

    #[test]
    fn an_https_endpoint_is_refused_up_front_rather_than_failing_every_export() {
        for endpoint in ["https://otlp.example.com:443", "HTTPS://c:4317"] {
            let error = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)]).unwrap_err();
            assert!(
                matches!(error, ConfigError::Tls { .. }),
                "{endpoint}: {error}"
            );
        }
    }

    #[test]
    fn a_bad_timeout_or_compression_is_an_error_not_a_guess() {
        let error = config(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]).unwrap_err();
        assert!(
            error.to_string().contains("OTEL_EXPORTER_OTLP_TIMEOUT"),
            "{error}"
        );
        let error = config(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]).unwrap_err();
        assert!(error.to_string().contains("not supported"), "{error}");
        assert!(config(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "none")]).is_ok());
    }
}
