//! An OTLP/gRPC trace receiver embedded in obsctl: the backend under test exports its spans here
//! (point `OTEL_EXPORTER_OTLP_ENDPOINT` at [`OtlpReceiver::endpoint`]), and checks read what it
//! kept through a [`SpanSnapshot`].
//!
//! Memory is bounded whatever arrives: a request is at most [`MAX_MESSAGE_BYTES`], only a few
//! are read at a time, each is read from its bytes without decoding it into structs
//! ([`super::otlp_wire`]), strings are bounded before they are copied, and what is kept
//! ([`SpanStore`]) stays within a byte budget; spans past it are dropped, counted, and reported
//! to the exporter as rejected.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut as _, Bytes};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, UnaryService};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::otlp_wire::export_response;
pub use super::span::{AttrValue, ReceivedSpan, SpanKind, SpanStatus};
use super::span_store::lock;
pub use super::span_store::{Ingested, SpanRecords, SpanSnapshot, SpanStore, StoreLimits};

/// The byte budget of what the receiver keeps, by default: a long run of an ordinary backend
/// stays far below it (its spans cost about 30 bytes each), and a laptop can spare it.
pub const DEFAULT_BUDGET_BYTES: usize = 128 * 1024 * 1024;

/// Longest string kept by default (span names, keys, values); longer ones are cut with a marker.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 256;

/// Attributes read per span or resource by default: the OpenTelemetry SDKs' own limit.
pub const DEFAULT_MAX_ATTRIBUTES: usize = 128;

/// Largest Export request accepted, in bytes: gRPC's usual limit, far above what OTLP exporters
/// send (the SDKs' batches of 512 spans are a few hundred KB).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Export requests read at a time over all connections; the others wait unread (their bytes
/// held back by HTTP/2 flow control), so memory does not grow with concurrent streams.
const CONCURRENT_EXPORTS: usize = 4;

/// HTTP/2 streams a connection may open at once, and requests it may have in the service.
const STREAMS_PER_CONNECTION: u32 = 16;
const REQUESTS_PER_CONNECTION: usize = 4;

/// HTTP/2 flow-control windows: the most a connection (or one stream) sends before the
/// receiver reads it.
const CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
const STREAM_WINDOW: u32 = 1024 * 1024;

/// The only method served.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What the exporter is told about spans dropped past the budget.
const REJECTED: &str =
    "obsctl's OTLP receiver is past its memory budget: spans dropped and counted";

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
    /// Approximate bytes kept at most; later spans are dropped and counted in
    /// [`OtlpReceiver::dropped_spans`].
    pub budget_bytes: usize,
    /// Most spans kept, whatever their size; later ones are dropped and counted.
    pub max_spans: usize,
    /// Which spans are kept as records readable through [`OtlpReceiver::spans`].
    pub records: SpanRecords,
    /// Longest string kept.
    pub max_value_bytes: usize,
}

impl Default for OtlpOptions {
    /// Every span recorded with every attribute, within the default budget: what tests that
    /// read spans one by one need.
    fn default() -> Self {
        Self {
            budget_bytes: DEFAULT_BUDGET_BYTES,
            max_spans: usize::MAX,
            records: SpanRecords::All,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

impl OtlpOptions {
    /// Only what the checks read, no records: memory that does not grow with each request
    /// (`obsctl verify`).
    pub fn compact() -> Self {
        Self {
            records: SpanRecords::None,
            ..Self::default()
        }
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits {
            budget_bytes: self.budget_bytes,
            max_spans: u64::try_from(self.max_spans).unwrap_or(u64::MAX),
            records: self.records,
            max_value_bytes: self.max_value_bytes,
            max_attributes: DEFAULT_MAX_ATTRIBUTES,
        }
    }
}

/// State shared between the gRPC service and the receiver handle.
#[derive(Debug)]
struct Shared {
    store: Arc<Mutex<SpanStore>>,
    export_requests: AtomicUsize,
    /// Woken after every Export call, so waiters re-check without polling.
    changed: Notify,
    /// Export requests being read; see [`CONCURRENT_EXPORTS`].
    reading: Arc<Semaphore>,
}

impl Shared {
    /// Stores one encoded Export request; the response is empty, or a partial success naming the
    /// spans dropped.
    fn export(&self, request: &[u8]) -> Result<tonic::Response<Vec<u8>>, Status> {
        let ingested = lock(&self.store).ingest(request);
        self.export_requests.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
        match ingested {
            Ok(ingested) => Ok(tonic::Response::new(export_response(
                ingested.dropped,
                REJECTED,
            ))),
            Err(error) => Err(Status::invalid_argument(error.to_string())),
        }
    }
}

/// The gRPC codec: a request stays the bytes it arrived as; a response is already encoded.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        use bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The Export handler.
struct Export(Arc<Shared>);

impl UnaryService<Bytes> for Export {
    type Response = Vec<u8>;
    type Future = Ready<Result<tonic::Response<Vec<u8>>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        ready(self.0.export(request.get_ref()))
    }
}

/// The HTTP/2 service: routes Export to [`Export`] once a reading slot is free, the way
/// tonic-generated servers route, and answers any other path with UNIMPLEMENTED.
#[derive(Clone)]
struct TraceService(Arc<Shared>);

impl<B> Service<http::Request<B>> for TraceService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            let status = Status::unimplemented("only OTLP trace export is served");
            return Box::pin(ready(Ok(status.into_http())));
        }
        let shared = Arc::clone(&self.0);
        Box::pin(async move {
            // The body stays unread (and bounded by flow control) until a slot is free.
            let _slot = Arc::clone(&shared.reading).acquire_owned().await;
            let mut grpc = Grpc::new(RawCodec).max_decoding_message_size(MAX_MESSAGE_BYTES);
            Ok(grpc.unary(Export(shared), request).await)
        })
    }
}

