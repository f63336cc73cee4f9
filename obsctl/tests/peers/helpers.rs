//! Test helpers: where the peers live and whether their runtimes are installed (a missing one
//! skips the test, except under CI), one bounded `obsctl verify --format json` run at a time,
//! and its verdict, with assertions that show every offending check and its findings.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// Longest one `obsctl verify` run may take: start, load, ingestion, checks and stop.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// After SIGINT on timeout, how long obsctl gets to stop what it started before SIGKILL.
const INTERRUPT_GRACE: Duration = Duration::from_secs(15);

/// One peer at a time: the machine has 2 cores, and concurrent peers make latency noisy.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the peers' lock until dropped; a test that failed while holding it does not fail the
/// others.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The repository's `examples/` directory.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("obsctl/ has a parent: the workspace root")
        .join("examples")
}

/// `examples/express`, when `node` and its `node_modules` are installed; otherwise `None`
/// after printing why (a panic under CI).
pub fn express() -> Option<PathBuf> {
    node_peer("express")
}

/// `examples/fastify`, when `node` and its `node_modules` are installed; otherwise `None`
/// after printing why (a panic under CI).
pub fn fastify() -> Option<PathBuf> {
    node_peer("fastify")
}

/// `examples/NAME`, a Node peer with its own pinned `node_modules`.
fn node_peer(name: &str) -> Option<PathBuf> {
    let dir = examples().join(name);
    let install = format!("npm ci --prefix examples/{name} --no-audit --no-fund");
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|status| status.success()) {
        return missing(&format!(
            "no `node` on PATH (Node 20 runs examples/{name}); install Node 20, then `{install}`"
        ));
    }
    if !dir.join("node_modules").is_dir() {
        return missing(&format!(
            "examples/{name}/node_modules is missing; install it with `{install}`"
        ));
    }
    Some(dir)
}

/// `examples/fastapi`, when `examples/.venv/bin/uvicorn` is installed.
pub fn fastapi() -> Option<PathBuf> {
    python_peer("fastapi", "uvicorn")
}

/// `examples/flask`, when `examples/.venv/bin/gunicorn` is installed.
pub fn flask() -> Option<PathBuf> {
    python_peer("flask", "gunicorn")
}

/// `examples/django`, when `examples/.venv` has gunicorn and Django (whose `django-admin`
/// tells it is installed: a venv set up before the Django peer existed has gunicorn only).
pub fn django() -> Option<PathBuf> {
    python_peer("django", "django-admin")?;
    python_peer("django", "gunicorn")
}

/// `examples/aiohttp`, when `examples/.venv` can import aiohttp and its OpenTelemetry
/// instrumentation: aiohttp installs no program to look for, and a venv set up before the
/// aiohttp peer existed has neither.
pub fn aiohttp() -> Option<PathBuf> {
    let dir = python_peer("aiohttp", "python")?;
    let probe = Command::new(examples().join(".venv/bin/python"))
        .args([
            "-c",
            "import aiohttp, opentelemetry.instrumentation.aiohttp_server",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|status| status.success()) {
        return missing(
            "examples/.venv cannot import aiohttp and opentelemetry.instrumentation.aiohttp_server \
             (examples/aiohttp needs them); install them with `bash examples/setup-python.sh`",
        );
    }
    Some(dir)
}

fn python_peer(name: &str, program: &str) -> Option<PathBuf> {
    if !examples().join(".venv/bin").join(program).is_file() {
        return missing(&format!(
            "examples/.venv/bin/{program} is missing (examples/{name} needs it); \
             install it with `bash examples/setup-python.sh` (needs python3 with venv)"
        ));
    }
    Some(examples().join(name))
}

/// A missing runtime: skip the test, but not under CI, which must have every peer's runtime.
fn missing(reason: &str) -> Option<PathBuf> {
    if std::env::var_os("CI").is_some() {
        panic!("CI must have every peer's runtime installed: {reason}");
    }
    println!("SKIPPED: {reason}");
    None
}

/// What one `obsctl verify --format json` run ended with.
pub struct Verdict {
    /// The exit code; `None` when obsctl died of a signal.
    pub code: Option<i32>,
    /// The JSON report printed on stdout.
    pub report: Value,
    /// What obsctl wrote on stderr (only errors, with `--quiet`).
    stderr: String,
    /// The command line, for messages.
    command: String,
}

/// Runs `obsctl verify --quiet --format json --prometheus auto --spawn SPAWN EXTRA...` in `dir`
/// (the peer's directory, where SPAWN runs) within [`RUN_TIMEOUT`], and parses its report.
pub fn verify(dir: &Path, spawn: &str, extra: &[&str]) -> Verdict {
    let mut args = vec![
        "verify",
        "--quiet",
        "--format",
        "json",
        "--prometheus",
        "auto",
        "--spawn",
        spawn,
    ];
    args.extend_from_slice(extra);
    let command = format!(
        "(cd {} && obsctl {})",
        dir.display(),
        args.iter()
            .map(|arg| if arg.contains(' ') {
                format!("'{arg}'")
            } else {
                (*arg).to_owned()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_obsctl"))
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = wait_within(&mut child, RUN_TIMEOUT);
    let Some(status) = status else {
        // SIGINT lets obsctl stop the service and Prometheus it started; SIGKILL if it hangs.
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        if wait_within(&mut child, INTERRUPT_GRACE).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "{command} did not finish within {RUN_TIMEOUT:?}; stopped it\nstderr:\n{}",
            joined(stderr)
        );
    };
    let (stdout, stderr) = (joined(stdout), joined(stderr));
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{command} ({status}, after {:.1?}) printed no JSON report: {e}\n\
             stdout:\n{stdout}\nstderr:\n{stderr}",
            started.elapsed()
        )
    });
    assert_matches_schema(&report, &command);
    Verdict {
        code: status.code(),
        report,
        stderr,
        command,
    }
}

