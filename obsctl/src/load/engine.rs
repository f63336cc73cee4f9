//! The request loop. A dispatcher turns the schedule into due requests at their due times (open
//! model), workers (one per in-flight slot, each owning a keep-alive connection) send them and
//! emit one [`Sample`] each. In the closed model the workers send back to back instead.
//!
//! The dispatcher runs on its own OS thread so that due times are kept with the precision of a
//! thread sleep rather than the runtime's 1 ms timer wheel; a request's latency is counted from
//! its due time whatever delayed it (see [`Sample::latency`]).

use super::client::{ClientError, Connection, Connector, Outgoing, SendError};
use super::mix::Mix;
use super::request::{Built, RequestFactory};
use super::sample::{ErrorKind, Outcome, Sample};
use super::schedule::Schedule;
use super::sink::{self, Batch};
use crate::report::Segment;
use crossbeam_utils::CachePadded;
use futures::task::AtomicWaker;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::Sleep;

/// Longest a dispatcher sleep lasts before it looks at the stop flag again.
const STOP_POLL: Duration = Duration::from_millis(20);

/// A request that has become due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Due {
    /// Position in the schedule (or in the closed loop's order): picks the request kind.
    pub slot: u64,
    /// When it is due.
    pub scheduled: Instant,
}

/// Tells every part of a run to stop early, and remembers when it was told.
#[derive(Debug)]
pub(crate) struct StopSignal {
    flag: AtomicBool,
    at: OnceLock<Instant>,
    /// One handle per worker, told on a stop.
    workers: Mutex<Vec<Arc<StopHandle>>>,
}

impl StopSignal {
    pub fn new() -> Self {
        Self {
            flag: AtomicBool::new(false),
            at: OnceLock::new(),
            workers: Mutex::new(Vec::new()),
        }
    }

    pub fn stop(&self) {
        let _ = self.at.set(Instant::now());
        self.flag.store(true, Ordering::SeqCst);
        // A poisoned list still holds every handle: a panicking worker cannot corrupt a Vec push.
        let workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        for handle in workers.iter() {
            handle.set();
        }
    }

    pub fn stopped_at(&self) -> Option<Instant> {
        self.at.get().copied()
    }

    fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// A new worker's handle: already set when the stop came first.
    fn register(&self) -> Arc<StopHandle> {
        let handle = Arc::new(StopHandle::default());
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock `stop` takes after setting the flag: either it sees this handle or
        // this sees the flag.
        if self.flag.load(Ordering::SeqCst) {
            handle.set();
        }
        workers.push(Arc::clone(&handle));
        handle
    }
}

/// One worker's view of the stop: a flag and the waker of the request waiting on it. Waiting
/// touches only memory this worker owns; a shared `watch` or `Notify` takes a lock shared by
/// every worker on each poll, that is several times per request.
#[derive(Debug, Default)]
struct StopHandle {
    stopped: AtomicBool,
    waker: AtomicWaker,
}

