//! Command-line and environment configuration, validated before any socket opens.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The service's settings: every flag has an environment fallback so that containers and
/// `obsctl verify` can configure it without arguments.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "backend",
    version,
    about = "Reference service for the obsctl instrumentation contract",
    long_about = "Reference service for the obsctl instrumentation contract.\n\n\
        Serves GET /api/users/{user_id}, POST /api/users, GET /health and GET /metrics; writes one \
        JSON log line per request on stdout; exports OpenTelemetry traces over OTLP/gRPC.\n\n\
        Tracing honours the standard OpenTelemetry environment: OTEL_EXPORTER_OTLP_ENDPOINT \
        (default http://localhost:4317), OTEL_SERVICE_NAME (default fastapi-backend, also the \
        `service` of every log line), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and \
        OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_* and OTEL_SDK_DISABLED=true (no spans are exported)."
)]
pub struct Config {
    /// Address to listen on. Use 0.0.0.0 in a container.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// TCP port to listen on; 0 picks a free port (the chosen address is logged).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// SQLite database: a file path (created and seeded with demo users if missing), an
    /// optional `sqlite://` prefix, or `:memory:` for a throwaway store.
    #[arg(long = "database", env = "DATABASE_URL", default_value = "users.db")]
    pub database: String,

    /// Fraction of /api/* requests that answer 500, for exercising error panels (0 to 1).
    #[arg(long, env = "FAULT_ERROR_RATE", default_value_t = 0.0, value_parser = parse_fraction)]
    pub fault_error_rate: f64,

    /// Latency in milliseconds added to every /api/* request, for exercising latency panels.
    #[arg(long, env = "FAULT_LATENCY_MS", default_value_t = 0)]
    pub fault_latency_ms: u64,

    /// Lowest level of log line written to stdout: debug, info, warning, error, or off.
    /// Request lines are INFO (2xx/3xx), WARNING (4xx) and ERROR (5xx).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", value_parser = parse_level)]
    pub log_level: LogLevel,

    /// Longest a request may take; slower ones answer 503 (and are counted and logged).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,

    /// Most requests handled at once; beyond it requests answer 503 at once instead of queueing
    /// without bound (overload degrades into fast errors, not into memory growth).
    #[arg(long, env = "MAX_CONCURRENCY", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrency: u64,

    /// Bearer token required on GET /metrics (`Authorization: Bearer TOKEN`); unset: open.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Seconds to wait for in-flight requests on SIGTERM / Ctrl-C before closing connections.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// Length of the listen queue (connections the kernel completes before they are accepted);
    /// default: `net.core.somaxconn`, at most 4096. A short queue turns bursts of connects into
    /// dropped SYNs that clients retry a second later.
    #[arg(long, env = "BACKLOG", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub backlog: Option<u32>,

    /// Most connections open at once; default: the open-file limit (raised to its hard limit at
    /// startup) minus 128 descriptors kept for the store, the collector and /proc reads.
    #[arg(long, env = "MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(2..))]
    pub max_connections: Option<u64>,

    /// Connections kept for scrapes and probes: above `--max-connections` minus this many, each
    /// new connection makes an idle one close to take its place; when none is idle, new
    /// connections serve only /metrics and /health (other requests answer 503).
    #[arg(long, env = "CONNECTION_RESERVE", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub connection_reserve: u64,

    /// Longest wait for a complete request head, including the idle time of a keep-alive
    /// connection between requests; then the connection is closed.
    #[arg(long, env = "HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,

    /// Longest time to receive a request body; slower bodies answer 408 without holding one of
    /// the `--max-concurrency` slots while they trickle in.
    #[arg(long, env = "BODY_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_secs: u64,

    /// Longest a response write may make no progress (a client that does not read); then the
    /// connection is closed.
    #[arg(long, env = "WRITE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout_secs: u64,
}

impl Config {
    /// The added latency of fault injection.
    pub fn fault_latency(&self) -> Duration {
        Duration::from_millis(self.fault_latency_ms)
    }

    /// The per-request time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The time limit of reading a request body.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// The SQLite location with any `sqlite:` URL prefix removed.
    pub fn database_path(&self) -> DatabaseLocation {
        let raw = self
            .database
            .strip_prefix("sqlite://")
            .or_else(|| self.database.strip_prefix("sqlite:"))
            .unwrap_or(&self.database);
        if raw == ":memory:" {
            DatabaseLocation::Memory
        } else {
            DatabaseLocation::File(PathBuf::from(raw))
        }
    }
}

/// Where users are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A private in-memory database, gone when the process exits.
    Memory,
    /// A database file, created if missing.
    File(PathBuf),
}

/// Minimum level of the log lines written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything, including DEBUG lines.
    Debug,
    /// INFO and above: every request line.
    Info,
    /// WARNING and above: 4xx and 5xx request lines.
    Warning,
    /// ERROR only: 5xx request lines and failures.
    Error,
    /// No log lines at all.
    Off,
}

fn parse_level(raw: &str) -> Result<LogLevel, String> {
    match raw.to_ascii_lowercase().as_str() {
        "debug" | "trace" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warning" | "warn" => Ok(LogLevel::Warning),
        "error" => Ok(LogLevel::Error),
        "off" | "none" => Ok(LogLevel::Off),
        other => Err(format!(
            "`{other}` is not a level: use debug, info, warning, error or off"
        )),
    }
}

fn parse_fraction(raw: &str) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a fraction between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_on_a_laptop() {
        let cfg = Config::try_parse_from(["backend"]).expect("defaults parse");
        assert_eq!(cfg.host.to_string(), "127.0.0.1");
        assert_eq!(cfg.port, 8000);
        assert_eq!(
            cfg.database_path(),
            DatabaseLocation::File("users.db".into())
        );
        assert_eq!(cfg.fault_error_rate, 0.0);
        assert_eq!(cfg.log_level, LogLevel::Info);
    }

    #[test]
    fn database_url_prefixes_and_memory() {
        let cfg = Config::try_parse_from(["backend", "--database", "sqlite:///tmp/x.db"]).unwrap();
        assert_eq!(
            cfg.database_path(),
            DatabaseLocation::File("/tmp/x.db".into())
        );
        let cfg = Config::try_parse_from(["backend", "--database", ":memory:"]).unwrap();
        assert_eq!(cfg.database_path(), DatabaseLocation::Memory);
    }

    #[test]
    fn fault_rate_outside_zero_one_is_rejected() {
        let err = Config::try_parse_from(["backend", "--fault-error-rate", "1.5"]).unwrap_err();
        assert!(err.to_string().contains("between 0 and 1"), "{err}");
    }
}
