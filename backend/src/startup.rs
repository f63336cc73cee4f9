//! Building and running the service: bind, serve until a shutdown signal, drain, flush.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use prometheus::Registry;
use salvo::conn::tcp::TcpAcceptor;
use salvo::prelude::*;

use crate::config::Config;
use crate::routes::{self, faults::Faults, limits::Limits};
use crate::store::{Store, StoreError};
use crate::telemetry::{self, metrics::HttpMetrics, traces};

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
    /// The server stopped with an I/O error.
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// A bound, ready-to-serve instance of the service.
pub struct Application {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    service: Service,
    drain_timeout: Duration,
}

impl Application {
    /// Opens the store and binds the listener; metrics register on `registry`.
    pub async fn build(config: &Config, registry: Registry) -> Result<Self, StartupError> {
        let store = Store::open(&config.database_path())?;
        let metrics = HttpMetrics::new(registry)?;
        let faults = Faults {
            error_rate: config.fault_error_rate,
            latency: config.fault_latency(),
        };
        let addr = SocketAddr::new(config.host, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        let acceptor = TcpAcceptor::try_from(listener)?;
        Ok(Self {
            acceptor,
            local_addr,
            service: routes::service(routes::Parts {
                store,
                metrics,
                faults,
                limits: Limits::new(
                    usize::try_from(config.max_concurrency).unwrap_or(usize::MAX),
                    config.request_timeout(),
                ),
                metrics_token: config.metrics_token.clone().filter(|t| !t.is_empty()),
            }),
            drain_timeout: Duration::from_secs(config.shutdown_timeout_secs),
        })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
    /// finish, closing connections that are still busy after the drain timeout.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let server = Server::new(self.acceptor);
        let handle = server.handle();
        let drain = self.drain_timeout;
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(
                drain_timeout_s = drain.as_secs(),
                "Shutting down: draining in-flight requests"
            );
            handle.stop_graceful(drain);
        });
        server.try_serve(self.service).await
    }
}

/// The whole service: telemetry on stdout and OTLP, then serve until SIGTERM or Ctrl-C, then
/// flush spans with a bounded wait.
pub async fn run(config: Config) -> Result<(), StartupError> {
    let registry = Registry::new();
    let resource = traces::resource();
    let service_name = traces::service_name(&resource);
    let provider = traces::provider(resource, &registry)?;
    let (stdout, flusher) = telemetry::stdout::buffered()?;
    let guard = telemetry::install(&service_name, config.log_level, stdout, provider)?
        .with_flusher(flusher);
    let app = Application::build(&config, registry).await?;
    tracing::info!(
        address = %app.local_addr(),
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
