//! The live progress display on stderr: elapsed time, achieved rate, errors and live p99. Drawn
//! only when stderr is a terminal and progress is wanted; otherwise every call is a no-op.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A live view of a running load test.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

/// The numbers shown on one refresh.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Requests sent so far.
    pub sent: u64,
    /// Errors so far.
    pub errors: u64,
    /// Live 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
}

impl Progress {
    /// A display for a run planned to last `planned`; hidden unless `wanted` and stderr is a
    /// terminal.
    pub fn new(wanted: bool, planned: Duration) -> Self {
        if !wanted || !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let total = u64::try_from(planned.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:30.cyan/blue} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Self { bar: Some(bar) }
    }

    /// Refreshes the display.
    pub fn update(&self, s: Snapshot) {
        let Some(bar) = &self.bar else { return };
        let secs = s.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            s.sent as f64 / secs
        } else {
            0.0
        };
        let p99 = s
            .p99_ms
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.2} ms"));
        bar.set_position(u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX));
        bar.set_message(format!(
            "{secs:6.1} s  {rate:9.1} req/s  {} sent  {} errors  p99 {p99}",
            s.sent, s.errors
        ));
    }

    /// Removes the display, leaving the terminal clean for the summary.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
