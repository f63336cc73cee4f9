//! The live progress display on stderr: where the run is in its plan (time, stage), the rate
//! and p99 of the last few seconds against the planned rate, errors and requests that could not
//! start. Drawn only when stderr is a terminal and progress is wanted; otherwise every call is a
//! no-op. A whole-run average would hide what a ramp is doing now: 39 s into a ramp that holds
//! 500 req/s it still reads 311.
//!
//! One line of at most 80 columns: `[bar]  12.3/30 s  stage 2/3  1998.0/2000 req/s  p99 1.52 ms
//! 0 err  0 ns` (`ns`: requests that never started, apart from the target's errors).

use super::config::Plan;
use super::sample::{ErrorKind, Sample};
use super::schedule::Schedule;
use crate::report::Segment;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds the live rate and p99 look back over.
const WINDOW_SECONDS: u64 = 5;

/// A live view of a running load test.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plan: PlanView,
    window: Window,
}

/// What the display knows of the plan: its length, its stages, its rate over time.
#[derive(Debug)]
struct PlanView {
    duration: Duration,
    /// The shards the plan is split into: this process sends 1 in `shards`.
    shards: f64,
    /// End of each stage, seconds from the start (empty for a closed loop).
    stage_ends: Vec<f64>,
    schedule: Option<Schedule>,
}

impl PlanView {
    fn new(plan: &Plan, segment: Option<Segment>) -> Self {
        let (stage_ends, schedule) = match plan {
            Plan::Open { start_rate, stages } => {
                let mut end = 0.0;
                let ends = stages
                    .iter()
                    .map(|s| {
                        end += s.duration.as_secs_f64();
                        end
                    })
                    .collect();
                (ends, Some(Schedule::new(*start_rate, stages)))
            }
            Plan::Closed { .. } => (Vec::new(), None),
        };
        Self {
            duration: plan.duration(),
            shards: segment.map_or(1.0, |s| f64::from(s.count)),
            stage_ends,
            schedule,
        }
    }

    /// The 1-based stage at `t` seconds.
    fn stage(&self, t: f64) -> Option<usize> {
        let index = self.stage_ends.iter().position(|end| t < *end);
        let last = self.stage_ends.len();
        (last > 0).then(|| index.map_or(last, |i| i + 1))
    }

    /// The planned rate over the last window ending at `t`.
    fn planned_rate(&self, t: f64) -> Option<f64> {
        let schedule = self.schedule.as_ref()?;
        let from = (t - WINDOW_SECONDS as f64).max(0.0);
        let rate =
            |t: f64, from: f64| (schedule.count_until(t) - schedule.count_until(from)) / (t - from);
        (t > from).then(|| rate(t, from) / self.shards)
    }
}

/// Requests that ended in each of the last few seconds, and their latencies.
#[derive(Debug)]
struct Window {
    start: Instant,
    /// (second since start, requests sent, latencies), oldest first.
    seconds: VecDeque<(u64, u64, Option<Histogram<u32>>)>,
    sent: u64,
    errors: u64,
    not_started: u64,
}

impl Window {
    fn new(start: Instant) -> Self {
        Self {
            start,
            seconds: VecDeque::new(),
            sent: 0,
            errors: 0,
            not_started: 0,
        }
    }

    fn record(&mut self, sample: &Sample) {
        match (sample.sent, sample.outcome.error) {
            (None, _) => self.not_started += 1,
            (Some(_), Some(ErrorKind::Connect)) => self.errors += 1,
            (Some(_), error) => {
                self.sent += 1;
                if error.is_some_and(|e| e != ErrorKind::Cancelled) {
                    self.errors += 1;
                }
            }
        }
        let second = sample.end.saturating_duration_since(self.start).as_secs();
        if self.seconds.back().is_none_or(|(s, _, _)| *s < second) {
            self.seconds.push_back((second, 0, None));
        }
        while self
            .seconds
            .front()
            .is_some_and(|(s, _, _)| *s + WINDOW_SECONDS <= second)
        {
            self.seconds.pop_front();
        }
        // Samples arrive in end order within a batch; an older one joins the newest second.
        let Some((_, sent, histogram)) = self.seconds.back_mut() else {
            return;
        };
        if sample.sent.is_some() && sample.outcome.error != Some(ErrorKind::Connect) {
            *sent += 1;
        }
        if sample.outcome.status.is_some() {
            if histogram.is_none() {
                *histogram = Histogram::new_with_bounds(1, 3_600_000_000, 2).ok();
            }
            let micros = u64::try_from(sample.latency().as_micros()).unwrap_or(u64::MAX);
            if let Some(histogram) = histogram {
                histogram.saturating_record(micros.max(1));
            }
        }
    }

    /// The rate and p99 (ms) over the seconds before `now` still in the window.
    fn recent(&self, now: Instant) -> (f64, Option<f64>) {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        let span = elapsed.min(WINDOW_SECONDS as f64);
        let horizon = (elapsed - span) as u64;
        let mut sent = 0;
        let mut merged: Option<Histogram<u32>> = None;
        for (_, n, histogram) in self.seconds.iter().filter(|(s, _, _)| *s >= horizon) {
            sent += n;
            if let Some(h) = histogram {
                match &mut merged {
                    None => merged = Some(h.clone()),
                    Some(m) => {
                        let _ = m.add(h);
                    }
                }
            }
        }
        let rate = if span > 0.0 { sent as f64 / span } else { 0.0 };
        let p99 = merged
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0);
        (rate, p99)
    }
}

