//! The batch span processor: spans are encoded where they end, into a few sharded buffers,
//! and a thread of its own sends full buffers (and, on a timer, whatever the buffers hold).
//!
//! It replaces the SDK's `BatchSpanProcessor`, which queues every span record through a
//! channel to its thread, encodes and frees it there (memory allocated on one thread and freed
//! on another), and hands each export to the request runtime and back. Here a request worker
//! encodes its spans into the buffer of its shard (an uncontended lock) and frees them itself;
//! the export thread only assembles and sends bytes. Measured under `wrk -t2 -c64`, that is
//! most of what exporting spans cost per request (BENCHMARKS.md).
//!
//! The guarantees are those of the SDK's processor: `on_end` never blocks on the collector
//! (a span that finds the queue full is dropped and counted at once), only sampled spans are
//! exported, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`,
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` and `OTEL_BSP_EXPORT_TIMEOUT` mean what they mean there,
//! and flush and shutdown export what every buffer holds, within a bounded wait.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use prometheus::IntCounter;

use super::wire::{RequestEncoder, span_entry};
use super::{ExportCounters, OtlpExporter};

/// The batching settings, from the SDK's standard `OTEL_BSP_*` variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Longest a span waits in a buffer before it is sent (`OTEL_BSP_SCHEDULE_DELAY`, ms).
    pub schedule_delay: Duration,
    /// Most spans waiting to be sent; more are dropped (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub max_queue_size: usize,
    /// Spans per export call (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`), at most the queue size.
    pub max_export_batch_size: usize,
    /// Longest one export call may take (`OTEL_BSP_EXPORT_TIMEOUT`, ms); the exporter's own
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` applies too, whichever is shorter.
    pub export_timeout: Duration,
}

impl BatchSettings {
    /// The specification's 5 s delay, 30 s export timeout and batches of 512 spans.
    const DEFAULT_DELAY: Duration = Duration::from_millis(5_000);
    const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_millis(30_000);
    const DEFAULT_BATCH: usize = 512;
    /// The specification's 2048 overflows within a second at 2,000 requests/s (three spans
    /// each) on a busy machine; 32,768 spans (a few tens of MB at most) ride out seconds of
    /// collector trouble.
    const DEFAULT_QUEUE: usize = 32_768;

    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`. As in the SDK, a value that is not a positive
    /// whole number leaves the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let number = |name: &str| {
            lookup(name)
                .and_then(|raw| raw.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        let max_queue_size = number("OTEL_BSP_MAX_QUEUE_SIZE")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(Self::DEFAULT_QUEUE);
        let max_export_batch_size = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(Self::DEFAULT_BATCH)
            .min(max_queue_size);
        Self {
            schedule_delay: number("OTEL_BSP_SCHEDULE_DELAY")
                .map_or(Self::DEFAULT_DELAY, Duration::from_millis),
            max_queue_size,
            max_export_batch_size,
            export_timeout: number("OTEL_BSP_EXPORT_TIMEOUT")
                .map_or(Self::DEFAULT_EXPORT_TIMEOUT, Duration::from_millis),
        }
    }
}

/// Encoded spans of one scope, as `ScopeSpans.spans` entries.
#[derive(Debug)]
struct ScopeEntries {
    scope: InstrumentationScope,
    entries: Vec<u8>,
}

/// Spans encoded and not yet sent: a shard's buffer, or a batch on its way to the exporter.
#[derive(Debug, Default)]
struct Batch {
    scopes: Vec<ScopeEntries>,
    spans: usize,
}

impl Batch {
    /// Encoded bytes held.
    fn bytes(&self) -> usize {
        self.scopes.iter().map(|scope| scope.entries.len()).sum()
    }

    /// Whether this batch should be sent now rather than grow: `max_spans` spans, or bytes
    /// enough that a bigger request could pass the 4 MiB a gRPC server takes by default.
    fn is_full(&self, max_spans: usize) -> bool {
        self.spans >= max_spans || self.bytes() >= MAX_BATCH_BYTES
    }