impl StopHandle {
    fn set(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Resolves once the run is stopped.
    fn stopped(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.stopped.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A stop between the first load and the registration woke no one: look again.
            if self.stopped.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub factory: RequestFactory,
    /// The next send sequence number (= trace id suffix); its final value is `seq_count`.
    /// On a cache line of its own: every request of every thread increments it, and the
    /// read-only fields beside it would otherwise be evicted from the other cores each time.
    pub next_seq: CachePadded<AtomicU64>,
    pub mix: Mix,
    /// Opens connections to the target (plain, or TLS for https).
    pub connector: Connector,
    pub timeout: Duration,
    pub stop: Arc<StopSignal>,
    /// The shard of the plan sent (`--segment`), if not all of it.
    pub segment: Option<Segment>,
}

impl Shared {
    /// The sequence number of this process's `local`-th request: `local` itself, or its number
    /// among every shard's.
    fn seq(&self, local: u64) -> u64 {
        self.segment.map_or(local, |s| s.seq(local))
    }
}

/// Feeds due requests into `queue` at their due times. After a stop it still enqueues the
/// requests that were already due (workers count them as not started), then returns.
pub(crate) fn dispatch(
    schedule: Schedule,
    start: Instant,
    queue: async_channel::Sender<Due>,
    stop: &StopSignal,
    segment: Option<Segment>,
) {
    let mine = schedule.filter(|(slot, _)| segment.is_none_or(|s| s.owns(*slot)));
    for (slot, offset) in mine {
        let scheduled = start + offset;
        if !wait_until(scheduled, stop) {
            break;
        }
        if queue.send_blocking(Due { slot, scheduled }).is_err() {
            break;
        }
    }
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
    let sink = sink::thread_sink(samples);
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
    next_slot: Arc<CachePadded<AtomicU64>>,
    end: Instant,
    samples: mpsc::UnboundedSender<Batch>,
) {
    let mut worker = Worker::new(shared);
    let sink = sink::thread_sink(samples);
    loop {
        let now = Instant::now();
        if now >= end || worker.shared.stop.is_stopped() {
            break;
        }
        let due = Due {
            slot: worker.shared.seq(next_slot.fetch_add(1, Ordering::Relaxed)),
            scheduled: now,
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
    stop: Arc<StopHandle>,
    /// The response deadline, re-armed per request: one timer for the worker's life rather
    /// than one registered and dropped per request.
    timer: Pin<Box<Sleep>>,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Self {
        let stop = shared.stop.register();
        Self {
            shared,
            connection: None,
            rng: SmallRng::from_rng(&mut rand::rng()),
            stop,
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        }
    }

    /// Sends the request due at `due` (unless it is too late or the run stopped) and reports it.
    async fn execute(&mut self, due: Due) -> Sample {
        let index = self.shared.mix.pick(due.slot);
        // A request may wait up to one timeout for a free slot, then up to one timeout for its
        // response once sent.
        let start_by = due.scheduled + self.shared.timeout;
        let mut sample = Sample {
            request: index,
            path: None,
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
        // Sequence numbers count requests in send order: contiguous from 0, or for shard I of N
        // every N-th from I - 1, so that shards of one run never share a trace id.
        let seq = self
            .shared
            .seq(self.shared.next_seq.fetch_add(1, Ordering::Relaxed));
        let Built { request, path } = self.shared.factory.build(index, seq, &mut self.rng);
        sample.path = path;
        let Some(request) = request else {
            sample.sent = Some(sample.end);
            sample.outcome.error = Some(ErrorKind::Io);
            return sample;
        };
        // Building took a fraction of a microsecond: the clock is not read again for it.
        let sent = sample.end;
        sample.sent = Some(sent);
        sample.outcome = self.send(request, sent, index).await;
        sample.end = Instant::now();
        sample
    }

    /// Sends `request`, handed over at `sent`, within the run's timeout.
    async fn send(&mut self, request: Outgoing, sent: Instant, index: usize) -> Outcome {
        let Self {
            connection,
            shared,
            stop,
            timer,
            ..
        } = self;
        timer.as_mut().reset((sent + shared.timeout).into());
        let result = tokio::select! {
            biased;
            r = exchange(connection, &shared.connector, &request, sent) => Ok(r),
            () = timer.as_mut() => Err(ErrorKind::Timeout),
            () = stop.stopped() => Err(ErrorKind::Cancelled),
        };
        let status = match result {
            Ok(Ok(status)) => status,
            // A refused TLS handshake is a failure to connect, as a refused TCP connect is.
            Ok(Err(ClientError::Connect { .. } | ClientError::Tls { .. })) => {
                return self.failed(ErrorKind::Connect);
            }
            Ok(Err(ClientError::Http(_) | ClientError::Unsent)) => {
                return self.failed(ErrorKind::Io);
            }
            // After a timeout or a stop the connection's state is unknown.
            Err(kind) => return self.failed(kind),
        };
        let spec = self.shared.factory.spec(index);
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
}

/// Sends one request on `slot`'s connection, opening one first if needed. A request that a
/// keep-alive connection closed by the server never received is sent once more on a fresh
/// connection (an idempotent one also when the server closed without answering, as browsers
/// do: the close raced the request).
async fn exchange(
    slot: &mut Option<Connection>,
    connector: &Connector,
    request: &Outgoing,
    now: Instant,
) -> Result<u16, ClientError> {
    for _attempt in 0..2 {
        let connection = match slot.take() {
            Some(open) if open.is_open(now) => open,
            _ => connector.open().await?,
        };
        let connection = slot.insert(connection);
        match connection.send(request, now).await {
            Ok(status) => return Ok(status),
            Err(SendError::Unsent) => *slot = None,
            Err(SendError::NoAnswer) if request.idempotent => *slot = None,
            Err(SendError::NoAnswer) => {
                return Err(ClientError::Http(
                    "the server closed the connection without answering".to_owned(),
                ));
            }
            Err(SendError::Failed(e)) => return Err(e),
        }
    }
    Err(ClientError::Unsent)
}
