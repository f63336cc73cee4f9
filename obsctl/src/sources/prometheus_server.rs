//! A real Prometheus started by obsctl (for `obsctl verify` and tests): the `prometheus` binary
//! from the PATH, run in a temporary directory with a generated config scraping the given
//! targets at a short interval, listening on a free loopback port, with exemplar storage on.
//! It is killed when dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::process::Group;

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
    /// `host:port` of each instance to scrape (one job, several replicas).
    pub targets: Vec<String>,
    /// The metrics path, usually `/metrics`.
    pub metrics_path: String,
    /// Bearer token the target requires on its metrics path, if any.
    pub bearer_token: Option<String>,
    /// Scrape over HTTPS with these settings (`None`: plain HTTP).
    pub tls: Option<ScrapeTls>,
}

/// How Prometheus checks an HTTPS target (its `tls_config`); paths must be absolute, since
/// Prometheus runs in its own directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrapeTls {
    /// CA certificates to verify the target with (Prometheus then trusts only these).
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    pub cert_file: Option<PathBuf>,
    /// Its key.
    pub key_file: Option<PathBuf>,
    /// Do not verify the target's certificate.
    pub insecure_skip_verify: bool,
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
    /// The process, in its own group under a watchdog (killed on drop, and when obsctl dies).
    child: Group,
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
    pub async fn stop(self, grace: Duration) {
        self.child.stop(grace).await;
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
            if let Some(status) = self.child.try_exit() {
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
) -> Result<Group, PrometheusServerError> {
    let log =
        std::fs::File::create(dir.join("prometheus.log")).map_err(PrometheusServerError::Setup)?;
    let log_err = log.try_clone().map_err(PrometheusServerError::Setup)?;
    let mut command = Command::new(&config.binary);
    command
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Keeps the exemplars of OpenMetrics scrapes (its default Accept prefers OpenMetrics,
        // from 2.x on; `scrape_protocols` is left out: Prometheus before 2.49 rejects it).
        .arg("--enable-feature=exemplar-storage")
        .current_dir(dir)
        .stdout(log)
        .stderr(log_err);
    Group::spawn(command, "prometheus").map_err(|error| PrometheusServerError::Spawn {
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
            job.targets
                .iter()
                .map(|t| yaml_string(t))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        if let Some(token) = &job.bearer_token {
            yaml.push_str(&format!(
                "    authorization:\n      type: Bearer\n      credentials: {}\n",
                yaml_string(token)
            ));
        }
        if let Some(tls) = &job.tls {
            yaml.push_str(&tls_yaml(tls));
        }
    }
    yaml
}

/// `scheme: https` and the job's `tls_config`.
fn tls_yaml(tls: &ScrapeTls) -> String {
    let mut yaml = format!(
        "    scheme: https\n    tls_config:\n      insecure_skip_verify: {}\n",
        tls.insecure_skip_verify
    );
    for (key, path) in [
        ("ca_file", &tls.ca_file),
        ("cert_file", &tls.cert_file),
        ("key_file", &tls.key_file),
    ] {
        if let Some(path) = path {
            let path = yaml_string(&path.display().to_string());
            yaml.push_str(&format!("      {key}: {path}\n"));
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
                targets: vec!["127.0.0.1:8000".into()],
                metrics_path: "/metrics".into(),
                bearer_token: Some("s3cret".into()),
                tls: Some(ScrapeTls {
                    ca_file: Some(PathBuf::from("/ci/ca.pem")),
                    ..ScrapeTls::default()
                }),
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
        assert!(
            yaml.contains("scheme: https\n    tls_config:\n      insecure_skip_verify: false\n      ca_file: \"/ci/ca.pem\"\n"),
            "{yaml}"
        );
    }
}
