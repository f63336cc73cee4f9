//! Everything a check may look at: the sources the user gave, the run report, and a shared
//! deadline for waiting on ingestion lag. Sources are adapters; checks never speak HTTP.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::check::exemplars::OpenMetricsAnswer;
use crate::report::RunReport;
use crate::sources::auth::Endpoint;
use crate::sources::exposition::Exposition;
use crate::sources::grafana::Grafana;
use crate::sources::http::{HttpClient, SourceError};
use crate::sources::logs::{LogBuffer, LogLine, Seen};
use crate::sources::loki::Loki;
use crate::sources::otlp::OtlpReceiver;
use crate::sources::prometheus::Prometheus;
use crate::sources::span_store::{SpanSnapshot, SpanStore};
use crate::sources::target::{MetricsEndpoint, MetricsScrape};
use crate::sources::tempo::Tempo;
use crate::sources::window::TimeWindow;
use crate::tls::TlsConfig;

/// Pause between two rounds of fresh scrapes ([`CheckContext::fresh_scrapes`]).
const PROBE_SPACING: Duration = Duration::from_millis(20);

/// Fresh scrapes sent at once in each round: while one worker of a shared socket renders its
/// answer, the next connections are accepted by the others. One at a time, the worker that
/// answered first kept winning the accept race (uvicorn --workers 2: in 1 run of 12, all 18
/// scrapes reached the same worker).
const PROBES_AT_ONCE: usize = 4;

/// How often polling checks ask again while waiting for ingestion.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long the span export must stay quiet before the spans are judged.
const QUIET: Duration = Duration::from_millis(400);

/// The families whose absence on a first scrape means "no request observed yet".
const REQUEST_FAMILIES: [&str; 3] = [
    "fastapi_requests_total",
    "fastapi_requests",
    "fastapi_request_duration_seconds",
];

/// Backend log lines and where they came from.
#[derive(Debug, Clone)]
pub struct LogInput {
    /// The lines read so far (a capture keeps filling it).
    pub buffer: LogBuffer,
    /// Where they came from, for messages: "stdout of `backend`", "app.log", "stdin".
    pub origin: String,
    /// The process's stderr when obsctl spawned it, to diagnose logs written to the wrong stream.
    pub stderr: Option<LogBuffer>,
}

/// The Grafana stack's stores to check, as the user named them, each with its credentials.
#[derive(Debug, Clone, Default)]
pub struct StackUrls {
    /// Loki (its tenant, if multi-tenant).
    pub loki: Option<Endpoint>,
    /// Tempo (its tenant, if multi-tenant).
    pub tempo: Option<Endpoint>,
    /// Grafana (a user or a service-account token).
    pub grafana: Option<Endpoint>,
    /// A dashboard file whose panel queries are evaluated.
    pub dashboard: Option<PathBuf>,
    /// TLS for every https:// source (and `obsctl verify`'s https:// target).
    pub tls: TlsConfig,
}

