//! The HTTP server: our own accept loop around hyper's HTTP/1 connections, serving the salvo
//! service. It owns what salvo's `Server` does not let us decide: the connection cap with a
//! reserve for scrapes and probes, idle connections closed under pressure, the time limits of a
//! connection (request head, stalled writes), accept errors that are counted instead of
//! flooding the log, requests hyper refuses counted and logged, and a shutdown that closes the
//! listener at once and drops connections that have no request in progress.

pub mod conn;
pub mod listener;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use salvo::Service;
use salvo::conn::ConnCtrl;
use salvo::conn::http1;
use salvo::http::uri::Scheme;
use salvo::rt::tokio::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::routes::observe;
use crate::telemetry::metrics::{ConnectionMetrics, HttpMetrics};
use conn::{ConnService, ConnState, GuardedStream};

/// Accept errors are logged at most this often (each is counted in a metric).
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Pause after an accept error: errors such as EMFILE repeat at once while they last.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

/// How long a connection without a request in progress gets at shutdown or eviction to finish
/// writing what hyper already holds, before it is dropped (a half-sent request head waits no
/// longer than this).
const IDLE_GRACE: Duration = Duration::from_millis(250);

/// The connection limits and time limits of the server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Most connections open at once; beyond it new connections are answered 503 and closed.
    pub max_connections: usize,
    /// Connections above `max_connections - reserve` serve only scrapes and probes.
    pub reserve: usize,
    /// Longest wait for a complete request head (and for the next one on a kept-alive
    /// connection).
    pub header_timeout: Duration,
    /// Longest a write may make no progress.
    pub write_timeout: Duration,
    /// Longest wait for in-flight requests at shutdown.
    pub drain_timeout: Duration,
}

/// What the accept loop serves with.
pub struct Server {
    /// The salvo service, shared by every connection.
    pub service: Arc<Service>,
    /// Limits.
    pub settings: ServerSettings,
    /// Connection counters.
    pub connections: ConnectionMetrics,
    /// Request metrics, for the requests hyper refuses before the service sees them.
    pub requests: HttpMetrics,
}

/// The open connections, for eviction of idle ones under pressure.
struct Tracker {
    /// Connections counted against the cap: open ones, less those evicted and closing.
    open: AtomicUsize,
    /// `backend_connections_open`, following `open`.
    gauge: IntGauge,
    next_id: AtomicU64,
    /// Open connections by age (oldest first).
    conns: Mutex<BTreeMap<u64, Tracked>>,
}

/// An open connection as the tracker sees it: its state, and how to ask it to close.
type Tracked = (Arc<ConnState>, Arc<Notify>);

impl Tracker {
    fn register(self: &Arc<Self>, state: &Arc<ConnState>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        self.gauge.inc();
        if let Ok(mut conns) = self.conns.lock() {
            conns.insert(id, (Arc::clone(state), Arc::clone(&evict)));
        }
        Registration {
            tracker: Arc::clone(self),
            id,
            evict,
        }
    }

    /// Asks the oldest connection with no request in progress to close; false if none is.
    fn evict_one_idle(&self) -> bool {
        let Ok(mut conns) = self.conns.lock() else {
            return false;
        };
        let idle = conns
            .iter()
            .find(|(_, (state, _))| !state.is_busy())
            .map(|(id, _)| *id);
        let Some((_, evict)) = idle.and_then(|id| conns.remove(&id)) else {
            return false;
        };
        // It no longer counts against the cap: it closes within the idle grace, and counting
        // it until then would shed new connections while a burst of evictions completes.
        self.open.fetch_sub(1, Ordering::AcqRel);
        evict.notify_one();
        true
    }
}

/// One open connection's place in the tracker, released on drop.
struct Registration {
    tracker: Arc<Tracker>,
    id: u64,
    evict: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tracker.gauge.dec();
        let Ok(mut conns) = self.tracker.conns.lock() else {
            return;
        };
        // An evicted connection was already taken off the count.
        if conns.remove(&self.id).is_some() {
            self.tracker.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Accept errors (EMFILE, ENFILE, ENOBUFS...) counted always, logged once in a while.
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    fn record(&mut self, error: &std::io::Error, metrics: &ConnectionMetrics) {
        metrics.accept_errors.inc();
        self.unlogged += 1;
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < ACCEPT_ERROR_LOG_INTERVAL)
        {
            return;
        }
        tracing::error!(
            error = %error,
            errors = self.unlogged,
            "Accepting connections failed (counted in backend_accept_errors_total)"
        );
        self.last_logged = Some(Instant::now());
        self.unlogged = 0;
    }
}

