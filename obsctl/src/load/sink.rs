//! Hands samples from a worker to the collector in small batches, so that a fast run does not
//! pay one cross-thread wake-up per request. A batch leaves when it is full, when it is old
//! enough for the live display, when the worker has nothing else to do, and when the worker ends.

use super::sample::Sample;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Samples per batch at most.
const MAX_BATCH: usize = 128;
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

impl Drop for SampleSink {
    fn drop(&mut self) {
        self.flush_at(Instant::now());
    }
}