/// Every real report is held to the committed schema (obsctl/schema/check-report.schema.json).
fn assert_matches_schema(report: &Value, command: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/check-report.schema.json"
    );
    let text = std::fs::read_to_string(path).expect("the check report schema is committed");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{command}: the report violates the schema: {errors:#?}"
    );
}

/// Reads a pipe to its end on a thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn joined(reader: JoinHandle<String>) -> String {
    reader.join().unwrap_or_default()
}

/// The child's exit status, or `None` when it still runs after `limit`.
fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for obsctl works") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

impl Verdict {
    /// Every check of the report.
    pub fn checks(&self) -> &[Value] {
        self.report["checks"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("{}: the report has no checks[]", self.command))
    }

    /// The check `id`; panics, naming the checks there are, when it is absent.
    pub fn check(&self, id: &str) -> &Value {
        self.checks()
            .iter()
            .find(|check| check["id"] == id)
            .unwrap_or_else(|| {
                let ids: Vec<&str> = self.checks().iter().map(|c| text(c, "id")).collect();
                panic!("{}: no check {id:?} among {ids:?}", self.command)
            })
    }

    /// The ids of the checks with `status`.
    pub fn ids_with_status(&self, status: &str) -> Vec<&str> {
        self.checks()
            .iter()
            .filter(|check| check["status"] == status)
            .map(|check| text(check, "id"))
            .collect()
    }

    /// Panics, showing the checks that failed or erred, unless the run exited with `code`.
    pub fn assert_exit(&self, code: i32) {
        assert!(
            self.code == Some(code),
            "{}: exit {:?}, expected {code}\n{}",
            self.command,
            self.code,
            self.offenders_or_none()
        );
    }

    /// The run exited 0 and no check failed or erred.
    pub fn assert_passes(&self) {
        let offenders = self.offenders();
        assert!(
            self.code == Some(0) && offenders.is_empty(),
            "{}: exit {:?}, expected 0 with no check failed or erred\n{}",
            self.command,
            self.code,
            self.offenders_or_none()
        );
    }

    /// The checks with status fail or error.
    fn offenders(&self) -> Vec<&Value> {
        self.checks()
            .iter()
            .filter(|check| check["status"] == "fail" || check["status"] == "error")
            .collect()
    }

    fn offenders_or_none(&self) -> String {
        let offenders = self.offenders();
        let mut out = if offenders.is_empty() {
            "no check failed or erred\n".to_owned()
        } else {
            let described: Vec<String> = offenders.into_iter().map(describe).collect();
            format!("checks that failed or erred:\n{}", described.join(""))
        };
        if !self.stderr.trim().is_empty() {
            out.push_str(&format!("stderr:\n{}", self.stderr));
        }
        out
    }
}

/// A check as a few lines: id, status, levels, detail and every finding.
pub fn describe(check: &Value) -> String {
    let mut out = format!(
        "  {} [{}, level {}, default {}]: {}\n",
        text(check, "id"),
        text(check, "status"),
        text(check, "level"),
        text(check, "default_level"),
        text(check, "detail"),
    );
    for finding in check["findings"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "    - {} (x{})\n",
            text(finding, "what"),
            finding["count"]
        ));
        for example in finding["examples"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "        {}\n",
                example.as_str().unwrap_or_default()
            ));
        }
        out.push_str(&format!("        fix: {}\n", text(finding, "hint")));
    }
    out
}

/// A string field of a JSON object, or "" when absent.
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}