/// The inputs of one check run.
pub struct CheckContext {
    /// Service name expected in logs (`service`) and traces (`service.name`).
    pub service: String,
    /// Base URL of the service under test.
    pub target: Option<String>,
    /// The target's `/metrics`.
    pub metrics: Option<MetricsEndpoint>,
    /// A Prometheus server that should scrape the target.
    pub prometheus: Option<Prometheus>,
    /// A Loki server that should hold the service's logs.
    pub loki: Option<Loki>,
    /// A Tempo server that should hold the service's traces.
    pub tempo: Option<Tempo>,
    /// A Grafana that should be up with the three datasources and the 8-panel dashboard.
    pub grafana: Option<crate::sources::grafana::Grafana>,
    /// A dashboard JSON file whose every panel query should return data.
    pub dashboard: Option<std::path::PathBuf>,
    /// Backend log lines.
    pub logs: Option<LogInput>,
    /// obsctl's own OTLP receiver, when the service exports to it.
    pub otlp: Option<Arc<OtlpReceiver>>,
    /// The traffic that was sent, to account for.
    pub run: Option<RunReport>,
    /// `/metrics` as scraped before the run, for exact counter deltas.
    pub baseline: Option<Exposition>,
    /// The target serves only this run (obsctl spawned it): observations beyond the run's
    /// requests are failures, not other clients' traffic.
    pub exclusive: bool,
    /// Prometheus must scrape the target at its own address (obsctl configured it): a target
    /// found only by its series is not accepted.
    pub exact_prometheus_target: bool,
    /// Polling for ingestion (scrapes, batch export, log shipping) stops here; every check is
    /// cut off at this deadline plus a fixed grace ([`super::CHECK_GRACE`]).
    pub deadline: Instant,
    /// The wait the deadline was set from (`--timeout`), for messages.
    pub wait: Duration,
    scrape: OnceCell<Result<MetricsScrape, ScrapeFailure>>,
    /// `/metrics` as Prometheus asks for it (OpenMetrics first), reduced to what the checks read.
    openmetrics: OnceCell<Result<OpenMetricsAnswer, ScrapeFailure>>,
    /// The log lines as judged: one snapshot per evaluation, so every check counts the same.
    log_snapshot: OnceCell<Vec<LogLine>>,
    /// The spans as judged: one snapshot per evaluation.
    span_snapshot: OnceCell<SpanSnapshot>,
    /// Tempo's verdict, asked once and shared by the checks Tempo proves.
    pub tempo_verdict: OnceCell<crate::check::model::Outcome>,
}

/// Why `/metrics` gave nothing to check.
#[derive(Debug, Clone)]
pub struct ScrapeFailure {
    /// What went wrong, as one sentence.
    pub message: String,
    /// True when the service answered (with an error status): the item then fails, rather than
    /// the source erroring.
    pub answered: bool,
}

impl CheckContext {
    /// A context with no sources; fill the public fields that apply.
    pub fn new(service: impl Into<String>, wait: Duration) -> Self {
        Self {
            service: service.into(),
            target: None,
            metrics: None,
            prometheus: None,
            loki: None,
            tempo: None,
            grafana: None,
            dashboard: None,
            logs: None,
            otlp: None,
            run: None,
            baseline: None,
            exclusive: false,
            exact_prometheus_target: false,
            deadline: Instant::now() + wait,
            wait,
            scrape: OnceCell::new(),
            openmetrics: OnceCell::new(),
            log_snapshot: OnceCell::new(),
            span_snapshot: OnceCell::new(),
            tempo_verdict: OnceCell::new(),
        }
    }

    /// Adds the stack's stores: Loki, Tempo, Grafana (each asked with its own credentials over
    /// `client`'s connections and TLS) and the dashboard file.
    pub fn add_stack(&mut self, client: &HttpClient, stack: &StackUrls) {
        let with = |e: &Endpoint| client.with_credentials(&e.credentials);
        let base = |e: &Endpoint| e.url.trim_end_matches('/').to_owned();
        self.loki = stack.loki.as_ref().map(|e| Loki::new(with(e), base(e)));
        self.tempo = stack.tempo.as_ref().map(|e| Tempo::new(with(e), base(e)));
        // Grafana's adapter sends the Authorization itself, to tell "refused" from "required".
        self.grafana = stack
            .grafana
            .as_ref()
            .map(|e| Grafana::new(with(e), base(e)).with_auth(e.credentials.auth.clone()));
        self.dashboard = stack.dashboard.clone();
    }

    /// Restarts the ingestion deadline: `wait` from now.
    pub fn restart_deadline(&mut self, wait: Duration) {
        self.deadline = Instant::now() + wait;
        self.wait = wait;
    }

