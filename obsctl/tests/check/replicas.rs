//! `accounting-prometheus` against a real Prometheus scraping two replicas as one job: exact
//! through Prometheus alone when it scrapes both (each replica saw part of the run), failing
//! with the missing increments when one replica is left out of the scrape config, and naming a
//! replica whose counter went down (restarted) during the run.

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
    // Both replicas scraped before the run starts.
    let scraped = async {
        for _ in 0..150 {
            let answer = prometheus.query("count(up == 1)", None).await.ok();
            let up = answer.and_then(|a| a.data.first_value()).unwrap_or(0.0);
            if up >= if scrape_b { 2.0 } else { 1.0 } {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(
        scraped.await,
        "replicas never scraped:\n{}",
        server.log_tail()
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
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
