//! The Prometheus adapter against a real Prometheus (Debian's `prometheus` package) scraping a
//! tiny local /metrics server every second. Skips with a message when the binary is absent,
//! and fails instead when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use obsctl::sources::prometheus::{Prometheus, PrometheusError, TargetHealth, Targets};

use crate::helpers::{FakeServer, Reply, bounded, client, refused_url};

const METRICS: &str = r#"# HELP fastapi_requests_total Total HTTP requests
# TYPE fastapi_requests_total counter
fastapi_requests_total{method="GET",path="/api/users/{user_id}",status_code="200"} 42
"#;

/// A Prometheus child process in a temporary directory; killed on drop.
struct PrometheusProcess {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl PrometheusProcess {
    fn start(binary: &Path, scrape_targets: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml(scrape_targets)).expect("write config");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_yaml(scrape_targets: &[(&str, String)]) -> String {
    let mut yaml = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, address) in scrape_targets {
        yaml.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{address}']\n"
        ));
    }
    yaml
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The prometheus binary, or `None` after printing why the test is skipped (panics under CI).
fn prometheus_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("prometheus")).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = std::iter::once(PathBuf::from("/usr/bin/prometheus"))
        .chain(candidates)
        .find(|p| p.is_file());
    if found.is_none() {
        let message = "no `prometheus` binary (install Debian's package: apt-get install -y prometheus)";
        assert!(std::env::var_os("CI").is_none(), "{message}; CI is set, so this is a failure");
        eprintln!("SKIPPED real Prometheus test: {message}");
    }
    found
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
        && targets.active.iter().all(|t| t.health != TargetHealth::Unknown);
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
        let process = PrometheusProcess::start(
            &binary,
            &[("fastapi-backend", metrics.addr.to_string()), ("broken", dead)],
        );
        let prom = Prometheus::new(client(), process.url.clone());

        let ready = poll(Duration::from_secs(15), || async { prom.ready().await.ok() }).await;
        assert!(ready.is_some(), "Prometheus never became ready:\n{}", process.log());

        let query = r#"fastapi_requests_total{path="/api/users/{user_id}"}"#;
        let result = poll(Duration::from_secs(15), || async {
            prom.query(query, None).await.ok().filter(|r| !r.data.is_empty())
        })
        .await
        .unwrap_or_else(|| panic!("no sample for {query}:\n{}", process.log()));
        let sample = &result.data.samples()[0];
        assert_eq!(sample.value, 42.0);
        assert_eq!(sample.labels["path"], "/api/users/{user_id}");
        assert_eq!(sample.labels["job"], "fastapi-backend");

        let targets = poll(Duration::from_secs(15), || scraped_targets(&prom))
            .await
            .unwrap_or_else(|| panic!("targets never all scraped:\n{}", process.log()));
        let backend = targets.active.iter().find(|t| t.scrape_pool == "fastapi-backend").expect("backend target");
        assert_eq!(backend.health, TargetHealth::Up, "{backend:?}");
        assert!(backend.last_error.is_empty());
        let broken = targets.active.iter().find(|t| t.scrape_pool == "broken").expect("broken target");
        assert_eq!(broken.health, TargetHealth::Down);
        assert!(broken.last_error.contains("refused"), "{}", broken.last_error);

        let err = prom.query("sum(", None).await.expect_err("parse error");
        assert!(matches!(&err, PrometheusError::Api { error_type, .. } if error_type == "bad_data"), "{err:?}");
    })
    .await;
}
