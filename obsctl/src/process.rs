//! Child processes that obsctl starts (the service under test, a local Prometheus): each in its
//! own process group, so that stopping it also stops whatever it started (`sh -c` wrappers,
//! workers), killed on drop, so that nothing outlives obsctl on failure or a signal, and watched
//! by a [`Watchdog`], so that nothing outlives obsctl even when it is killed outright (SIGKILL,
//! an OOM kill), when no code of obsctl's runs any more.

use std::io::Write as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A started child process group.
#[derive(Debug)]
pub struct Group {
    child: Child,
    pgid: Option<Pid>,
    /// Stops the group if obsctl dies first; dismissed once the group is stopped.
    watchdog: Option<Watchdog>,
    /// What was started, for messages.
    pub description: String,
}

/// A small process that outlives obsctl only to stop a group: it reads a pipe whose write end
/// only obsctl holds (close-on-exec, so no other child inherits it). At end of file, which the
/// kernel delivers however obsctl ended, it sends the group SIGTERM, then SIGKILL 2 s later; a
/// line on the pipe (the group is already stopped) dismisses it. `PR_SET_PDEATHSIG` would not
/// do: it reaches only the group leader (often `sh -c`), never the service that it started.
#[derive(Debug)]
struct Watchdog {
    pipe: std::io::PipeWriter,
    /// Reaped by tokio in the background once dropped.
    _process: Child,
}

/// The watchdog's script; `$0` is the process group to stop. `kill -s SIG -- -PGID` is the
/// POSIX spelling that dash's built-in `kill` takes (`kill -TERM -- -PGID` it refuses).
const WATCHDOG: &str = "read line; [ -n \"$line\" ] && exit 0; \
     kill -s TERM -- -\"$0\" 2>/dev/null; sleep 2; kill -s KILL -- -\"$0\" 2>/dev/null";

impl Watchdog {
    fn start(pgid: Pid) -> std::io::Result<Self> {
        let (read, pipe) = std::io::pipe()?;
        let process = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(pgid.to_string())
            .process_group(0)
            .stdin(read)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self {
            pipe,
            _process: process,
        })
    }

    /// The group is stopped: the watchdog leaves without signalling anything.
    fn dismiss(mut self) {
        let _ = self.pipe.write_all(b"stopped\n");
    }
}

impl Group {
    /// Starts `command` in a new process group with stdin closed (stdout and stderr as the
    /// caller set them), watched by a [`Watchdog`].
    pub fn spawn(mut command: Command, description: impl Into<String>) -> std::io::Result<Self> {
        command
            .process_group(0)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn()?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let watchdog = match pgid.map(Watchdog::start) {
            Some(Ok(watchdog)) => Some(watchdog),
            Some(Err(error)) => {
                // Without a watchdog the group still stops on every path obsctl survives.
                eprintln!("obsctl: cannot start the watchdog of {pgid:?}: {error}");
                None
            }
            None => None,
        };
        Ok(Self {
            child,
            pgid,
            watchdog,
            description: description.into(),
        })
    }

    /// The child's stdout, once.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The child's stderr, once.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// The exit status if the process already ended.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM to the group, then SIGKILL after `grace`; returns the leader's exit status.
    pub async fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.try_exit() {
            self.signal(Signal::SIGKILL);
            self.pgid = None;
            self.dismiss_watchdog();
            return Some(status);
        }
        self.signal(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        let status = match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => None,
        };
        // The leader is often `sh -c`, which dash ends at once on SIGTERM while the service it
        // started is still flushing: the rest of the group gets the rest of the grace.
        while self.group_alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Whatever else the group started, and did not stop in time, goes too.
        self.signal(Signal::SIGKILL);
        let status = match status {
            Some(status) => Some(status),
            None => self.child.wait().await.ok(),
        };
        // Reaped: the group id may be reused from now on, so Drop must not signal it.
        self.pgid = None;
        self.dismiss_watchdog();
        status
    }

    fn dismiss_watchdog(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.dismiss();
        }
    }

    /// Whether any process of the group is still there (signal 0 reaches one).
    fn group_alive(&self) -> bool {
        self.pgid.is_some_and(|pgid| killpg(pgid, None).is_ok())
    }

    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // The group may already be gone: nothing to do then.
            let _ = killpg(pgid, signal);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
        self.dismiss_watchdog();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_service_under_a_shell_wrapper_gets_the_grace_to_finish() {
        // dash ends `sh -c` at once on SIGTERM; the process it started traps SIGTERM, takes
        // 300 ms to flush, and marks that it finished.
        let dir = tempfile::tempdir().expect("a temp dir");
        let marker = dir.path().join("flushed");
        let inner = format!(
            "trap 'sleep 0.3; touch {}; exit 0' TERM; while :; do sleep 0.05; done",
            marker.display()
        );
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!("sh -c \"{inner}\"; true"));
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let group = Group::spawn(command, "wrapper").expect("sh starts");
        tokio::time::sleep(Duration::from_millis(200)).await;
        group.stop(Duration::from_secs(5)).await;
        assert!(
            marker.exists(),
            "the wrapped service was killed before it flushed"
        );
    }
}