    fn push(&mut self, span: &SpanData) {
        let at = match self
            .scopes
            .iter()
            .position(|scope| scope.scope == span.instrumentation_scope)
        {
            Some(at) => at,
            None => {
                self.scopes.push(ScopeEntries {
                    scope: span.instrumentation_scope.clone(),
                    entries: Vec::with_capacity(64 * 1024),
                });
                self.scopes.len() - 1
            }
        };
        span_entry(&mut self.scopes[at].entries, span);
        self.spans += 1;
    }

    /// The spans held so far, leaving the buffer empty.
    fn take(&mut self) -> Batch {
        std::mem::take(self)
    }
}

/// What the export thread is asked to do.
enum Message {
    /// Send these spans (a full shard buffer).
    Export(Batch),
    /// Send everything buffered, then answer.
    Flush(SyncSender<()>),
    /// Send everything buffered, answer, and stop.
    Shutdown(SyncSender<()>),
    /// Stamp requests with this resource from now on.
    Resource(RequestEncoder),
}

/// The state the processor and its export thread share.
struct Shared {
    shards: Box<[CachePadded<Mutex<Batch>>]>,
    settings: BatchSettings,
    counters: ExportCounters,
    /// Spans handed to the processor and not yet to the exporter: bounded by the queue size,
    /// so that a full queue is seen, and its drops counted, the moment it happens.
    pending: AtomicUsize,
}

impl Shared {
    fn lock(shard: &Mutex<Batch>) -> MutexGuard<'_, Batch> {
        // Encoding into a Vec cannot leave it invalid: a panic elsewhere must not stop export.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whatever every shard holds, leaving them empty.
    fn drain(&self) -> Vec<Batch> {
        self.shards
            .iter()
            .map(|shard| Self::lock(shard).take())
            .filter(|batch| batch.spans > 0)
            .collect()
    }
}

/// The batch processor; see the module docs.
pub struct BatchProcessor {
    shared: Arc<Shared>,
    sender: SyncSender<Message>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Sampled spans handed to this processor.
    ended: IntCounter,
    /// Spans dropped here because the queue was full, for the shutdown summary.
    queue_full: AtomicU64,
    is_shutdown: AtomicBool,
}

impl std::fmt::Debug for BatchProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchProcessor")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

/// Encoded bytes per export call at most, give or take a span: well under the 4 MiB that
/// gRPC servers (the OpenTelemetry Collector's and Tempo's receivers among them) accept by
/// default, whatever the batch size and however large the spans.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Export calls queued for the thread at most, beyond one per shard.
const QUEUED_EXPORTS: usize = 16;

/// How long `force_flush` waits for the export thread.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

impl BatchProcessor {
    /// Starts the export thread, which sends through `exporter`; `ended` counts the sampled
    /// spans that reach the processor, `exporter`'s counters what becomes of them.
    pub fn start(
        exporter: OtlpExporter,
        settings: BatchSettings,
        counters: ExportCounters,
        ended: IntCounter,
    ) -> std::io::Result<Self> {
        let shard_count = std::thread::available_parallelism()
            .map_or(4, usize::from)
            .saturating_mul(2)
            .clamp(2, 64);
        let shared = Arc::new(Shared {
            shards: (0..shard_count)
                .map(|_| CachePadded::new(Mutex::new(Batch::default())))
                .collect(),
            settings,
            counters,
            pending: AtomicUsize::new(0),
        });
        let (sender, receiver) = sync_channel(shard_count + QUEUED_EXPORTS);
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("otlp-export".to_owned())
                .spawn(move || ExportThread::new(shared, exporter).run(&receiver))?
        };
        Ok(Self {
            shared,
            sender,
            worker: Mutex::new(Some(worker)),
            ended,
            queue_full: AtomicU64::new(0),
            is_shutdown: AtomicBool::new(false),
        })
    }

    /// Counts `spans` spans as dropped because there was no room for them.
    fn drop_spans(&self, spans: usize) {
        self.shared.counters.dropped.inc_by(spans as u64);
        self.queue_full.fetch_add(spans as u64, Ordering::Relaxed);
    }

    /// Asks the thread to send everything and waits for its answer, at most `timeout`.
    fn drain_and_wait(&self, message: fn(SyncSender<()>) -> Message, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (done, answer) = sync_channel(1);
        // The queue can be full while the thread waits on a stalled collector: retry until the
        // deadline rather than block past it (std's SyncSender has no send with a timeout).
        let mut message = message(done);
        loop {
            match self.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        answer
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// This thread's shard, assigned round-robin on first use (the first shard for a span that
/// ends while its thread is being torn down).
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = Cell::new(NEXT.fetch_add(1, Ordering::Relaxed));
    }
    SHARD.try_with(Cell::get).unwrap_or(0)
}

