//! Building and running the service: bind, serve until a shutdown signal, drain, flush.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use prometheus::Registry;

use crate::config::Config;
use crate::routes::{self, faults::Faults, limits::Limits};
use crate::server::{Server, ServerSettings, listener};
use crate::store::{Store, StoreError};
use crate::telemetry::metrics::{ConnectionMetrics, HttpMetrics};
use crate::telemetry::{self, traces};

/// Longest wait for queued spans to reach the collector at shutdown.
const SPAN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The SQLite store could not be opened.
    #[error("cannot open the user store: {0}")]
    Store(#[from] StoreError),
    /// The metrics registry refused a collector.
    #[error(transparent)]
    Metrics(#[from] telemetry::metrics::MetricsError),
    /// Tracing could not be configured.
    #[error(transparent)]
    Traces(#[from] traces::TracesError),
    /// A global subscriber was already installed.
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(#[from] tracing::subscriber::SetGlobalDefaultError),
    /// The connection limits contradict each other.
    #[error("{0}")]
    Limits(String),
    /// The server stopped with an I/O error.
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Descriptors kept out of the default connection cap: the store, the collector's connection,
/// stdout, and the files read for the process metrics.
const DESCRIPTOR_HEADROOM: u64 = 128;

/// The connection cap when the open-file limit cannot be read.
const FALLBACK_MAX_CONNECTIONS: u64 = 4096;

/// A bound, ready-to-serve instance of the service.
pub struct Application {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    server: Server,
}

impl Application {
    /// Opens the store and binds the listener; metrics register on `registry`. `nofile` is the
    /// open-file limit in force, from which the default connection cap is derived.
    pub async fn build(
        config: &Config,
        registry: Registry,
        nofile: Option<u64>,
    ) -> Result<Self, StartupError> {
        let store = Store::open(&config.database_path())?;
        let connections = ConnectionMetrics::new(&registry)?;
        // With the SDK disabled no span is exported: an exemplar's trace id would lead nowhere.
        let metrics =
            HttpMetrics::new(registry)?.with_exemplars(!crate::telemetry::traces::sdk_disabled());
        let faults = Faults {
            error_rate: config.fault_error_rate,
            latency: config.fault_latency(),
        };
        let addr = SocketAddr::new(config.host, config.port);
        let backlog = config.backlog.unwrap_or_else(listener::default_backlog);
        let listener =
            listener::bind(addr, backlog).map_err(|source| StartupError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        let service = routes::service(routes::Parts {
            store,
            metrics: metrics.clone(),
            faults,
            limits: Limits::new(
                usize::try_from(config.max_concurrency).unwrap_or(usize::MAX),
                config.request_timeout(),
                config.body_timeout(),
            ),
            metrics_token: config.metrics_token.clone().filter(|t| !t.is_empty()),
        });
        let settings = settings(config, nofile)?;
        tracing::debug!(backlog, ?settings, "Server limits");
        Ok(Self {
            listener,
            local_addr,
            server: Server {
                service: std::sync::Arc::new(service),
                settings,
                connections,
                requests: metrics,
            },
        })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then closes the listener, closes connections with no
    /// request in progress and lets in-flight requests finish, closing connections that are
    /// still busy after the drain timeout.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let drain = self.server.settings.drain_timeout;
        let shutdown = async move {
            shutdown.await;
            tracing::info!(
                drain_timeout_s = drain.as_secs(),
                "Shutting down: draining in-flight requests"
            );
        };
        self.server.run(self.listener, shutdown).await
    }
}

/// The server's limits from the configuration; the connection cap defaults to what the
/// open-file limit allows.
fn settings(config: &Config, nofile: Option<u64>) -> Result<ServerSettings, StartupError> {
    let (max_connections, reserve) = match config.max_connections {
        Some(max) if config.connection_reserve >= max => {
            return Err(StartupError::Limits(format!(
                "--connection-reserve {} must be below --max-connections {max}",
                config.connection_reserve
            )));
        }
        Some(max) => (max, config.connection_reserve),
        None => {
            let max = nofile.map_or(FALLBACK_MAX_CONNECTIONS, |limit| {
                limit.saturating_sub(DESCRIPTOR_HEADROOM).max(2)
            });
            // A tiny open-file limit still leaves half its connections for the API.
            (max, config.connection_reserve.min(max / 2))
        }
    };
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(ServerSettings {
        max_connections: size(max_connections),
        reserve: size(reserve),
        header_timeout: Duration::from_secs(config.header_timeout_secs),
        write_timeout: Duration::from_secs(config.write_timeout_secs),
        drain_timeout: Duration::from_secs(config.shutdown_timeout_secs),
    })
}

/// The whole service: telemetry on stdout and OTLP, then serve until SIGTERM or Ctrl-C, then
/// flush spans with a bounded wait.
pub async fn run(config: Config) -> Result<(), StartupError> {
    let nofile = listener::raise_nofile_limit();
    let registry = Registry::new();
    let resource = traces::resource();
    let service_name = traces::service_name(&resource);
    let provider = traces::provider(resource, &registry)?;
    let (stdout, flusher) = telemetry::stdout::buffered()?;
    let guard = telemetry::install(&service_name, config.log_level, stdout, provider)?
        .with_flusher(flusher);
    let app = Application::build(&config, registry, nofile).await?;
    tracing::info!(
        address = %app.local_addr(),
        open_files = nofile,
        "Listening on http://{}",
        app.local_addr()
    );
    let served = app.run(shutdown_signal()).await;
    tracing::info!("Stopped serving; flushing spans and logs");
    guard.shutdown(SPAN_FLUSH_TIMEOUT);
    Ok(served?)
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("backend").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_connection_cap_follows_the_open_file_limit_unless_set() {
        let limits = settings(&config(&[]), Some(1024)).unwrap();
        assert_eq!(limits.max_connections, 1024 - 128);
        assert_eq!(limits.reserve, 32);
        let limits = settings(&config(&[]), None).unwrap();
        assert_eq!(limits.max_connections, 4096);
        let limits = settings(&config(&["--max-connections", "100"]), Some(1024)).unwrap();
        assert_eq!(limits.max_connections, 100);
    }

    #[test]
    fn a_reserve_as_large_as_the_cap_is_refused_naming_the_flags() {
        let error = settings(&config(&["--max-connections", "32"]), None).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("--connection-reserve 32"), "{message}");
        assert!(message.contains("--max-connections 32"), "{message}");
    }

    #[test]
    fn a_tiny_open_file_limit_shrinks_the_default_reserve() {
        let limits = settings(&config(&[]), Some(150)).unwrap();
        assert_eq!((limits.max_connections, limits.reserve), (22, 11));
    }
}