    /// The target's `/metrics`, scraped once and shared by every metrics check.
    /// `None` when no target was given; `Some(Err(..))` when the scrape failed.
    ///
    /// A service that has answered no request yet may not show its request metrics at all (the
    /// Rust `prometheus` crate omits a labelled family until its first observation): when the
    /// first scrape lacks both, the scrape itself was a request, and a second one is taken.
    pub async fn scrape(&self) -> Option<&Result<MetricsScrape, ScrapeFailure>> {
        let endpoint = self.metrics.as_ref()?;
        Some(
            self.scrape
                .get_or_init(|| async {
                    let first = Self::scrape_once(endpoint).await;
                    let unobserved = first.as_ref().is_ok_and(|s| {
                        s.parsed.as_ref().is_ok_and(|p| {
                            REQUEST_FAMILIES.iter().all(|name| p.family(name).is_none())
                        })
                    });
                    if unobserved {
                        // Not two bodies at once: the first is dropped before the second arrives.
                        drop(first);
                        Self::scrape_once(endpoint).await
                    } else {
                        first
                    }
                })
                .await,
        )
    }

    /// The target's `/metrics` asked for as Prometheus asks (OpenMetrics preferred), once and
    /// shared, reduced to what the checks read; [`OpenMetricsAnswer::format`] says what the
    /// service chose. Taken after the shared scrape, so two large bodies are never parsed at
    /// once. `None` without a target.
    pub async fn openmetrics(&self) -> Option<&Result<OpenMetricsAnswer, ScrapeFailure>> {
        let endpoint = self.metrics.as_ref()?;
        Some(
            self.openmetrics
                .get_or_init(|| async {
                    // A /metrics that could not be read at all (unreachable, a body over the
                    // read limit) is not read a second time: the same failure stands. A refusal
                    // of the text format's Accept header says nothing of OpenMetrics's.
                    if let Some(Err(failure)) = self.scrape().await
                        && !failure.answered
                    {
                        return Err(failure.clone());
                    }
                    match endpoint.scrape_openmetrics().await {
                        Ok(negotiated) => Ok(OpenMetricsAnswer::of(negotiated)),
                        Err(e) => Err(ScrapeFailure {
                            message: e.to_string(),
                            answered: matches!(e, SourceError::Status(_)),
                        }),
                    }
                })
                .await,
        )
    }

    /// Fresh scrapes of the target's `/metrics` (not the shared one), each over a new
    /// connection, a few at once per round, for checks that compare scrapes: behind one port,
    /// several worker processes each get a turn. Scrapes that fail are left out; each is
    /// reduced to what `keep` takes from it, so at most one round's bodies are held at a time.
    /// Within a round, scrapes are listed in the order they were sent, not answered.
    pub async fn fresh_scrapes<T>(
        &self,
        count: usize,
        keep: impl Fn(&MetricsScrape) -> T,
    ) -> Vec<T> {
        let Some(endpoint) = self.metrics.as_ref() else {
            return Vec::new();
        };
        let Ok(endpoint) = endpoint.one_connection_per_scrape() else {
            return Vec::new();
        };
        let mut scrapes = Vec::with_capacity(count);
        let mut left = count;
        while left > 0 {
            if left < count {
                // Lets every worker of a shared socket wait on it again.
                tokio::time::sleep(PROBE_SPACING).await;
            }
            let round = left.min(PROBES_AT_ONCE);
            left -= round;
            let answers =
                futures::future::join_all((0..round).map(|_| Self::scrape_once(&endpoint))).await;
            scrapes.extend(answers.iter().flatten().map(&keep));
        }
        scrapes
    }

    async fn scrape_once(endpoint: &MetricsEndpoint) -> Result<MetricsScrape, ScrapeFailure> {
        endpoint.scrape().await.map_err(|e| ScrapeFailure {
            message: e.to_string(),
            answered: matches!(e, SourceError::Status(_)),
        })
    }

