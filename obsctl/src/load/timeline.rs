//! The run second by second: what came due in each second and what became of it, with the
//! latency percentiles of that second. Requests are placed by their due time, so a stall shows at
//! the moment the plan asked for the traffic that met it, not later when the timeouts fire.
//!
//! Memory: a few counters per second of the run, plus a latency histogram for each second whose
//! requests may still be in flight (at most two timeouts and a little slack after it); older
//! seconds keep only their percentiles.

use super::sample::{ErrorKind, Sample};
use crate::report::{Second, round3};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Highest latency a second's histogram tracks (1 hour, in microseconds).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Counts of one second.
#[derive(Debug, Default, Clone)]
struct Row {
    due: u64,
    sent: u64,
    answered: u64,
    errors: u64,
    not_started: u64,
    /// Percentiles (p50, p90, p99) in microseconds, once the second's histogram is closed.
    percentiles: Option<[u64; 3]>,
    max_us: u64,
}

/// The seconds of a run, fed one sample at a time.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    rows: Vec<Row>,
    /// Histograms of the seconds that may still receive samples, oldest first.
    open: VecDeque<(u64, Histogram<u32>)>,
    /// How many seconds after its own a second's histogram stays open.
    window: u64,
}

impl Timeline {
    /// An empty timeline of a run that started at `start`, whose requests end at most two
    /// `timeout`s after they are due (one waiting for a slot, one for the response).
    pub fn new(start: Instant, timeout: Duration) -> Self {
        Self {
            start,
            rows: Vec::new(),
            open: VecDeque::new(),
            window: 2 * timeout.as_secs() + 3,
        }
    }

    /// Records one sample under the second it was due in.
    pub fn record(&mut self, sample: &Sample) {
        let second = sample
            .scheduled
            .saturating_duration_since(self.start)
            .as_secs();
        let Ok(index) = usize::try_from(second) else {
            return;
        };
        if self.rows.len() <= index {
            self.rows.resize(index + 1, Row::default());
        }
        let row = &mut self.rows[index];
        row.due += 1;
        match (sample.sent, sample.outcome.error) {
            (None, _) => row.not_started += 1,
            (Some(_), Some(ErrorKind::Connect)) => {}
            (Some(_), _) => row.sent += 1,
        }
        if sample
            .outcome
            .error
            .is_some_and(|kind| kind != ErrorKind::Cancelled)
        {
            row.errors += 1;
        }
        if sample.outcome.status.is_some() {
            row.answered += 1;
            let micros = u64::try_from(sample.latency().as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1, MAX_LATENCY_US);
            row.max_us = row.max_us.max(micros);
            if let Some(histogram) = self.histogram(second) {
                histogram.saturating_record(micros);
            }
        }
        self.close_before(second.saturating_sub(self.window));
    }

    /// The open histogram of `second`, opened if needed; `None` once it is closed.
    fn histogram(&mut self, second: u64) -> Option<&mut Histogram<u32>> {
        let position = match self.open.binary_search_by_key(&second, |(s, _)| *s) {
            Ok(position) => position,
            Err(position) => {
                let closed = self
                    .rows
                    .get(usize::try_from(second).ok()?)
                    .is_some_and(|row| row.percentiles.is_some());
                if closed {
                    return None;
                }
                // 2 significant digits: the timeline shows trends; the report's whole-run
                // histograms keep 3.
                let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).ok()?;
                self.open.insert(position, (second, histogram));
                position
            }
        };
        self.open.get_mut(position).map(|(_, h)| h)
    }

    /// Closes the histograms of the seconds before `second`, keeping their percentiles.
    fn close_before(&mut self, second: u64) {
        while self.open.front().is_some_and(|(s, _)| *s < second) {
            if let Some((s, histogram)) = self.open.pop_front() {
                self.close(s, &histogram);
            }
        }
    }

    fn close(&mut self, second: u64, histogram: &Histogram<u32>) {
        let Some(row) = usize::try_from(second)
            .ok()
            .and_then(|i| self.rows.get_mut(i))
        else {
            return;
        };
        // A bucket's highest value may exceed the largest latency, which is exact.
        let max = row.max_us;
        row.percentiles = (!histogram.is_empty())
            .then(|| [0.5, 0.9, 0.99].map(|q| histogram.value_at_quantile(q).min(max)));
    }

    /// The timeline of a run whose sending lasted `duration_s` seconds; `planned_rate(a, b)` is
    /// the plan's rate over `[a, b)` (`None` for a closed loop).
    pub fn finish(
        mut self,
        duration_s: f64,
        planned_rate: impl Fn(f64, f64) -> Option<f64>,
    ) -> Vec<Second> {
        self.close_before(u64::MAX);
        let ms = |us: u64| us as f64 / 1000.0;
        self.rows
            .iter()
            .enumerate()
            .map(|(t, row)| {
                let from = t as f64;
                // The last second may be cut short by the end of the run.
                let until = (from + 1.0).min(duration_s.max(from + 0.001));
                let percentile = |i: usize| row.percentiles.map(|p| ms(p[i]));
                Second {
                    t: t as u64,
                    planned_rate: planned_rate(from, until),
                    achieved_rate: round3(row.sent as f64 / (until - from)),
                    due: row.due,
                    sent: row.sent,
                    answered: row.answered,
                    errors: row.errors,
                    not_started: row.not_started,
                    p50_ms: percentile(0),
                    p90_ms: percentile(1),
                    p99_ms: percentile(2),
                    max_ms: (row.answered > 0).then(|| ms(row.max_us)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::Outcome;

    fn sample(start: Instant, due_ms: u64, latency_ms: u64, status: Option<u16>) -> Sample {
        let scheduled = start + Duration::from_millis(due_ms);
        Sample {
            request: 0,
            path: None,
            scheduled,
            sent: Some(scheduled),
            end: scheduled + Duration::from_millis(latency_ms),
            outcome: Outcome {
                status,
                error: status.is_none().then_some(ErrorKind::Timeout),
            },
        }
    }

    #[test]
    fn requests_count_in_the_second_they_were_due() {
        let start = Instant::now();
        let mut timeline = Timeline::new(start, Duration::from_secs(1));
        for (due, latency) in [(0, 5), (500, 5), (999, 1_800), (1_200, 40)] {
            timeline.record(&sample(start, due, latency, Some(200)));
        }
        timeline.record(&sample(start, 1_500, 1_000, None));
        let seconds = timeline.finish(2.0, |_, _| Some(2.0));
        assert_eq!(seconds.len(), 2);
        let (first, second) = (&seconds[0], &seconds[1]);
        assert_eq!(
            (first.due, first.sent, first.answered, first.errors),
            (3, 3, 3, 0)
        );
        assert_eq!((second.due, second.answered, second.errors), (2, 1, 1));
        assert_eq!(first.max_ms, Some(1_800.0));
        assert_eq!(first.p50_ms.map(|p| p.round()), Some(5.0));
        assert_eq!(second.planned_rate, Some(2.0));
        assert_eq!(second.achieved_rate, 2.0);
    }

    #[test]
    fn only_recent_seconds_keep_a_histogram() {
        let start = Instant::now();
        let mut timeline = Timeline::new(start, Duration::from_secs(1));
        for second in 0..100 {
            timeline.record(&sample(start, second * 1_000, 3, Some(200)));
        }
        assert!(timeline.open.len() <= 6, "{} open", timeline.open.len());
        let seconds = timeline.finish(100.0, |_, _| None);
        assert!(
            seconds
                .iter()
                .all(|s| s.p99_ms.is_some() && s.answered == 1)
        );
    }
}
