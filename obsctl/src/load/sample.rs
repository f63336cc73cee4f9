//! One request's record, produced by a worker and consumed by the statistics and the progress
//! display. Latency is defined here, once.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a request is an error: the report owns the vocabulary it serializes.
pub use crate::report::ErrorKind;

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index of the request in the scenario's mix.
    pub request: usize,
    /// The concrete path sent, without query, when it is not the request's constant path:
    /// `None` for a constant path and for a request that never started, so that the common
    /// case shares no reference count between the worker and the collector threads.
    pub path: Option<Arc<str>>,
    /// When the request was due (open model) or sent (closed model).
    pub scheduled: Instant,
    /// When it was handed to a connection; `None` when it never started.
    pub sent: Option<Instant>,
    /// When the response was complete, or the request failed.
    pub end: Instant,
    /// Status and/or error.
    pub outcome: Outcome,
}

impl Sample {
    /// Latency as a user would see it: from the time the request was DUE to the end of the
    /// response. Time spent waiting for the in-flight cap or a late dispatch is included, so a
    /// stalled server cannot hide its stall (no coordinated omission).
    pub fn latency(&self) -> Duration {
        self.end.saturating_duration_since(self.scheduled)
    }
}

/// The result of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The response status, when a response arrived.
    pub status: Option<u16>,
    /// Why the request counts as an error, if it does.
    pub error: Option<ErrorKind>,
}
