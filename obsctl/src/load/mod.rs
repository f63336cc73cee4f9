//! The load engine: replays a scenario against a target in the open model (requests due on a
//! schedule, latency from the due time) or a closed loop (`--rps max`), and returns a
//! [`RunReport`].
//!
//! Modules, one concern each: [`config`] (validated settings), [`schedule`] (pure due-time
//! arithmetic), [`mix`] (which request kind a schedule slot sends), [`tagging`] (run id and
//! trace context), `request` (building requests), [`client`] (HTTP/1.1 keep-alive),
//! `engine` (dispatcher and workers), [`sample`] (one request's record and its latency),
//! `sink` (batching samples to the collector), [`stats`] (HDR histograms and counts),
//! [`timeline`] (the run second by second), [`progress`] (the live display), `finish` (the
//! report).
//!
//! Library use (this is what `obsctl load` does):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use obsctl::load::{self, LoadConfig, Overrides};
//! use obsctl::scenario::Scenario;
//!
//! let scenario = Scenario::from_file("scenarios/smoke.toml".as_ref())?;
//! let overrides = Overrides {
//!     target: Some("http://127.0.0.1:8000".into()),
//!     ..Overrides::default()
//! };
//! let mut config = LoadConfig::new(scenario, overrides)?;
//! config.progress = false;
//! let report = load::run(config, std::future::pending()).await?;
//! println!("{} sent, run {}", report.requests_sent, report.run_id);
//! # Ok(())
//! # }
//! ```

mod abort;
pub mod client;
pub mod config;
mod engine;
mod finish;
pub mod http1;
pub mod mix;
pub mod progress;
mod request;
pub mod sample;
pub mod schedule;
mod sink;
pub mod stats;
pub mod tagging;
pub mod timeline;

pub use config::{ConfigError, LoadConfig, Overrides, Plan, Rate};
pub use sample::{ErrorKind, Sample};
pub use tagging::{RUN_ID_HEADER, RunId};

use crate::report::RunReport;
use client::{ClientError, Connector};
use crossbeam_utils::CachePadded;
use engine::{Due, Shared, StopSignal};
use mix::Mix;
use progress::Progress;
use request::RequestFactory;
use schedule::Schedule;
use sink::Batch;
use stats::Aggregator;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// How often the progress display refreshes.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Why a run could not start. Once traffic flows, failures are counted in the report instead.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target's host name did not resolve.
    #[error("cannot resolve {host}:{port}: {error}")]
    Resolve {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The resolver's error.
        error: std::io::Error,
    },
    /// The TLS settings could not be turned into a client configuration.
    #[error(transparent)]
    TlsConfig(#[from] crate::tls::TlsError),
    /// The target's host is not a name a certificate can carry.
    #[error("{host} cannot be checked against a TLS certificate: {reason}")]
    ServerName {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The https target refused the TLS handshake before any request was sent (certificate
    /// not trusted, client certificate required, not TLS at all, ...).
    #[error("TLS with {target} failed: {detail}")]
    Tls {
        /// The target.
        target: String,
        /// What rustls found, and which flag fixes it.
        detail: String,
    },
    /// A worker thread or its runtime could not be started.
    #[error("cannot start the load threads: {0}")]
    Runtime(std::io::Error),
    /// The dispatcher thread or the collector task failed.
    #[error("an internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs `config` until its plan ends or `shutdown` completes (then in-flight requests are
/// cancelled, due requests counted as not started, and the partial report returned with
/// `interrupted: true`).
pub async fn run(
    config: LoadConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunReport, LoadError> {
    let addr = resolve(&config).await?;
    let connector = connector(&config, addr)?;
    preflight(&config, &connector).await?;
    let stop = Arc::new(StopSignal::new());
    let shared = Arc::new(shared(&config, connector, Arc::clone(&stop)));
    let watcher = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            shutdown.await;
            stop.stop();
        })
    };
    let (samples_tx, samples_rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let wall_start = SystemTime::now();
    let traffic = spawn_traffic(&config, &shared, start, samples_tx)?;
    let progress = Progress::new(config.progress, &config.plan, config.segment, start);
    // The collector runs as a task so that batches are handed over between runtime threads
    // rather than to the thread blocked in `block_on`.
    let templates = (0..config.scenario.requests.len())
        .map(|index| shared.factory.template_path(index))
        .collect();
    let aggregator = Aggregator::new(templates, start, config.timeout);
    let abort = abort::AbortWatch::new(&config).map(|watch| (watch, Arc::clone(&stop)));
    let collector = collect(samples_rx, aggregator, progress, abort);
    let (aggregator, times) = tokio::spawn(collector).await?;
    if let Some(handle) = traffic.dispatcher {
        handle.await?;
    }
    // The workers have ended (their sample senders closed the collector's channel).
    let threads = traffic.threads;
    tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await?;
    watcher.abort();
    let run = finish::Run {
        config: &config,
        aggregator,
        start,
        wall_start,
        last_sent: times.last_sent,
        last_end: times.last_end,
        stopped_at: stop.stopped_at(),
        aborted: times.aborted,
        seq_count: shared.next_seq.load(std::sync::atomic::Ordering::Relaxed),
    };
    Ok(run.report())
}

async fn resolve(config: &LoadConfig) -> Result<SocketAddr, LoadError> {
    let (host, port) = (config.target.host(), config.target.port());
    let error = |error| LoadError::Resolve {
        host: host.to_owned(),
        port,
        error,
    };
    let mut addrs = tokio::net::lookup_host((host, port)).await.map_err(error)?;
    addrs.next().ok_or_else(|| {
        error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        ))
    })
}