/// A snapshot of the run for tests and for the line drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Planned seconds.
    pub planned_s: f64,
    /// Current stage and stage count (open model).
    pub stage: Option<(usize, usize)>,
    /// Requests sent per second over the last few seconds.
    pub rate: f64,
    /// The plan's rate over the same seconds (open model).
    pub planned_rate: Option<f64>,
    /// 99th percentile latency of the last few seconds, ms.
    pub p99_ms: Option<f64>,
    /// The target's errors so far (connect, timeout, unexpected status, I/O).
    pub errors: u64,
    /// Requests that never started so far (obsctl's own limit: the in-flight cap).
    pub not_started: u64,
}

impl Snapshot {
    /// The line drawn after the bar: at most 58 columns, so that the whole fits 80.
    pub fn line(&self) -> String {
        let stage = self
            .stage
            .map_or_else(String::new, |(i, n)| format!("  st {i}/{n}"));
        let rate = match self.planned_rate {
            Some(planned) => format!("{:.0}/{planned:.0}", self.rate),
            None => format!("{:.0}", self.rate),
        };
        let p99 = self
            .p99_ms
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}ms"));
        format!(
            "{:.0}/{:.0}s{stage}  {rate} req/s  p99 {p99}  {} err  {} ns",
            self.elapsed_s, self.planned_s, self.errors, self.not_started
        )
    }
}

impl Progress {
    /// A display for `plan` (or the shard `segment` of it) started at `start`; hidden unless
    /// `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, plan: &Plan, segment: Option<Segment>, start: Instant) -> Self {
        let plan = PlanView::new(plan, segment);
        let window = Window::new(start);
        if !wanted || !std::io::stderr().is_terminal() {
            return Self {
                bar: None,
                plan,
                window,
            };
        }
        let total = u64::try_from(plan.duration.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:20.cyan/blue} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Self {
            bar: Some(bar),
            plan,
            window,
        }
    }

    /// Counts one finished request.
    pub fn record(&mut self, sample: &Sample) {
        if self.bar.is_some() {
            self.window.record(sample);
        }
    }

    /// What the display shows at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let elapsed = now
            .saturating_duration_since(self.window.start)
            .as_secs_f64();
        let (rate, p99_ms) = self.window.recent(now);
        Snapshot {
            elapsed_s: elapsed,
            planned_s: self.plan.duration.as_secs_f64(),
            stage: self
                .plan
                .stage(elapsed)
                .map(|i| (i, self.plan.stage_ends.len())),
            rate,
            planned_rate: self
                .plan
                .planned_rate(elapsed.min(self.plan.duration.as_secs_f64())),
            p99_ms,
            errors: self.window.errors,
            not_started: self.window.not_started,
        }
    }

    /// Refreshes the display.
    pub fn update(&self, now: Instant) {
        let Some(bar) = &self.bar else { return };
        let snapshot = self.snapshot(now);
        let elapsed = now.saturating_duration_since(self.window.start);
        bar.set_position(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        bar.set_message(snapshot.line());
    }

    /// Removes the display, leaving the terminal clean for the summary.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::Outcome;
    use crate::scenario::Stage;

    fn answered(start: Instant, at_ms: u64, latency_ms: u64) -> Sample {
        let end = start + Duration::from_millis(at_ms);
        Sample {
            request: 0,
            path: None,
            scheduled: end - Duration::from_millis(latency_ms),
            sent: Some(end - Duration::from_millis(latency_ms)),
            end,
            outcome: Outcome {
                status: Some(200),
                error: None,
            },
        }
    }

    #[test]
    fn the_live_rate_is_the_last_seconds_not_the_whole_run_average() {
        let start = Instant::now();
        // 10 req/s for 20 s, a 1 s ramp to 500 req/s, 500 req/s for 19 s.
        let stage = |secs, rate| Stage {
            duration: Duration::from_secs(secs),
            rate,
        };
        let plan = Plan::Open {
            start_rate: None,
            stages: vec![stage(20, 10.0), stage(1, 500.0), stage(19, 500.0)],
        };
        let mut progress = Progress::new(false, &plan, None, start);
        progress.window = Window::new(start);
        let mut feed = |from_ms: u64, to_ms: u64, every_ms: u64, latency: u64| {
            for at in (from_ms..to_ms).step_by(every_ms as usize) {
                progress.window.record(&answered(start, at, latency));
            }
        };
        feed(0, 20_000, 100, 2);
        feed(20_000, 39_000, 2, 30);
        let mut not_started = answered(start, 38_500, 0);
        not_started.sent = None;
        not_started.outcome = Outcome {
            status: None,
            error: Some(ErrorKind::NotStarted),
        };
        progress.window.record(&not_started);
        let snapshot = progress.snapshot(start + Duration::from_secs(39));
        assert!((snapshot.rate - 500.0).abs() < 10.0, "{snapshot:?}");
        assert_eq!(snapshot.planned_rate.map(f64::round), Some(500.0));
        assert_eq!(snapshot.stage, Some((3, 3)));
        assert!(
            snapshot.p99_ms.is_some_and(|p| (29.0..31.0).contains(&p)),
            "{snapshot:?}"
        );
        assert_eq!((snapshot.errors, snapshot.not_started), (0, 1));
        let line = snapshot.line();
        assert!(line.len() + 21 <= 80, "{} columns: {line}", line.len() + 21);
        assert!(
            line.contains("st 3/3") && line.contains("500/500 req/s"),
            "{line}"
        );
    }
}