    /// The log lines every log check judges: taken once, after waiting (until the deadline at
    /// most) for the run's request lines, or for one request line when there is no run.
    /// `None` when no log source was given.
    pub async fn log_lines(&self) -> Option<&[LogLine]> {
        let input = self.logs.as_ref()?;
        let lines = self
            .log_snapshot
            .get_or_init(|| async {
                let expected = self.run.as_ref().map(crate::check::accounting::answered);
                let prefix = self.run.as_ref().map(|r| r.trace_id_prefix.clone());
                let settled = |lines: &[LogLine]| {
                    let requests = lines.iter().filter(|l| l.is_request_line());
                    match (expected, &prefix) {
                        (Some(expected), Some(prefix)) => {
                            let (tagged, all) = requests.fold((0u64, 0u64), |(t, a), l| {
                                let ours = l
                                    .str_field("trace_id")
                                    .is_some_and(|t| t.starts_with(prefix.as_str()));
                                (t + u64::from(ours), a + 1)
                            });
                            tagged >= expected || (tagged == 0 && all >= expected)
                        }
                        _ => requests.count() > 0,
                    }
                };
                // Past what the buffer keeps, the run's lines counted on arrival tell.
                let counted = |seen: &Seen<'_>| {
                    expected
                        .zip(seen.run_request_lines)
                        .is_some_and(|(expected, counted)| counted >= expected)
                        || settled(seen.lines)
                };
                input.buffer.wait_until(counted, self.remaining()).await
            })
            .await;
        Some(lines)
    }

    /// The spans every trace check judges: frozen once, after waiting (until the deadline at
    /// most) for a span in each of the run's traces, or for one SERVER span of the service when
    /// there is no run, and then for the export to go quiet. `None` without a receiver.
    pub async fn spans(&self) -> Option<&SpanSnapshot> {
        let receiver = self.otlp.as_ref()?;
        let spans = self
            .span_snapshot
            .get_or_init(|| async {
                let expected = self.run.as_ref().map(crate::check::accounting::answered);
                // The receiver links the spans of the run's traces per trace (verify asked it
                // before the run; a receiver that kept records catches up from them).
                let followed = self
                    .run
                    .as_ref()
                    .is_some_and(|r| receiver.follow_run(&r.trace_id_prefix));
                let service = self.service.as_str();
                let settled = |store: &SpanStore| match expected {
                    Some(expected) if followed => store.run_trace_count() >= expected,
                    _ => store.has_server_span_of(service),
                };
                receiver.wait_until(settled, self.remaining()).await;
                // Children and late batches: wait until nothing new arrives for a moment.
                loop {
                    let before = receiver.received_spans();
                    let quiet = QUIET.min(self.remaining());
                    if quiet.is_zero() {
                        break;
                    }
                    if !receiver
                        .wait_until(|s| s.received_spans() > before, quiet)
                        .await
                    {
                        break;
                    }
                }
                receiver.snapshot()
            })
            .await;
        Some(spans)
    }

    /// Time left until the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The run's window widened by a margin for clock skew and ingestion timestamps, or the
    /// last 15 minutes when no run report was given.
    pub fn window(&self) -> TimeWindow {
        let margin = Duration::from_secs(30);
        self.run.as_ref().and_then(run_window).map_or_else(
            || TimeWindow::last(Duration::from_secs(15 * 60)),
            |w| w.widened(margin),
        )
    }

    /// Calls `probe` until it returns `Some` or the deadline passes; the last `None` stands.
    pub async fn poll<T, F, Fut>(&self, mut probe: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        loop {
            if let Some(found) = probe().await {
                return Some(found);
            }
            if Instant::now() + POLL_INTERVAL > self.deadline {
                return None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// The window a run report states, if its timestamps parse.
pub fn run_window(run: &RunReport) -> Option<TimeWindow> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let parse = |s: &str| {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(std::time::SystemTime::from)
    };
    Some(TimeWindow::new(
        parse(&run.window_start)?,
        parse(&run.window_end)?,
    ))
}
