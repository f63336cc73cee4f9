//! The open-model plan: when each request is due, as offsets from the start of the run.
//!
//! Pure arithmetic, no clock: the rate ramps linearly within each stage from the previous stage's
//! rate (or the start rate) to the stage's rate, and request `k` is due at the instant where the
//! integral of the rate reaches `k`. So request 0 is due at 0, and at a constant rate `r` request
//! `k` is due at `k / r`.

use crate::scenario::Stage;
use std::time::Duration;

/// One stage with its rates at both ends, as the schedule walks it.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    duration: f64,
    from_rate: f64,
    to_rate: f64,
    /// Number of requests due before the segment starts (the integral so far).
    count_before: f64,
}

impl Segment {
    fn count(&self) -> f64 {
        (self.from_rate + self.to_rate) / 2.0 * self.duration
    }

    /// Seconds into the segment at which `n` requests (fractional) have become due.
    fn time_for(&self, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        // n = r0 t + a t^2 with a = (r1 - r0) / (2 D); the stable root of the quadratic.
        let a = (self.to_rate - self.from_rate) / (2.0 * self.duration);
        let b = self.from_rate;
        let root = (b * b + 4.0 * a * n).max(0.0).sqrt();
        (2.0 * n / (b + root)).min(self.duration)
    }
}

/// The due times of an open-model run, in order. Iterating yields `(seq, offset)` pairs.
#[derive(Debug, Clone)]
pub struct Schedule {
    segments: Vec<Segment>,
    total: Duration,
    next_seq: u64,
    segment: usize,
}

impl Schedule {
    /// The plan for `stages`, starting at `start_rate` (default: the first stage's rate).
    pub fn new(start_rate: Option<f64>, stages: &[Stage]) -> Self {
        let mut segments = Vec::with_capacity(stages.len());
        let mut from_rate = start_rate.or(stages.first().map(|s| s.rate)).unwrap_or(0.0);
        let (mut start, mut count_before) = (0.0, 0.0);
        for stage in stages {
            let segment = Segment {
                start,
                duration: stage.duration.as_secs_f64(),
                from_rate,
                to_rate: stage.rate,
                count_before,
            };
            start += segment.duration;
            count_before += segment.count();
            from_rate = stage.rate;
            segments.push(segment);
        }
        Self {
            segments,
            total: stages.iter().map(|s| s.duration).sum(),
            next_seq: 0,
            segment: 0,
        }
    }

    /// Total planned duration.
    pub fn duration(&self) -> Duration {
        self.total
    }

    /// How many requests (fractional) the plan makes due in the first `t` seconds: the integral
    /// of the rate, so the planned rate over `[a, b)` is `(count_until(b) - count_until(a)) / (b - a)`.
    pub fn count_until(&self, t: f64) -> f64 {
        self.segments
            .iter()
            .map(|s| {
                let within = (t - s.start).clamp(0.0, s.duration);
                if within <= 0.0 || s.duration <= 0.0 {
                    return 0.0;
                }
                let rate_then = s.from_rate + (s.to_rate - s.from_rate) * within / s.duration;
                (s.from_rate + rate_then) / 2.0 * within
            })
            .sum()
    }

    /// How many requests the plan sends in total.
    pub fn planned_requests(&self) -> u64 {
        let total: f64 = self.segments.iter().map(Segment::count).sum();
        // Request k is due at the integral k, for k < total (strictly before the end).
        let whole = total.ceil();
        if whole > 0.0 { whole as u64 } else { 0 }
    }
}

impl Iterator for Schedule {
    type Item = (u64, Duration);

    fn next(&mut self) -> Option<Self::Item> {
        let k = self.next_seq as f64;
        while let Some(segment) = self.segments.get(self.segment) {
            let within = k - segment.count_before;
            if within < segment.count() {
                let offset = segment.start + segment.time_for(within);
                let seq = self.next_seq;
                self.next_seq += 1;
                return Some((seq, Duration::from_secs_f64(offset)));
            }
            self.segment += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(secs: f64, rate: f64) -> Stage {
        Stage {
            duration: Duration::from_secs_f64(secs),
            rate,
        }
    }

    fn offsets(start: Option<f64>, stages: &[Stage]) -> Vec<f64> {
        Schedule::new(start, stages)
            .map(|(_, d)| d.as_secs_f64())
            .collect()
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let due = offsets(None, &[stage(1.0, 10.0)]);
        assert_eq!(due.len(), 10);
        for (k, t) in due.iter().enumerate() {
            assert!((t - k as f64 * 0.1).abs() < 1e-9, "{k}: {t}");
        }
    }

    #[test]
    fn the_planned_count_is_the_area_under_the_rate_and_agrees_with_the_due_times() {
        // 10 -> 30 req/s over 2 s, then 30 for 1 s.
        let stages = [stage(2.0, 30.0), stage(1.0, 30.0)];
        let schedule = Schedule::new(Some(10.0), &stages);
        for (t, want) in [
            (0.0, 0.0),
            (1.0, 15.0),
            (2.0, 40.0),
            (3.0, 70.0),
            (9.0, 70.0),
        ] {
            assert!((schedule.count_until(t) - want).abs() < 1e-9, "{t}");
        }
        for t in [0.5, 1.0, 1.7, 2.5] {
            let due_before = offsets(Some(10.0), &stages)
                .iter()
                .filter(|d| **d < t)
                .count() as f64;
            assert!((schedule.count_until(t) - due_before).abs() <= 1.0, "{t}");
        }
    }

    #[test]
    fn sequence_numbers_count_from_zero() {
        let seqs: Vec<u64> = Schedule::new(None, &[stage(1.0, 3.0)])
            .map(|(s, _)| s)
            .collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    #[test]
    fn linear_ramp_sends_the_area_under_the_rate() {
        // 0 -> 100 rps over 2 s: 100 requests, twice as dense at the end as in the middle.
        let due = offsets(Some(0.0), &[stage(2.0, 100.0)]);
        assert_eq!(due.len(), 100);
        let first_half = due.iter().filter(|t| **t < 1.0).count();
        assert_eq!(first_half, 25);
        assert!(due.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn stages_follow_each_other() {
        let due = offsets(
            None,
            &[stage(1.0, 10.0), stage(1.0, 10.0), stage(1.0, 50.0)],
        );
        assert_eq!(due.iter().filter(|t| **t < 2.0).count(), 20);
        // Third stage ramps 10 -> 50: 30 requests.
        assert_eq!(due.len(), 50);
        assert!(due.iter().all(|t| *t < 3.0));
    }

    #[test]
    fn zero_rate_stage_is_a_pause() {
        let due = offsets(
            None,
            &[
                stage(1.0, 2.0),
                stage(1.0, 0.0),
                stage(1.0, 0.0),
                stage(1.0, 2.0),
            ],
        );
        assert!(due.iter().all(|t| !(2.0..3.0).contains(t)), "{due:?}");
    }

    #[test]
    fn planned_requests_matches_the_iteration() {
        let stages = [stage(1.5, 7.0), stage(0.7, 33.0)];
        let plan = Schedule::new(Some(1.0), &stages);
        assert_eq!(plan.planned_requests(), plan.clone().count() as u64);
    }
}
