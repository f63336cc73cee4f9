//! The service under test, started by obsctl: a shell command line with HOST, PORT and the OTLP
//! endpoint in its environment, stdout and stderr captured, stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use super::VerifyError;
use crate::process::Group;
use crate::sources::logs::{DEFAULT_MAX_BYTES, LogCapture, LogLimits};

/// A running service and its captured output.
pub struct Service {
    group: Group,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The command line, for messages.
    pub command: String,
    /// Its stdout: the log source.
    pub stdout: LogCapture,
    /// Its stderr: to diagnose logs written to the wrong stream and failed starts.
    pub stderr: LogCapture,
}

/// The default command: the `backend` binary next to obsctl's own executable, with a private
/// in-memory store so that a verification leaves no file behind.
pub fn default_command() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let backend: PathBuf = exe.parent()?.join("backend");
    backend.is_file().then(|| {
        format!(
            "{} --database :memory:",
            shell_quote(&backend.display().to_string())
        )
    })
}

fn shell_quote(word: &str) -> String {
    if word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl Service {
    /// Starts `command` through `sh -c` on a free loopback port, exporting spans to
    /// `otlp_endpoint` (and protecting /metrics with `metrics_token`, when given), and waits (at
    /// most `timeout`) until it accepts connections.
    pub async fn start(
        command: &str,
        otlp_endpoint: &str,
        metrics_token: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, VerifyError> {
        let addr = super::free_loopback_port().map_err(|e| VerifyError::Service(e.to_string()))?;
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(command)
            .env("HOST", addr.ip().to_string())
            .env("PORT", addr.port().to_string())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint);
        if let Some(token) = metrics_token {
            shell.env("METRICS_TOKEN", token);
        }
        // Export batches often, so checks wait little; a value the user set wins.
        if std::env::var_os("OTEL_BSP_SCHEDULE_DELAY").is_none() {
            shell.env("OTEL_BSP_SCHEDULE_DELAY", "200");
        }
        shell
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut group = Group::spawn(shell, command)
            .map_err(|e| VerifyError::Service(format!("cannot run `{command}`: {e}")))?;
        let stdout = capture(group.take_stdout(), LogLimits::default(), "stdout");
        let stderr = capture(group.take_stderr(), stderr_limits(), "stderr");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if let Some(status) = group.try_exit() {
                return Err(VerifyError::Service(format!(
                    "`{command}` exited with {status} before listening on {addr}; stderr: {}",
                    tail(&stderr)
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(VerifyError::Service(format!(
                    "`{command}` did not listen on {addr} (from $HOST and $PORT) within {timeout:?}; stderr: {}",
                    tail(&stderr)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            group,
            addr,
            command: command.to_owned(),
            stdout,
            stderr,
        })
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for the output to be read to the end.
    pub async fn stop(self, grace: Duration) {
        self.group.stop(grace).await;
        let _ = self.stdout.finish(Duration::from_secs(2)).await;
        let _ = self.stderr.finish(Duration::from_secs(2)).await;
    }
}

fn capture(
    stream: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
    limits: LogLimits,
    name: &str,
) -> LogCapture {
    match stream {
        Some(stream) => LogCapture::start(stream, limits, name),
        None => LogCapture::start(tokio::io::empty(), limits, name),
    }
}

/// Stderr only diagnoses (logs written to the wrong stream, a failed start): a quarter of the
/// log budget is plenty.
fn stderr_limits() -> LogLimits {
    LogLimits {
        max_bytes: DEFAULT_MAX_BYTES / 4,
        ..LogLimits::default()
    }
}

fn tail(capture: &LogCapture) -> String {
    let lines = capture.buffer.lines();
    if lines.is_empty() {
        return "(empty)".to_owned();
    }
    let start = lines.len().saturating_sub(5);
    lines[start..]
        .iter()
        .map(|l| l.text().into_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}
