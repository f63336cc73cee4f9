//! The request loop. A dispatcher turns the schedule into due requests at their due times (open
//! model), workers (one per in-flight slot, each owning a keep-alive connection) send them and
//! emit one [`Sample`] each. In the closed model the workers send back to back instead.
//!
//! The dispatcher runs on its own OS thread so that due times are kept with the precision of a
//! thread sleep rather than the runtime's 1 ms timer wheel; a request's latency is counted from
//! its due time whatever delayed it (see [`Sample::latency`]).

use super::client::{ClientError, Connection};
use super::mix::Mix;
use super::sample::{ErrorKind, Outcome, Sample};
use super::schedule::Schedule;
use super::sink::{Batch, SampleSink};
use super::tagging::{RUN_ID_HEADER, RunId};
use crate::scenario::{RenderContext, RequestSpec, Target};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Longest a dispatcher sleep lasts before it looks at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(20);

/// A request that has become due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Due {
    pub seq: u64,
    pub scheduled: Instant,
}

/// Tells every part of a run to stop early, and remembers when it was told.
#[derive(Debug)]
pub(crate) struct StopSignal {
    flag: AtomicBool,
    at: OnceLock<Instant>,
    watch: watch::Sender<bool>,
}

impl StopSignal {
    pub fn new() -> Self {
        Self {
            flag: AtomicBool::new(false),
            at: OnceLock::new(),
            watch: watch::Sender::new(false),
        }
    }

    pub fn stop(&self) {
        let _ = self.at.set(Instant::now());
        self.flag.store(true, Ordering::SeqCst);
        self.watch.send_replace(true);
    }

    pub fn stopped_at(&self) -> Option<Instant> {
        self.at.get().copied()
    }

    fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.watch.subscribe()
    }
}

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub specs: Vec<RequestSpec>,
    pub mix: Mix,
    pub target: Target,
    pub addr: SocketAddr,
    pub authority: String,
    pub run_id: RunId,
    pub run_id_text: String,
    pub timeout: Duration,
    pub stop: Arc<StopSignal>,
}

/// Feeds due requests into `queue` at their due times; returns how many sequence numbers it
/// assigned. After a stop it still enqueues the requests that were already due (workers count
/// them as not started), then returns.
pub(crate) fn dispatch(
    schedule: Schedule,
    start: Instant,
    queue: async_channel::Sender<Due>,
    stop: &StopSignal,
) -> u64 {
    let mut assigned = 0;
    for (seq, offset) in schedule {
        let scheduled = start + offset;
        if !wait_until(scheduled, stop) {
            break;
        }
        if queue.send_blocking(Due { seq, scheduled }).is_err() {
            break;
        }
        assigned = seq + 1;
    }
    assigned
}

/// Sleeps until `due`; false when a stop came first and `due` is still in the future.
fn wait_until(due: Instant, stop: &StopSignal) -> bool {
    // Bounded: each pass sleeps up to STOP_POLL and the target instant is fixed.
    loop {
        let now = Instant::now();
        if now >= due {
            return true;
        }
        if stop.is_stopped() {
            return false;
        }
        std::thread::sleep((due - now).min(STOP_POLL));
    }
}

/// An open-model worker: takes due requests until the queue closes.
pub(crate) async fn open_worker(
    shared: Arc<Shared>,
    queue: async_channel::Receiver<Due>,
    samples: mpsc::UnboundedSender<Batch>,
) {
    let mut worker = Worker::new(shared);
    let mut sink = SampleSink::new(samples);
    while let Ok(due) = queue.recv().await {
        let sample = worker.execute(due).await;
        if !sink.push(sample, queue.is_empty()) {
            break;
        }
    }
}

/// A closed-loop worker: sends back to back until `end` or a stop.
pub(crate) async fn closed_worker(
    shared: Arc<Shared>,
    next_seq: Arc<AtomicU64>,
    end: Instant,
    samples: mpsc::UnboundedSender<Batch>,
) {
    let mut worker = Worker::new(shared);
    let mut sink = SampleSink::new(samples);
    while Instant::now() < end && !worker.shared.stop.is_stopped() {
        let seq = next_seq.fetch_add(1, Ordering::Relaxed);
        let due = Due {
            seq,
            scheduled: Instant::now(),
        };
        let sample = worker.execute(due).await;
        if !sink.push(sample, false) {
            break;
        }
    }
}