impl Server {
    /// Serves connections from `listener` until `shutdown` completes; then closes the listener
    /// (new connects are refused), closes connections that have no request in progress, and
    /// waits at most the drain timeout for the others.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let local_addr = listener.local_addr()?;
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.settings.header_timeout);
        let this = Arc::new(self);
        let tracker = Arc::new(Tracker {
            open: AtomicUsize::new(0),
            gauge: this.connections.open.clone(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(BTreeMap::new()),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut accept_errors = AcceptErrors {
            last_logged: None,
            unlogged: 0,
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Some(reserved) = this.admit(&tracker, &stream) else {
                            continue;
                        };
                        let state = Arc::new(ConnState::default());
                        let registration = tracker.register(&state);
                        let conn = Connection {
                            server: Arc::clone(&this),
                            http: http.clone(),
                            local_addr,
                            peer,
                            reserved,
                            stopped: stopped.clone(),
                        };
                        tasks.spawn(conn.serve(stream, state, registration));
                    }
                    Err(error) => {
                        accept_errors.record(&error, &this.connections);
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                }
            }
        }
        drop(listener);
        let _ = stop.send(true);
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(this.settings.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                connections = tasks.len(),
                "Drain timeout reached: closing connections with requests still in progress"
            );
            tasks.shutdown().await;
        }
        Ok(())
    }

    /// Decides what a new connection gets: `Some(false)` full service, `Some(true)` the reserve
    /// (scrapes and probes only), `None` shed (answered 503 and closed at once, before it holds
    /// anything). Near the cap, the oldest idle connection (keep-alive between requests, or a
    /// request head still trickling in) is closed to make room for the new one, as nginx does:
    /// connections that hold a slot without using it cannot lock clients out.
    fn admit(&self, tracker: &Tracker, stream: &TcpStream) -> Option<bool> {
        let open = tracker.open.fetch_add(1, Ordering::AcqRel) + 1;
        let evict = || {
            let evicted = tracker.evict_one_idle();
            if evicted {
                self.connections.evicted.inc();
            }
            evicted
        };
        let admission = admission(open, &self.settings, evict);
        if admission.is_none() {
            tracker.open.fetch_sub(1, Ordering::AcqRel);
            self.connections.shed.inc();
            // Best effort, never waiting: the answer fits in an empty socket buffer.
            let _ = stream.try_write(SHED_ANSWER);
        }
        admission
    }
}

/// The admission of the `open`-th open connection (itself included); `evict` closes an idle
/// connection if there is one. See [`Server::admit`].
fn admission(open: usize, settings: &ServerSettings, evict: impl FnOnce() -> bool) -> Option<bool> {
    if open <= settings.max_connections.saturating_sub(settings.reserve) {
        return Some(false);
    }
    let evicted = evict();
    // With room made, the new connection takes the evicted one's place; without (every
    // connection has a request in progress), it may only scrape or probe.
    (open <= settings.max_connections).then_some(!evicted)
}

/// The answer of a connection over the cap, written before its request is read.
const SHED_ANSWER: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
    content-length: 49\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
    {\"detail\":\"too many connections, retry shortly\"}";

/// One accepted connection, until it closes.
struct Connection {
    server: Arc<Server>,
    http: http1::Builder,
    local_addr: SocketAddr,
    peer: SocketAddr,
    reserved: bool,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(self, stream: TcpStream, state: Arc<ConnState>, registration: Registration) {
        let started = Instant::now();
        let settings = &self.server.settings;
        let requests = self.server.requests.clone();
        let on_rejected = Box::new(move |status| {
            observe::record_rejected(&requests, status, started.elapsed());
        });
        let io = TokioIo::new(GuardedStream::new(
            stream,
            Arc::clone(&state),
            settings.write_timeout,
            on_rejected,
        ));
        // salvo's per-connection handler, as its own server builds it (no fuse: hyper's
        // header timeout and our write timeout bound the connection).
        let handler = self.server.service.hyper_handler(
            self.local_addr.into(),
            self.peer.into(),
            Scheme::HTTP,
            None,
            ConnCtrl::new(),
            None,
        );
        let service = ConnService::new(handler, Arc::clone(&state), self.reserved);
        let conn = self.http.serve_connection(io, service);
        tokio::pin!(conn);
        let mut stopped = self.stopped.clone();
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = close_requested(&mut stopped, &registration.evict) => {
                conn.as_mut().graceful_shutdown();
                if state.is_busy() {
                    // The accept loop bounds this by the drain timeout.
                    conn.as_mut().await
                } else {
                    tokio::time::timeout(IDLE_GRACE, conn.as_mut()).await.unwrap_or(Ok(()))
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(error = %error, "Connection closed with an error");
        }
        drop(registration);
    }
}

/// Completes when the server stops or the tracker evicts this connection.
async fn close_requested(stopped: &mut watch::Receiver<bool>, evict: &Notify) {
    tokio::select! {
        _ = stopped.wait_for(|stop| *stop) => {}
        () = evict.notified() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_connections: usize, reserve: usize) -> ServerSettings {
        ServerSettings {
            max_connections,
            reserve,
            header_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn admission_serves_fully_then_evicts_idle_then_reserves_then_sheds() {
        let limits = settings(10, 2);
        let never = || -> bool { panic!("no eviction below the reserve") };
        assert_eq!(admission(1, &limits, never), Some(false));
        assert_eq!(admission(8, &limits, never), Some(false));
        assert_eq!(
            admission(9, &limits, || true),
            Some(false),
            "took an idle one's place"
        );
        assert_eq!(
            admission(9, &limits, || false),
            Some(true),
            "reserve: scrapes only"
        );
        assert_eq!(admission(10, &limits, || false), Some(true));
        assert_eq!(admission(11, &limits, || false), None, "shed");
        assert_eq!(
            admission(11, &limits, || true),
            None,
            "over the cap even with room coming"
        );
    }
}
