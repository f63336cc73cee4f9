//! Hands samples from the workers to the collector in batches, so that a fast run does not pay
//! one cross-thread wake-up per request. The workers of one thread share one batch (a batch
//! per worker woke the collector for each of dozens of small batches). A batch leaves when it
//! is full, when it is old enough for the live display, when a worker has nothing else to do,
//! and when the thread's workers are done.

use super::sample::Sample;
use std::cell::RefCell;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Samples per batch at most.
const MAX_BATCH: usize = 1024;
/// Longest a sample waits in a batch while its worker is busy.
const MAX_AGE: Duration = Duration::from_millis(50);

/// A batch of samples, in completion order.
pub(crate) type Batch = Vec<Sample>;

/// One worker's outgoing batch.
#[derive(Debug)]
pub(crate) struct SampleSink {
    tx: mpsc::UnboundedSender<Batch>,
    buffer: Batch,
    last_flush: Instant,
}

impl SampleSink {
    pub fn new(tx: mpsc::UnboundedSender<Batch>) -> Self {
        Self {
            tx,
            buffer: Vec::new(),
            last_flush: Instant::now(),
        }
    }

    /// Adds a sample; `idle` says the worker has no request waiting, so the batch leaves now.
    /// The sample's end stands for the current time (it was just taken). False when the
    /// collector is gone.
    pub fn push(&mut self, sample: Sample, idle: bool) -> bool {
        let now = sample.end;
        self.buffer.push(sample);
        if idle
            || self.buffer.len() >= MAX_BATCH
            || now.saturating_duration_since(self.last_flush) >= MAX_AGE
        {
            return self.flush_at(now);
        }
        true
    }

    /// Sends the pending batch, if any. False when the collector is gone.
    fn flush_at(&mut self, now: Instant) -> bool {
        self.last_flush = now;
        if self.buffer.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.buffer, Vec::with_capacity(MAX_BATCH));
        self.tx.send(batch).is_ok()
    }
}

thread_local! {
    /// The batch of this thread's workers: they run on its single-threaded runtime and never
    /// hold it across an await.
    static THREAD_BATCH: RefCell<Option<SampleSink>> = const { RefCell::new(None) };
}

/// The worker's handle on its thread's shared batch, made on first use with `samples`.
pub(crate) fn thread_sink(samples: mpsc::UnboundedSender<Batch>) -> ThreadSink {
    THREAD_BATCH.with_borrow_mut(|sink| {
        sink.get_or_insert_with(|| SampleSink::new(samples));
    });
    ThreadSink
}

/// Sends what this thread's workers still hold; called once they are all done.
pub(crate) fn flush_thread() {
    // Dropping the sink flushes it.
    let _ = THREAD_BATCH.try_with(|sink| sink.borrow_mut().take());
}

/// A worker's access to the batch of the thread it runs on (a worker never leaves its
/// thread's single-threaded runtime).
pub(crate) struct ThreadSink;

impl ThreadSink {
    /// See [`SampleSink::push`].
    pub fn push(&self, sample: Sample, idle: bool) -> bool {
        THREAD_BATCH.with_borrow_mut(|sink| sink.as_mut().is_some_and(|s| s.push(sample, idle)))
    }
}

impl Drop for SampleSink {
    fn drop(&mut self) {
        self.flush_at(Instant::now());
    }
}