/// One in-flight slot: a connection, a random source and the stop signal.
struct Worker {
    shared: Arc<Shared>,
    connection: Option<Connection>,
    rng: SmallRng,
    stop: watch::Receiver<bool>,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Self {
        let stop = shared.stop.subscribe();
        Self {
            shared,
            connection: None,
            rng: SmallRng::from_rng(&mut rand::rng()),
            stop,
        }
    }

    /// Sends the request due at `due` (unless it is too late or the run stopped) and reports it.
    async fn execute(&mut self, due: Due) -> Sample {
        let index = self.shared.mix.pick(due.seq);
        let (request, path) = self.build(index, due.seq);
        // A request may wait up to one timeout for a free slot, then up to one timeout for its
        // response once sent.
        let start_by = due.scheduled + self.shared.timeout;
        let mut sample = Sample {
            seq: due.seq,
            request: index,
            path,
            scheduled: due.scheduled,
            sent: None,
            end: Instant::now(),
            outcome: Outcome {
                status: None,
                error: Some(ErrorKind::NotStarted),
            },
        };
        if sample.end >= start_by || self.shared.stop.is_stopped() {
            return sample;
        }
        let Some(request) = request else {
            sample.sent = Some(sample.end);
            sample.outcome.error = Some(ErrorKind::Io);
            return sample;
        };
        let sent = Instant::now();
        sample.sent = Some(sent);
        sample.outcome = self.send(request, sent + self.shared.timeout, index).await;
        sample.end = Instant::now();
        sample
    }

    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        deadline: Instant,
        index: usize,
    ) -> Outcome {
        let mut stop = self.stop.clone();
        let exchange = exchange(&mut self.connection, self.shared.addr, request);
        let result = tokio::select! {
            r = tokio::time::timeout_at(deadline.into(), exchange) => r.map_err(|_| ErrorKind::Timeout),
            _ = stop.wait_for(|stopped| *stopped) => Err(ErrorKind::Cancelled),
        };
        let status = match result {
            Ok(Ok(status)) => status,
            Ok(Err(ClientError::Connect { .. })) => return self.failed(ErrorKind::Connect),
            Ok(Err(ClientError::Http(_))) => return self.failed(ErrorKind::Io),
            // After a timeout or a stop the connection's state is unknown.
            Err(kind) => return self.failed(kind),
        };
        let spec = self.shared.specs.get(index);
        let accepted = spec.is_some_and(|s| s.expect.accepts(status));
        Outcome {
            status: Some(status),
            error: (!accepted).then_some(ErrorKind::UnexpectedStatus),
        }
    }

    /// Drops the connection (its state is unknown after an error) and reports `kind`.
    fn failed(&mut self, kind: ErrorKind) -> Outcome {
        self.connection = None;
        Outcome {
            status: None,
            error: Some(kind),
        }
    }

    /// The request for sequence number `seq` (None if the rendered template is not a valid
    /// request, which scenario validation makes unlikely), and its path without query.
    fn build(&mut self, index: usize, seq: u64) -> (Option<Request<Full<Bytes>>>, String) {
        let shared = Arc::clone(&self.shared);
        let Some(spec) = shared.specs.get(index) else {
            return (None, String::new());
        };
        let ctx = RenderContext {
            seq,
            run_id: &shared.run_id_text,
        };
        let rendered = spec.path.render(ctx, &mut self.rng);
        let path = rendered.split('?').next().unwrap_or("").to_owned();
        let mut builder = Request::builder()
            .method(spec.method.clone())
            .uri(shared.target.request_target(&rendered))
            .header(HOST, shared.authority.as_str())
            .header("traceparent", shared.run_id.traceparent(seq))
            .header(RUN_ID_HEADER, shared.run_id_text.as_str());
        let body = match &spec.body {
            Some(template) => {
                builder = builder.header(CONTENT_TYPE, spec.content_type.as_str());
                Bytes::from(template.render(ctx, &mut self.rng))
            }
            None => Bytes::new(),
        };
        (builder.body(Full::new(body)).ok(), path)
    }
}

/// Sends one request on `slot`'s connection, opening one first if needed.
async fn exchange(
    slot: &mut Option<Connection>,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<u16, ClientError> {
    let connection = match slot.take() {
        Some(open) if open.is_open() => open,
        _ => Connection::open(addr).await?,
    };
    let connection = slot.insert(connection);
    Ok(connection.send(request).await?.as_u16())
}
