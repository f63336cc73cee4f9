//! The signals that stop obsctl the graceful way: SIGINT (Ctrl-C), SIGTERM (CI cancellation,
//! `timeout`, `docker stop`, Kubernetes) and SIGHUP (a closed terminal). Each ends `load` and
//! `verify` alike: partial summary, partial report marked interrupted, everything started
//! stopped, and the exit code a shell expects for that signal (128 + its number).

use tokio::signal::unix::{SignalKind, signal};

/// A signal that asked obsctl to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    HangUp,
}

impl Stop {
    /// The exit code for a run stopped by this signal: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
            Self::HangUp => 129,
        }
    }

    /// The signal's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
            Self::HangUp => "SIGHUP",
        }
    }
}

/// Listens for the stop signals from now on: `fired` completes on the first, and `which` says
/// which one it was. The handlers are installed before this returns, so a signal that arrives
/// while the run is being set up is not lost (nor does it kill obsctl the default way).
pub fn listen() -> (
    impl std::future::Future<Output = ()> + Send + 'static,
    tokio::sync::watch::Receiver<Option<Stop>>,
) {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    if let (Ok(mut int), Ok(mut term), Ok(mut hup)) = handlers {
        tokio::spawn(async move {
            let stop = tokio::select! {
                _ = int.recv() => Stop::Interrupt,
                _ = term.recv() => Stop::Terminate,
                _ = hup.recv() => Stop::HangUp,
            };
            let _ = tx.send(Some(stop));
        });
    }
    let mut fired = rx.clone();
    let future = async move {
        // Without handlers the sender is gone at once: then nothing ever fires.
        if fired.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    (future, rx)
}
