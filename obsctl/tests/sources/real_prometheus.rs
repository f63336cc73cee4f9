//! The Prometheus adapter against a real Prometheus (Debian's `prometheus` package), started by
//! `PrometheusServer` and scraping a tiny local /metrics server every second. Skips with a
//! message when the binary is absent, and fails instead when `CI` is set.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use obsctl::sources::prometheus::{Prometheus, PrometheusError, TargetHealth, Targets};
use obsctl::sources::prometheus_server::{
    PrometheusServer, PrometheusServerConfig, PrometheusServerError, ScrapeJob, find_binary,
};

use crate::helpers::{FakeServer, Reply, bounded, client, refused_url};

const METRICS: &str = r#"# HELP fastapi_requests_total Total HTTP requests
# TYPE fastapi_requests_total counter
fastapi_requests_total{method="GET",path="/api/users/{user_id}",status_code="200"} 42
# TYPE hard_cases gauge
hard_cases{v="a,b=c}{d"} 1
hard_cases{v="quote\"back\\slash"} 2
hard_cases{v="new\nline",w="",} 3
hard_cases 4 1700000000000
"#;

/// The prometheus binary, or `None` after printing why the test is skipped (panics under CI).
fn prometheus_binary() -> Option<PathBuf> {
    let found = find_binary().or_else(|| {
        let debian = PathBuf::from("/usr/bin/prometheus");
        debian.is_file().then_some(debian)
    });
    if found.is_none() {
        let message = "no `prometheus` binary on the PATH (install Debian's package: apt-get install -y prometheus)";
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}; CI is set, so this is a failure"
        );
        eprintln!("SKIPPED real Prometheus test: {message}");
    }
    found
}

fn job(name: &str, target: String) -> ScrapeJob {
    ScrapeJob {
        job_name: name.into(),
        targets: vec![target],
        metrics_path: "/metrics".into(),
        bearer_token: None,
        tls: None,
    }
}

fn config(binary: PathBuf, jobs: Vec<ScrapeJob>) -> PrometheusServerConfig {
    PrometheusServerConfig {
        binary,
        scrape_interval: Duration::from_secs(1),
        jobs,
        ready_timeout: Duration::from_secs(15),
    }
}

/// Poll `probe` every 100 ms until it returns `Some`, at most `limit`.
async fn poll<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(value) = probe().await {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The targets once every one of them has been scraped at least once.
async fn scraped_targets(prom: &Prometheus) -> Option<Targets> {
    let targets = prom.targets().await.ok()?;
    let all_scraped = !targets.active.is_empty()
        && targets
            .active
            .iter()
            .all(|t| t.health != TargetHealth::Unknown);
    all_scraped.then_some(targets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_and_answers_queries() {
    let Some(binary) = prometheus_binary() else {
        return;
    };
    bounded(async {
        let metrics = FakeServer::start(|_| {
            Reply::with(200, "text/plain; version=0.0.4; charset=utf-8", METRICS)
        })
        .await;
        let dead = refused_url().await.trim_start_matches("http://").to_owned();
        let jobs = vec![
            job("fastapi-backend", metrics.addr.to_string()),
            job("broken", dead),
        ];
        let server = PrometheusServer::start(&config(binary, jobs))
            .await
            .expect("prometheus starts");
        let prom = Prometheus::new(client(), server.url());

        let query = r#"fastapi_requests_total{path="/api/users/{user_id}"}"#;
        let result = poll(Duration::from_secs(15), || async {
            prom.query(query, None)
                .await
                .ok()
                .filter(|r| !r.data.is_empty())
        })
        .await
        .unwrap_or_else(|| panic!("no sample for {query}:\n{}", server.log_tail()));
        let sample = &result.data.samples()[0];
        assert_eq!(sample.value, 42.0);
        assert_eq!(sample.labels["path"], "/api/users/{user_id}");
        assert_eq!(sample.labels["job"], "fastapi-backend");

        let targets = poll(Duration::from_secs(15), || scraped_targets(&prom))
            .await
            .unwrap_or_else(|| panic!("targets never all scraped:\n{}", server.log_tail()));
        let backend = targets
            .active
            .iter()
            .find(|t| t.scrape_pool == "fastapi-backend")
            .expect("backend target");
        assert_eq!(backend.health, TargetHealth::Up, "{backend:?}");
        assert!(backend.last_error.is_empty());
        let broken = targets
            .active
            .iter()
            .find(|t| t.scrape_pool == "broken")
            .expect("broken target");
        assert_eq!(broken.health, TargetHealth::Down);
        assert!(
            broken.last_error.contains("refused"),
            "{}",
            broken.last_error
        );

        assert_same_series_as_our_parser(&prom).await;

        let err = prom.query("sum(", None).await.expect_err("parse error");
        assert!(
            matches!(&err, PrometheusError::Api { error_type, .. } if error_type == "bad_data"),
            "{err:?}"
        );
        server.stop(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test]
async fn a_binary_that_is_missing_or_exits_is_a_typed_error() {
    bounded(async {
        let missing =
            PrometheusServer::start(&config(PathBuf::from("/nonexistent/prometheus"), vec![]))
                .await;
        assert!(
            matches!(missing, Err(PrometheusServerError::Spawn { .. })),
            "{missing:?}"
        );
        let exits = PrometheusServer::start(&config(PathBuf::from("/bin/false"), vec![])).await;
        assert!(
            matches!(exits, Err(PrometheusServerError::Exited { .. })),
            "{exits:?}"
        );
    })
    .await;
}

/// Prometheus's own parser and ours read the hard label values identically.
async fn assert_same_series_as_our_parser(prom: &Prometheus) {
    let ours: Vec<(String, f64)> = obsctl::sources::exposition::parse(METRICS)
        .expect("our parser accepts the body")
        .family("hard_cases")
        .expect("family")
        .samples
        .iter()
        .filter(|s| s.timestamp_ms.is_none())
        .map(|s| (format!("{:?}", s.labels), s.value))
        .collect();
    let result = poll(Duration::from_secs(10), || async {
        let r = prom
            .query(r#"hard_cases{job="fastapi-backend"}"#, None)
            .await
            .ok()?;
        (r.data.samples().len() >= ours.len()).then_some(r)
    })
    .await
    .expect("Prometheus scraped the hard cases");
    let mut theirs: Vec<(String, f64)> = result
        .data
        .samples()
        .iter()
        .map(|s| {
            let mut labels = s.labels.clone();
            for k in ["__name__", "job", "instance"] {
                labels.remove(k);
            }
            (format!("{labels:?}"), s.value)
        })
        .collect();
    theirs.sort_by(|a, b| a.1.total_cmp(&b.1));
    // Prometheus drops empty label values (`w=""`) and keeps the timestamped sample apart.
    let ours: Vec<(String, f64)> = ours
        .into_iter()
        .map(|(l, v)| (l.replace(", \"w\": \"\"", ""), v))
        .collect();
    assert_eq!(theirs, ours);
}