/// A running OTLP/gRPC trace receiver. It owns its server task and stops it when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
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
        let listener = listen(bind).map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let shared = Arc::new(Shared {
            store: Arc::new(Mutex::new(SpanStore::new(options.limits()))),
            export_requests: AtomicUsize::new(0),
            changed: Notify::new(),
            reading: Arc::new(Semaphore::new(CONCURRENT_EXPORTS)),
        });
        let service = TraceService(Arc::clone(&shared));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let incoming = TcpIncoming::from(listener);
            let stop = async {
                let _ = rx.await;
            };
            // A serve error after startup cannot be reported anywhere useful: spans simply stop
            // arriving, which the checks report.
            let _ = Server::builder()
                .concurrency_limit_per_connection(REQUESTS_PER_CONNECTION)
                .max_concurrent_streams(STREAMS_PER_CONNECTION)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .initial_stream_window_size(STREAM_WINDOW)
                .serve_with_incoming_shutdown(service, incoming, stop)
                .await;
        });
        Ok(Self {
            local_addr,
            shared,
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

    /// Every span recorded so far, in arrival order (none when records are off: see
    /// [`OtlpOptions::records`]).
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        lock(&self.shared.store).records().to_vec()
    }

    /// How many spans are kept.
    pub fn span_count(&self) -> u64 {
        lock(&self.shared.store).span_count()
    }

    /// How many spans arrived, kept or dropped.
    pub fn received_spans(&self) -> u64 {
        lock(&self.shared.store).received_spans()
    }

    /// How many Export calls arrived.
    pub fn export_requests(&self) -> usize {
        self.shared.export_requests.load(Ordering::Relaxed)
    }

    /// How many spans were dropped because the budget or the span cap was reached.
    pub fn dropped_spans(&self) -> u64 {
        lock(&self.shared.store).dropped_spans()
    }

    /// Approximate bytes the receiver holds (at most the budget plus one span's record).
    pub fn stored_bytes(&self) -> usize {
        lock(&self.shared.store).stored_bytes()
    }

    /// Follows the run whose trace ids start with `prefix` (its run id): its traces' spans are
    /// linked per trace from now on (and from the records already kept). False when `prefix`
    /// is not a 16-digit lowercase hex run id.
    pub fn follow_run(&self, prefix: &str) -> bool {
        lock(&self.shared.store).follow_run(prefix)
    }

    /// What the receiver holds now, frozen for judging.
    pub fn snapshot(&self) -> SpanSnapshot {
        SpanSnapshot::take(&self.shared.store)
    }

    /// Wait until `pred` holds for the spans recorded so far, or until `timeout` passes;
    /// either way return the records held at that moment (the caller re-checks `pred`).
    pub async fn wait_for_spans(
        &self,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Vec<ReceivedSpan> {
        self.wait_until(|store| pred(store.records()), timeout)
            .await;
        self.spans()
    }

    /// Wait until `pred` holds for the store (true), or until `timeout` passes (false). Woken
    /// by each Export call; nothing is copied while waiting.
    pub async fn wait_until(&self, pred: impl Fn(&SpanStore) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so an Export between the check and the wait is not missed.
            notified.as_mut().enable();
            if pred(&lock(&self.shared.store)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&lock(&self.shared.store));
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

/// Binds `addr` with the kernel's largest listen backlog (`net.core.somaxconn`, at most 4096):
/// tokio's `TcpListener::bind` asks for 128, and a burst of exporters' connects past it is
/// dropped and retried only a second later.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let backlog = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|raw| raw.trim().parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1024)
        .min(4096);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}
