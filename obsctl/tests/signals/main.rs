//! SIGTERM, SIGHUP and SIGKILL to a running `obsctl load` / `obsctl verify`: the exit code a
//! shell expects, the partial report on disk, and no process obsctl started left alive (its
//! descendants are found by walking /proc while it runs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// A keep-alive HTTP server on 127.0.0.1 that answers every request `200` with no body.
async fn tiny_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                loop {
                    let Ok(n) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    let answers = buffer[..n].windows(4).filter(|w| w == b"\r\n\r\n").count();
                    for _ in 0..answers {
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn obsctl(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_obsctl"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("obsctl starts")
}

/// Parent of every process, read from /proc/PID/stat.
fn parents() -> BTreeMap<i32, i32> {
    let mut map = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            map.insert(pid, ppid);
        }
    }
    map
}

/// Every live descendant of `root`.
fn descendants(root: i32) -> BTreeSet<i32> {
    let parents = parents();
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(pid) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, parent)| **parent == pid) {
            if found.insert(*child) {
                frontier.push(*child);
            }
        }
    }
    found
}

/// Whether `pid` is alive (a zombie waiting to be reaped counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = &stat[stat.rfind(')')? + 1..];
            after.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Waits until `pids` are all gone, at most `limit`; returns those still alive.
async fn gone_within(pids: &BTreeSet<i32>, limit: Duration) -> Vec<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(child: &Child, signal: Signal) {
    let pid = child.id().expect("obsctl runs");
    kill(Pid::from_raw(pid as i32), signal).expect("the signal is sent");
}

async fn load_stopped_by(sig: Signal, code: i32) {
    let target = tiny_server().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let child = obsctl(
        dir.path(),
        &[
            "load",
            "--target",
            &target,
            "--rps",
            "50",
            "--duration",
            "30s",
            "--report",
            "r.json",
        ],
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    signal(&child, sig);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("obsctl stops within 10 s of the signal")
        .expect("its output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(&format!("stopped by {sig:?}")), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("INTERRUPTED"));
    let report = std::fs::read_to_string(dir.path().join("r.json")).expect("the report is written");
    let report: obsctl::report::RunReport = serde_json::from_str(&report).expect("it parses");
    assert!(report.interrupted);
    assert!(report.requests_sent > 0 && report.requests_sent < 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_load_with_its_partial_report_and_exit_143() {
    load_stopped_by(Signal::SIGTERM, 143).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_load_with_its_partial_report_and_exit_129() {
    load_stopped_by(Signal::SIGHUP, 129).await;
}

/// A `verify` of a plain HTTP server (python3 -m http.server: any process that listens will do),
/// with a real Prometheus when one is installed, running a 30 s load; returns it once the
/// service and its watchdog run, with every descendant seen.
async fn running_verify(dir: &Path) -> Option<(Child, BTreeSet<i32>)> {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "CI must have python3");
        eprintln!("SKIPPED: no python3 to serve as the verified service");
        return None;
    }
    let child = obsctl(
        dir,
        &[
            "verify",
            "--quiet",
            "--duration",
            "30s",
            "--spawn",
            "exec python3 -m http.server $PORT --bind $HOST",
        ],
    );
    let pid = child.id().expect("obsctl runs") as i32;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = descendants(pid);
        let python = seen.iter().any(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("http.server"))
        });
        // The service, and at least one watchdog (a `sh` child of obsctl).
        if python && seen.len() >= 2 {
            // Let the load start, and Prometheus (when installed) come up.
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Some((child, descendants(pid)));
        }
        assert!(
            Instant::now() < deadline,
            "the service never started: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_verify_and_everything_it_started() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let Some((child, started)) = running_verify(dir.path()).await else {
        return;
    };
    signal(&child, Signal::SIGTERM);
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("obsctl stops within 20 s of SIGTERM")
        .expect("its output");
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = gone_within(&started, Duration::from_secs(5)).await;
    assert!(
        left.is_empty(),
        "still running after obsctl exited: {left:?} of {started:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_to_verify_still_stops_everything_it_started() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let Some((mut child, started)) = running_verify(dir.path()).await else {
        return;
    };
    signal(&child, Signal::SIGKILL);
    let _ = child.wait().await;
    // The watchdogs send SIGTERM at once and SIGKILL 2 s later.
    let left = gone_within(&started, Duration::from_secs(10)).await;
    assert!(
        left.is_empty(),
        "still running after obsctl was killed: {left:?} of {started:?}"
    );
}
