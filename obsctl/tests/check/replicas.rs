//! `accounting-prometheus` against a real Prometheus scraping two replicas as one job: exact
//! through Prometheus alone when it scrapes both (each replica saw part of the run), failing
//! with the missing increments when one replica is left out of the scrape config, and naming a
//! replica whose counter went down (restarted) during the run; and two real backend processes,
//! each sent one shard of a run, accounted for exactly through Prometheus alone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use obsctl::check::model::Status;
use obsctl::sources::prometheus::Prometheus;
use obsctl::sources::prometheus_server::{
    PrometheusServer, PrometheusServerConfig, ScrapeJob, find_binary,
};
use time::OffsetDateTime;

use crate::accounting::{SENT, run_report_between};
use crate::exposition::{Series, exposition_of};
use crate::helpers::{FakeServer, PROMETHEUS_TEXT, Reply, client, context};

/// A replica whose `/metrics` serves what [`Replica::serve`] last set.
struct Replica {
    server: FakeServer,
    body: Arc<Mutex<String>>,
}

impl Replica {
    async fn start(series: &[Series<'_>]) -> Self {
        let body = Arc::new(Mutex::new(exposition_of(series)));
        let shared = Arc::clone(&body);
        let server = FakeServer::start(move |asked| match asked.path.as_str() {
            "/metrics" => Reply::ok(
                PROMETHEUS_TEXT,
                shared.lock().map(|b| b.clone()).unwrap_or_default(),
            ),
            _ => Reply::not_found(),
        })
        .await;
        Self { server, body }
    }

    fn serve(&self, series: &[Series<'_>]) {
        if let Ok(mut body) = self.body.lock() {
            *body = exposition_of(series);
        }
    }
}

fn prometheus_binary() -> Option<std::path::PathBuf> {
    let found = find_binary().or_else(|| {
        let debian = std::path::PathBuf::from("/usr/bin/prometheus");
        debian.is_file().then_some(debian)
    });
    if found.is_none() {
        let message = "no `prometheus` binary (apt-get install -y prometheus)";
        assert!(std::env::var_os("CI").is_none(), "{message}; CI is set");
        eprintln!("SKIPPED replica accounting test: {message}");
    }
    found
}

/// A real Prometheus scraping `targets` every second as job fastapi-backend, once it has
/// scraped every one of them: each has a sample before anything the caller does next.
async fn scraping(
    binary: std::path::PathBuf,
    targets: Vec<String>,
) -> (PrometheusServer, Prometheus) {
    let count = targets.len() as f64;
    let config = PrometheusServerConfig {
        binary,
        scrape_interval: Duration::from_secs(1),
        jobs: vec![ScrapeJob {
            job_name: "fastapi-backend".to_owned(),
            targets,
            metrics_path: "/metrics".to_owned(),
            bearer_token: None,
            tls: None,
        }],
        ready_timeout: Duration::from_secs(15),
    };
    let server = PrometheusServer::start(&config)
        .await
        .expect("prometheus starts");
    let prometheus = Prometheus::new(client(), server.url());
    for _ in 0..150 {
        let answer = prometheus.query("count(up == 1)", None).await.ok();
        if answer.and_then(|a| a.data.first_value()) == Some(count) {
            return (server, prometheus);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the targets were never all scraped:\n{}", server.log_tail());
}

/// Before the run: replica A has counted 10 requests, B 3.
const A_BEFORE: &[Series<'static>] = &[("GET", "/api/users/{user_id}", 200, 10)];
const B_BEFORE: &[Series<'static>] = &[("GET", "/api/users/{user_id}", 200, 3)];
/// After: the run's 11 requests (fixture `SENT`) split between them.
const A_AFTER: &[Series<'static>] = &[
    ("GET", "/api/users/{user_id}", 200, 13),
    ("GET", "/api/users/{user_id}", 404, 2),
];
const B_AFTER: &[Series<'static>] = &[
    ("GET", "/api/users/{user_id}", 200, 5),
    ("POST", "/api/users", 201, 4),
];

/// Runs the fixture run against replicas `a` and `b` (serving `b_after` after the run), with a
/// real Prometheus scraping `scraped` of them, and returns accounting-prometheus's result.
async fn account(
    binary: std::path::PathBuf,
    scrape_b: bool,
    b_after: &[Series<'_>],
) -> (Status, String) {
    let (a, b) = (
        Replica::start(A_BEFORE).await,
        Replica::start(B_BEFORE).await,
    );
    let mut targets = vec![a.server.addr()];
    if scrape_b {
        targets.push(b.server.addr());
    }
    let (_server, prometheus) = scraping(binary, targets).await;
    let start = OffsetDateTime::now_utc();
    a.serve(A_AFTER);
    b.serve(b_after);
    let end = OffsetDateTime::now_utc() + Duration::from_millis(10);

    let mut ctx = context();
    ctx.run = Some(run_report_between(SENT, start, end));
    ctx.prometheus = Some(prometheus);
    ctx.exclusive = true;
    ctx.restart_deadline(Duration::from_secs(15));
    let outcome = obsctl::check::accounting_prometheus::prometheus(&ctx).await;
    (outcome.status, format!("{outcome:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_accounts_exactly_across_replicas_and_names_what_one_lost() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    // Three Prometheus servers, each waiting for its scrapes: bounded well above their sum.
    let all = async {
        let (status, text) = account(binary.clone(), true, B_AFTER).await;
        assert_eq!(status, Status::Pass, "{text}");
        assert!(
            text.contains(
                "every one of 11 answered requests is counted, summed over the 2 instances"
            ),
            "{text}"
        );

        // Replica B is not scraped: its 6 requests are missing, per series.
        let (status, text) = account(binary.clone(), false, B_AFTER).await;
        assert_eq!(status, Status::Fail, "{text}");
        assert!(
            text.contains("6 of 11 answered requests have no counter increment"),
            "{text}"
        );
        assert!(
            text.contains("POST /api/users 201: sent 4, seen 0"),
            "{text}"
        );

        // Replica B restarted during the run: its counter went from 3 down to 2.
        let restarted: &[Series] = &[
            ("GET", "/api/users/{user_id}", 200, 2),
            ("POST", "/api/users", 201, 4),
        ];
        let (status, text) = account(binary, true, restarted).await;
        assert_eq!(status, Status::Fail, "{text}");
        assert!(
            text.contains("1 instances restarted during the run"),
            "{text}"
        );
        assert!(text.contains("went from 3 to 2"), "{text}");
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("the replica accounting test ends within 120 s");
}

/// The plan of a run split into two shards: `GET /api/users/{id}` for seeded and unknown ids, and
/// `/health`, 120 req/s for 2 s.
const PLAN: &str = r#"
name = "replicas"
[[stages]]
duration = "2s"
rate = 120
[[requests]]
name = "get_user"
path = "/api/users/{{random:1..3}}"
weight = 3
expect = [200]
[[requests]]
name = "unknown_user"
path = "/api/users/{{random:900000000..999999999}}"
expect = [404]
[[requests]]
name = "health"
path = "/health"
"#;

/// A free loopback port (bound a moment ago, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The reference backend on `port`, telemetry off but metrics on; killed when dropped.
async fn backend(binary: &std::path::Path, port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new(binary)
        .args(["--port", &port.to_string(), "--database", ":memory:"])
        .env("OTEL_SDK_DISABLED", "true")
        .env("LOG_LEVEL", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the backend starts");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the backend never listened on {port}");
}

/// Shard `index`/2 of [`PLAN`] under run `run`, sent to `port`.
async fn shard(port: u16, index: u32, run: &str) -> obsctl::report::RunReport {
    use obsctl::load::{LoadConfig, Overrides, RunId};
    let scenario = obsctl::scenario::Scenario::parse(PLAN, std::path::Path::new("replicas.toml"))
        .expect("the plan parses");
    let overrides = Overrides {
        target: Some(format!("http://127.0.0.1:{port}")),
        segment: Some(obsctl::report::Segment { index, count: 2 }),
        run_id: RunId::parse(run),
        ..Overrides::default()
    };
    let mut config = LoadConfig::new(scenario, overrides).expect("a valid configuration");
    config.progress = false;
    obsctl::load::run(config, std::future::pending())
        .await
        .expect("the shard runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_sent_to_two_real_backends_are_accounted_exactly_through_prometheus_alone() {
    let Some(prometheus_bin) = prometheus_binary() else {
        return;
    };
    let backend_bin = std::path::Path::new(env!("CARGO_BIN_EXE_obsctl")).with_file_name("backend");
    if !backend_bin.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI builds the backend next to obsctl (cargo test --workspace)"
        );
        eprintln!("SKIPPED: no backend binary next to obsctl; run cargo test --workspace");
        return;
    }
    let all = async {
        let (port_a, port_b) = (free_port(), free_port());
        let _a = backend(&backend_bin, port_a).await;
        let _b = backend(&backend_bin, port_b).await;
        let targets = vec![format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}")];
        let (_server, prometheus) = scraping(prometheus_bin, targets).await;

        // One run in two shards, each to its own replica, merged back into one report.
        let run = "00000000000b4c7d";
        let (one, two) = tokio::join!(shard(port_a, 1, run), shard(port_b, 2, run));
        assert_eq!(one.requests_sent + two.requests_sent, 240);
        let merged = obsctl::report::merge::merge(vec![
            ("one.json".to_owned(), one),
            ("two.json".to_owned(), two),
        ])
        .expect("the shards merge");

        let mut ctx = context();
        ctx.run = Some(merged);
        ctx.prometheus = Some(prometheus);
        ctx.exclusive = true;
        ctx.restart_deadline(Duration::from_secs(15));
        let outcome = obsctl::check::accounting_prometheus::prometheus(&ctx).await;
        let text = format!("{outcome:#?}");
        assert_eq!(outcome.status, Status::Pass, "{text}");
        assert!(
            text.contains(
                "every one of 240 answered requests is counted, summed over the 2 instances"
            ),
            "{text}"
        );
    };
    tokio::time::timeout(Duration::from_secs(90), all)
        .await
        .expect("the two-backend accounting test ends within 90 s");
}