/// How workers connect: plain TCP for http, TLS for https (the TLS settings built once).
fn connector(config: &LoadConfig, addr: SocketAddr) -> Result<Connector, LoadError> {
    if !config.target.is_https() {
        return Ok(Connector::plain(addr));
    }
    let host = config.target.host();
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
        LoadError::ServerName {
            host: host.to_owned(),
            reason: e.to_string(),
        }
    })?;
    Ok(Connector::tls(addr, config.tls.client_config()?, name))
}

/// Longest wait, after an https target's handshake, for it to refuse the client certificate.
const PREFLIGHT_VERDICT: Duration = Duration::from_millis(200);

/// For https: one TLS handshake before the run, so that a certificate problem is said once,
/// clearly, rather than counted as a connect error per request.
async fn preflight(config: &LoadConfig, connector: &Connector) -> Result<(), LoadError> {
    let bound = config.timeout + PREFLIGHT_VERDICT;
    let check = connector.preflight(PREFLIGHT_VERDICT.min(config.timeout));
    match tokio::time::timeout(bound, check).await {
        Ok(Err(ClientError::Tls { detail, .. })) => Err(LoadError::Tls {
            target: config.target.to_string(),
            detail,
        }),
        _ => Ok(()),
    }
}

fn shared(config: &LoadConfig, connector: Connector, stop: Arc<StopSignal>) -> Shared {
    Shared {
        factory: RequestFactory::new(config),
        next_seq: CachePadded::new(AtomicU64::new(0)),
        mix: Mix::new(&config.scenario.requests),
        connector,
        timeout: config.timeout,
        stop,
        segment: config.segment,
    }
}

/// The threads that send a run's traffic.
struct Traffic {
    /// The open model's dispatcher.
    dispatcher: Option<tokio::task::JoinHandle<()>>,
    /// The worker threads, each with its own single-threaded runtime.
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Worker threads for `in_flight` slots: `threads` when given, else half the cores. Each runs
/// one event loop, as wrk's threads do, owning its connections on a single-threaded runtime,
/// so a response wakes the worker waiting for it on the same thread: no work stealing, no
/// cross-thread wake-up per request. Half the cores: a target on the same machine (the usual
/// case in CI) keeps the rest, and an event loop with more connections blocks less often (on 2
/// cores, one loop sent as much as two with a third less CPU per request: BENCHMARKS.md).
fn worker_threads(in_flight: usize, threads: Option<NonZeroUsize>) -> usize {
    let threads = threads.map_or_else(
        || (std::thread::available_parallelism().map_or(1, usize::from) / 2).max(1),
        usize::from,
    );
    threads.min(in_flight).max(1)
}

/// Starts `slots` workers made by `worker` on `threads` threads (slots spread evenly).
fn spawn_workers<F, Fut>(
    slots: usize,
    threads: usize,
    worker: F,
) -> Result<Vec<std::thread::JoinHandle<()>>, LoadError>
where
    F: Fn() -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut handles = Vec::with_capacity(threads);
    for thread in 0..threads {
        let count = slots / threads + usize::from(thread < slots % threads);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LoadError::Runtime)?;
        let worker = worker.clone();
        let handle = std::thread::Builder::new()
            .name(format!("obsctl-load-{thread}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..count {
                        set.spawn(worker());
                    }
                    while set.join_next().await.is_some() {}
                });
                sink::flush_thread();
            })
            .map_err(LoadError::Runtime)?;
        handles.push(handle);
    }
    Ok(handles)
}