impl SpanProcessor for BatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() || self.is_shutdown.load(Ordering::Relaxed) {
            return;
        }
        self.ended.inc();
        let shared = &*self.shared;
        let pending = &shared.pending;
        if pending.fetch_add(1, Ordering::AcqRel) >= shared.settings.max_queue_size {
            pending.fetch_sub(1, Ordering::AcqRel);
            self.drop_spans(1);
            return;
        }
        let full = {
            let mut shard = Shared::lock(&shared.shards[shard_index() % shared.shards.len()]);
            shard.push(&span);
            shard
                .is_full(shared.settings.max_export_batch_size)
                .then(|| shard.take())
        };
        drop(span);
        if let Some(batch) = full {
            // Never wait here: a thread that cannot keep up loses the batch, counted.
            if let Err(TrySendError::Full(Message::Export(batch)))
            | Err(TrySendError::Disconnected(Message::Export(batch))) =
                self.sender.try_send(Message::Export(batch))
            {
                pending.fetch_sub(batch.spans, Ordering::AcqRel);
                self.drop_spans(batch.spans);
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        if self.drain_and_wait(Message::Flush, FLUSH_TIMEOUT) {
            Ok(())
        } else {
            Err(OTelSdkError::Timeout(FLUSH_TIMEOUT))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.is_shutdown.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let finished = self.drain_and_wait(Message::Shutdown, timeout);
        if finished
            && let Some(worker) = self
                .worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        {
            let _ = worker.join();
        }
        let ended = self.ended.get();
        let ExportCounters {
            exported, dropped, ..
        } = &self.shared.counters;
        let queue_full = self.queue_full.load(Ordering::Relaxed);
        if queue_full > 0 {
            tracing::warn!(
                target: "backend::telemetry",
                dropped_spans = queue_full,
                "Spans dropped because the export queue was full (counted in \
                 otel_spans_dropped_total as it happened; raise OTEL_BSP_MAX_QUEUE_SIZE)"
            );
        }
        let lost = ended.saturating_sub(exported.get() + dropped.get());
        if lost > 0 {
            dropped.inc_by(lost);
            tracing::warn!(
                target: "backend::telemetry",
                dropped_spans = lost,
                "Spans still queued when the final flush timed out were dropped"
            );
        }
        if finished {
            Ok(())
        } else {
            Err(OTelSdkError::Timeout(timeout))
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        let _ = self
            .sender
            .send(Message::Resource(RequestEncoder::new(resource)));
    }
}

/// The export thread: sends full batches as they come, and every shard's spans when the
/// schedule delay has passed since the last such sweep, or when asked.
struct ExportThread {
    shared: Arc<Shared>,
    exporter: OtlpExporter,
    encoder: RequestEncoder,
}

impl ExportThread {
    fn new(shared: Arc<Shared>, exporter: OtlpExporter) -> Self {
        Self {
            shared,
            exporter,
            encoder: RequestEncoder::default(),
        }
    }

    fn run(mut self, receiver: &Receiver<Message>) {
        let delay = self.shared.settings.schedule_delay;
        let mut next_sweep = Instant::now() + delay;
        loop {
            let wait = next_sweep.saturating_duration_since(Instant::now());
            let message = match receiver.recv_timeout(wait) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.sweep(receiver, Vec::new());
                    return;
                }
            };
            let stop = match message {
                Some(Message::Export(batch)) => {
                    self.send(vec![batch]);
                    false
                }
                Some(Message::Resource(encoder)) => {
                    self.encoder = encoder;
                    false
                }
                Some(Message::Flush(done)) => self.sweep(receiver, vec![done]),
                Some(Message::Shutdown(done)) => {
                    self.sweep(receiver, vec![done]);
                    true
                }
                None => {
                    next_sweep = Instant::now() + delay;
                    self.sweep(receiver, Vec::new())
                }
            };
            if stop {
                return;
            }
        }
    }

    /// Sends the batches already queued, then what the shards hold, in export calls of about
    /// the batch size, then answers `waiting` and whoever asked for a flush meanwhile.
    /// Returns whether a shutdown was asked for.
    fn sweep(&mut self, receiver: &Receiver<Message>, mut waiting: Vec<SyncSender<()>>) -> bool {
        let mut batches = Vec::new();
        let mut stop = false;
        while let Ok(message) = receiver.try_recv() {
            match message {
                Message::Export(batch) => batches.push(batch),
                Message::Resource(encoder) => self.encoder = encoder,
                Message::Flush(done) => waiting.push(done),
                Message::Shutdown(done) => {
                    waiting.push(done);
                    stop = true;
                }
            }
        }
        batches.extend(self.shared.drain());
        // Each batch holds at most the batch size (or MAX_BATCH_BYTES, give or take a span):
        // put together as many as stay within both.
        let limit = self.shared.settings.max_export_batch_size;
        let mut call: Vec<Batch> = Vec::new();
        let (mut spans, mut bytes) = (0, 0);
        for batch in batches {
            let size = batch.bytes();
            if !call.is_empty() && (spans + batch.spans > limit || bytes + size > MAX_BATCH_BYTES) {
                self.send(std::mem::take(&mut call));
                (spans, bytes) = (0, 0);
            }
            spans += batch.spans;
            bytes += size;
            call.push(batch);
        }
        if !call.is_empty() {
            self.send(call);
        }
        for done in waiting {
            let _ = done.send(());
        }
        stop
    }

    /// One export call carrying `batches`.
    fn send(&self, batches: Vec<Batch>) {
        let spans: usize = batches.iter().map(|batch| batch.spans).sum();
        // These spans have left the queue, whatever becomes of them.
        let _ = self
            .shared
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(spans))
            });
        let body = self.encoder.assemble(batches.iter().flat_map(|batch| {
            batch
                .scopes
                .iter()
                .map(|scope| (&scope.scope, scope.entries.as_slice()))
        }));
        drop(batches);
        // Failures are counted and logged by the exporter; the next batch goes on.
        let _ = self.exporter.export(body, spans);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> BatchSettings {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        BatchSettings::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn defaults_and_overrides_follow_the_sdk_variables() {
        assert_eq!(
            settings(&[]),
            BatchSettings {
                schedule_delay: Duration::from_secs(5),
                max_queue_size: 32_768,
                max_export_batch_size: 512,
                export_timeout: Duration::from_secs(30),
            }
        );
        let set = settings(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
        ]);
        assert_eq!(set.export_timeout, Duration::from_secs(2));
        assert_eq!(set.schedule_delay, Duration::from_millis(250));
        assert_eq!(set.max_queue_size, 100);
        assert_eq!(set.max_export_batch_size, 100, "never more than the queue");
        let bad = settings(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ]);
        assert_eq!(bad, settings(&[]));
    }
}
