//! An OTLP/gRPC trace receiver embedded in obsctl: the backend under test exports its spans here
//! (point `OTEL_EXPORTER_OTLP_ENDPOINT` at [`OtlpReceiver::endpoint`]), and checks read them back
//! as [`ReceivedSpan`]s. Memory is bounded: past a cap, spans are counted and dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::span::flatten_resource_spans;
pub use super::span::{AttrValue, ReceivedSpan, SpanKind, SpanStatus};

/// Spans kept by default before new ones are dropped (and counted).
pub const DEFAULT_MAX_SPANS: usize = 1_000_000;

/// Largest Export request accepted, in bytes (the OTLP exporters batch far below this).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen for OTLP/gRPC on {addr}: {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
}

/// Options for [`OtlpReceiver::start_with`].
#[derive(Debug, Clone)]
pub struct OtlpOptions {
    /// Most spans kept; later spans are dropped and counted in [`OtlpReceiver::dropped_spans`].
    pub max_spans: usize,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        Self {
            max_spans: DEFAULT_MAX_SPANS,
        }
    }
}

/// State shared between the gRPC service and the receiver handle.
#[derive(Debug)]
struct Store {
    spans: Mutex<Vec<ReceivedSpan>>,
    max_spans: usize,
    export_requests: AtomicUsize,
    dropped: AtomicU64,
    /// Woken after every Export call, so waiters re-check without polling.
    changed: Notify,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Vec<ReceivedSpan>> {
        // A panic while holding the lock cannot leave the Vec inconsistent: keep serving.
        self.spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ingest(&self, request: &ExportTraceServiceRequest) {
        let mut dropped = 0u64;
        {
            let mut spans = self.lock();
            let full = spans.len() >= self.max_spans;
            if full {
                // Count without converting, so a flood costs no more than its decoding.
                dropped = request
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .map(|ss| ss.spans.len() as u64)
                    .sum();
            }
            for rs in request.resource_spans.iter().filter(|_| !full) {
                flatten_resource_spans(rs, &mut |span| {
                    if spans.len() < self.max_spans {
                        spans.push(span);
                    } else {
                        dropped += 1;
                    }
                });
            }
        }
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
        self.export_requests.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }
}

/// The tonic service: stores every span of every Export call.
struct Collector {
    store: Arc<Store>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.store.ingest(request.get_ref());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running OTLP/gRPC trace receiver. It owns its server task and stops it when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    local_addr: SocketAddr,
    store: Arc<Store>,
    /// Sending (or dropping) this stops the server gracefully.
    shutdown: Option<oneshot::Sender<()>>,
    /// The server task; aborted on drop in case graceful shutdown is stuck.
    task: Option<JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Start a receiver on `bind` with default options (bind `127.0.0.1:0` in tests).
    pub async fn start(bind: SocketAddr) -> Result<Self, OtlpError> {
        Self::start_with(bind, OtlpOptions::default()).await
    }

    /// Start a receiver on `bind` with `options`.
    pub async fn start_with(bind: SocketAddr, options: OtlpOptions) -> Result<Self, OtlpError> {
        let bind_err = |error| OtlpError::Bind { addr: bind, error };
        let listener = TcpListener::bind(bind).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let store = Arc::new(Store {
            spans: Mutex::new(Vec::new()),
            max_spans: options.max_spans,
            export_requests: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            changed: Notify::new(),
        });
        let service = TraceServiceServer::new(Collector {
            store: Arc::clone(&store),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let incoming = TcpIncoming::from(listener);
            let stop = async {
                let _ = rx.await;
            };
            // A serve error after startup cannot be reported anywhere useful: spans simply stop
            // arriving, which the checks report.
            let _ = Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, stop)
                .await;
        });
        Ok(Self {
            local_addr,
            store,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The address the receiver listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint URL for `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:43170`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.lock().clone()
    }

    /// How many spans are stored.
    pub fn span_count(&self) -> usize {
        self.store.lock().len()
    }

    /// How many Export calls arrived.
    pub fn export_requests(&self) -> usize {
        self.store.export_requests.load(Ordering::Relaxed)
    }

    /// How many spans were dropped because the cap was reached.
    pub fn dropped_spans(&self) -> u64 {
        self.store.dropped.load(Ordering::Relaxed)
    }

    /// Wait until `pred` holds for the spans received so far, or until `timeout` passes;
    /// either way return the spans held at that moment (the caller re-checks `pred`).
    pub async fn wait_for_spans(
        &self,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Vec<ReceivedSpan> {
        self.wait_until(pred, timeout).await;
        self.spans()
    }

    /// Wait until `pred` holds for the spans received so far (true), or until `timeout` passes
    /// (false). Woken by each Export call; nothing is copied while waiting.
    pub async fn wait_until(
        &self,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.store.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so an Export between the check and the wait is not missed.
            notified.as_mut().enable();
            if pred(&self.store.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&self.store.lock());
            }
        }
    }

    /// Stop the server and wait (at most `grace`) for it to finish.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
