//! A real Prometheus started by obsctl (for `obsctl verify` and tests): the `prometheus` binary
//! from the PATH, run in a temporary directory with a generated config scraping the given
//! targets at a short interval, listening on a free loopback port. It is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::http::HttpClient;
use super::prometheus::Prometheus;

/// Why a Prometheus could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusServerError {
    /// The temporary directory, config or log file could not be written.
    #[error("cannot prepare Prometheus's working directory: {0}")]
    Setup(std::io::Error),
    /// The binary could not be executed.
    #[error("cannot run {binary}: {error}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The process exited before becoming ready.
    #[error("Prometheus exited during startup ({status}); its output:\n{log}")]
    Exited {
        /// The exit status.
        status: String,
        /// The end of its output.
        log: String,
    },
    /// `/-/ready` did not answer 200 in time.
    #[error("Prometheus was not ready within {timeout:?}; its output:\n{log}")]
    NotReady {
        /// The time waited.
        timeout: Duration,
        /// The end of its output.
        log: String,
    },
}

/// One scrape job of the generated config.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    /// The job name (the `job` label).
    pub job_name: String,
    /// `host:port` to scrape.
    pub target: String,
    /// The metrics path, usually `/metrics`.
    pub metrics_path: String,
    /// Bearer token the target requires on its metrics path, if any.
    pub bearer_token: Option<String>,
}

/// How to start Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusServerConfig {
    /// The `prometheus` binary.
    pub binary: PathBuf,
    /// Scrape (and evaluation) interval; also the scrape timeout.
    pub scrape_interval: Duration,
    /// The jobs to scrape.
    pub jobs: Vec<ScrapeJob>,
    /// How long to wait for `/-/ready`.
    pub ready_timeout: Duration,
}

/// A running Prometheus; killed on drop.
#[derive(Debug)]
pub struct PrometheusServer {
    /// The process (spawned with kill-on-drop).
    child: Child,
    /// The working directory (config, TSDB, log); removed on drop, after the process is killed.
    dir: tempfile::TempDir,
    url: String,
}

/// The `prometheus` binary on the PATH, if any.
pub fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

impl PrometheusServer {
    /// Start Prometheus and wait until it is ready.
    pub async fn start(config: &PrometheusServerConfig) -> Result<Self, PrometheusServerError> {
        let dir = tempfile::Builder::new()
            .prefix("obsctl-prometheus-")
            .tempdir()
            .map_err(PrometheusServerError::Setup)?;
        let port = free_port().map_err(PrometheusServerError::Setup)?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config_yaml(config)).map_err(PrometheusServerError::Setup)?;
        let child = spawn(config, dir.path(), &config_path, port)?;
        let mut server = Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready(config.ready_timeout).await?;
        Ok(server)
    }

    /// The base URL of its HTTP API, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The end of its combined stdout and stderr, for diagnostics.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }

    /// Kill the process and wait (at most `grace`) for it to exit.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(grace, self.child.wait()).await;
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), PrometheusServerError> {
        let client = HttpClient::new(super::http::HttpOptions {
            timeout: Duration::from_secs(1),
            ..Default::default()
        })
        .map_err(|e| PrometheusServerError::Setup(std::io::Error::other(e.to_string())))?;
        let api = Prometheus::new(client, self.url.clone());
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(PrometheusServerError::Exited {
                    status: status.to_string(),
                    log: self.log_tail(),
                });
            }
            if api.ready().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(PrometheusServerError::NotReady {
            timeout,
            log: self.log_tail(),
        })
    }
}

fn spawn(
    config: &PrometheusServerConfig,
    dir: &Path,
    config_path: &Path,
    port: u16,
) -> Result<Child, PrometheusServerError> {
    let log =
        std::fs::File::create(dir.join("prometheus.log")).map_err(PrometheusServerError::Setup)?;
    let log_err = log.try_clone().map_err(PrometheusServerError::Setup)?;
    Command::new(&config.binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| PrometheusServerError::Spawn {
            binary: config.binary.clone(),
            error,
        })
}

/// The generated `prometheus.yml`.
pub fn config_yaml(config: &PrometheusServerConfig) -> String {
    let interval = format!("{}ms", config.scrape_interval.as_millis().max(1));
    let mut yaml = format!(
        "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\nscrape_configs:\n"
    );
    for job in &config.jobs {
        yaml.push_str(&format!(
            "  - job_name: {}\n    metrics_path: {}\n    static_configs:\n      - targets: [{}]\n",
            yaml_string(&job.job_name),
            yaml_string(&job.metrics_path),
            yaml_string(&job.target),
        ));
        if let Some(token) = &job.bearer_token {
            yaml.push_str(&format!(
                "    authorization:\n      type: Bearer\n      credentials: {}\n",
                yaml_string(token)
            ));
        }
    }
    yaml
}

/// A double-quoted YAML string.
fn yaml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A loopback port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_quotes_values_and_uses_one_interval() {
        let yaml = config_yaml(&PrometheusServerConfig {
            binary: PathBuf::from("prometheus"),
            scrape_interval: Duration::from_secs(1),
            jobs: vec![ScrapeJob {
                job_name: "fastapi-backend".into(),
                target: "127.0.0.1:8000".into(),
                metrics_path: "/metrics".into(),
                bearer_token: Some("s3cret".into()),
            }],
            ready_timeout: Duration::from_secs(1),
        });
        assert!(yaml.contains("scrape_interval: 1000ms"));
        assert!(yaml.contains("scrape_timeout: 1000ms"));
        assert!(yaml.contains("job_name: \"fastapi-backend\""));
        assert!(
            yaml.contains("type: Bearer\n      credentials: \"s3cret\""),
            "{yaml}"
        );
        assert!(yaml.contains("targets: [\"127.0.0.1:8000\"]"));
    }
}