/// Starts the worker threads (and, in the open model, the dispatcher).
fn spawn_traffic(
    config: &LoadConfig,
    shared: &Arc<Shared>,
    start: Instant,
    samples: mpsc::UnboundedSender<Batch>,
) -> Result<Traffic, LoadError> {
    let slots = config.max_in_flight;
    let threads = worker_threads(slots, config.threads);
    match &config.plan {
        Plan::Open { start_rate, stages } => {
            let (queue_tx, queue_rx) = async_channel::bounded::<Due>(slots);
            let shared_for_workers = Arc::clone(shared);
            let worker = move || {
                engine::open_worker(
                    Arc::clone(&shared_for_workers),
                    queue_rx.clone(),
                    samples.clone(),
                )
            };
            let threads = spawn_workers(slots, threads, worker)?;
            let schedule = Schedule::new(*start_rate, stages);
            let (stop, segment) = (Arc::clone(&shared.stop), config.segment);
            let dispatcher = tokio::task::spawn_blocking(move || {
                engine::dispatch(schedule, start, queue_tx, &stop, segment)
            });
            Ok(Traffic {
                dispatcher: Some(dispatcher),
                threads,
            })
        }
        Plan::Closed { duration } => {
            let next_slot = Arc::new(CachePadded::new(AtomicU64::new(0)));
            let (shared, end) = (Arc::clone(shared), start + *duration);
            let worker = move || {
                engine::closed_worker(
                    Arc::clone(&shared),
                    Arc::clone(&next_slot),
                    end,
                    samples.clone(),
                )
            };
            Ok(Traffic {
                dispatcher: None,
                threads: spawn_workers(slots, threads, worker)?,
            })
        }
    }
}

/// When the last request was sent and the last one ended, and why the run was aborted.
#[derive(Debug, Default)]
struct Times {
    last_sent: Option<Instant>,
    last_end: Option<Instant>,
    aborted: Option<String>,
}

/// Consumes samples until every worker has finished, refreshing the progress display and, with
/// `abort_on_fail`, stopping the run once a threshold can no longer hold.
async fn collect(
    mut batches: mpsc::UnboundedReceiver<Batch>,
    mut aggregator: Aggregator,
    mut progress: Progress,
    abort: Option<(abort::AbortWatch, Arc<StopSignal>)>,
) -> (Aggregator, Times) {
    let mut times = Times::default();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    // Bounded: the workers end with the plan plus two timeouts (slot, response), then the
    // channel closes.
    loop {
        tokio::select! {
            batch = batches.recv() => {
                let Some(batch) = batch else { break };
                for sample in batch {
                    times.last_sent = times.last_sent.max(sample.sent);
                    times.last_end = times.last_end.max(Some(sample.end));
                    progress.record(&sample);
                    aggregator.record(sample);
                }
            }
            _ = tick.tick() => {
                progress.update(Instant::now());
                if let Some((watch, stop)) = &abort
                    && times.aborted.is_none()
                    && let Some(reason) = watch.lost(&aggregator)
                {
                    times.aborted = Some(reason);
                    stop.stop();
                }
            }
        }
    }
    progress.finish();
    (aggregator, times)
}

#[cfg(test)]
mod tests {
    use super::worker_threads;
    use std::num::NonZeroUsize;

    #[test]
    fn threads_are_as_asked_but_never_more_than_the_slots() {
        let four = NonZeroUsize::new(4);
        assert_eq!(worker_threads(64, four), 4);
        assert_eq!(worker_threads(2, four), 2);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(worker_threads(1024, None), (cores / 2).max(1));
        assert_eq!(worker_threads(1, None), 1);
    }
}
