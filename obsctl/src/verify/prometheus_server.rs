//! A real Prometheus started for one verification: the binary from the PATH, a temporary
//! directory for config and data, a free loopback port and a 1 s scrape of the target.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::VerifyError;
use super::process::Group;
use crate::sources::http::HttpClient;
use crate::sources::logs::{LogCapture, LogLimits};
use crate::sources::prometheus::Prometheus;

/// A running Prometheus, stopped and its directory removed on drop.
pub struct LocalPrometheus {
    group: Group,
    /// Base URL of its HTTP API.
    pub url: String,
    /// Its stderr (Prometheus logs there), for diagnosis when it fails to start.
    log: LogCapture,
    _dir: tempfile::TempDir,
}

/// The `prometheus` binary on the PATH, if any.
pub fn find_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The scrape configuration: the target every second, as job `fastapi-backend`.
pub fn config(target: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: fastapi-backend\n    scrape_interval: 1s\n    \
         scrape_timeout: 1s\n    metrics_path: /metrics\n    static_configs:\n      \
         - targets: ['{target}']\n"
    )
}

impl LocalPrometheus {
    /// Starts `binary` scraping `target` (`host:port`) and waits until it is ready.
    pub async fn start(
        binary: &Path,
        target: &str,
        listen: SocketAddr,
        client: &HttpClient,
        timeout: Duration,
    ) -> Result<Self, VerifyError> {
        let dir = tempfile::tempdir()
            .map_err(|e| VerifyError::Prometheus(format!("temporary directory: {e}")))?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config(target))
            .map_err(|e| VerifyError::Prometheus(format!("cannot write its config: {e}")))?;
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--log.level=warn")
            .current_dir(dir.path());
        let mut group = Group::spawn(command, format!("{} on {listen}", binary.display()))
            .map_err(|e| {
                VerifyError::Prometheus(format!("cannot start {}: {e}", binary.display()))
            })?;
        // Prometheus logs on stderr; keep it for the error message, discard stdout.
        let log = match group.take_stderr() {
            Some(stderr) => LogCapture::start(stderr, LogLimits::default(), "prometheus stderr"),
            None => LogCapture::start(
                tokio::io::empty(),
                LogLimits::default(),
                "prometheus stderr",
            ),
        };
        drop(group.take_stdout());
        let url = format!("http://{listen}");
        let api = Prometheus::new(client.clone(), url.clone());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if api.ready().await.is_ok() {
                break;
            }
            if let Some(status) = group.try_exit() {
                return Err(VerifyError::Prometheus(format!(
                    "it exited with {status}: {}",
                    tail(&log)
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(VerifyError::Prometheus(format!(
                    "not ready within {timeout:?}: {}",
                    tail(&log)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            group,
            url,
            log,
            _dir: dir,
        })
    }

    /// Stops it (SIGTERM, then SIGKILL after a second).
    pub async fn stop(self) {
        self.group.stop(Duration::from_secs(2)).await;
        drop(self.log);
    }
}

fn tail(log: &LogCapture) -> String {
    let lines = log.buffer.lines();
    let start = lines.len().saturating_sub(3);
    lines[start..]
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}
