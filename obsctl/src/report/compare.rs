//! Two runs side by side (`obsctl report compare BASE NEW`): per request name and overall, the
//! p50, p99, error rate and achieved rate of each, the change, and whether it is a regression.
//!
//! A change is a regression when it is worse than the limit (`--max-regression`, relative, for
//! latencies and rate; `--max-error-increase`, in points, for the error rate) **and** larger
//! than the runs' own noise, so that a CI gate does not fail on the jitter of a shared machine:
//! - latency and rate: the spread of the per-second values in each run's timeline (interquartile
//!   range over the median), divided by the square root of its seconds, as the whole-run value
//!   averages that many seconds; for a request name, divided again by the square root of its
//!   share of the requests (fewer samples vary more); the larger of the two runs;
//! - error rate: two binomial standard errors of the difference.
//!
//! Reports without a timeline (version 1) have no noise estimate: every change beyond the limit
//! is a regression.

use super::{RunReport, Second, Stats};
use std::fmt::Write as _;

/// The limits of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest tolerated relative worsening of p50, p99 and the achieved rate (0.1 = 10 %).
    pub max_regression: f64,
    /// Largest tolerated rise of the error rate, as a fraction of requests (0.01 = 1 point).
    pub max_error_increase: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_regression: 0.10,
            max_error_increase: 0.01,
        }
    }
}

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Median latency, ms.
    P50,
    /// 99th percentile latency, ms.
    P99,
    /// Errors over requests due.
    ErrorRate,
    /// Requests sent per second.
    Rate,
}

impl Metric {
    /// Every metric, in display order.
    pub const ALL: [Self; 4] = [Self::P50, Self::P99, Self::ErrorRate, Self::Rate];

    /// The label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Self::P50 => "p50 ms",
            Self::P99 => "p99 ms",
            Self::ErrorRate => "error rate",
            Self::Rate => "rate/s",
        }
    }

    fn of(self, stats: &Stats) -> Option<f64> {
        match self {
            Self::P50 => stats.latency_ms.p50,
            Self::P99 => stats.latency_ms.p99,
            Self::ErrorRate => Some(stats.error_rate),
            Self::Rate => Some(stats.achieved_rate),
        }
    }

    /// The per-second value of this metric, for the noise estimate.
    fn per_second(self, second: &Second) -> Option<f64> {
        match self {
            Self::P50 => second.p50_ms,
            Self::P99 => second.p99_ms,
            Self::ErrorRate => None,
            Self::Rate => Some(second.achieved_rate),
        }
    }
}

/// The verdict on one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Better, equal, or worse by no more than the limit.
    Ok,
    /// Worse than the limit, but within the runs' own noise: not significant.
    WithinNoise,
    /// Worse than the limit and than the noise.
    Regression,
    /// Missing from one of the runs (nothing to compare).
    Missing,
}

/// One metric of one request class in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The request name, or `all`.
    pub class: String,
    /// What is compared.
    pub metric: Metric,
    /// In the base run.
    pub base: Option<f64>,
    /// In the new run.
    pub new: Option<f64>,
    /// Relative change for latency and rate (`new / base - 1`), absolute for the error rate.
    pub change: Option<f64>,
    /// The noise the change is judged against, in the same unit as `change`.
    pub noise: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Two runs compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Every row, per request class (the base run's order, then classes new in the new run,
    /// then `all`), metrics in [`Metric::ALL`] order.
    pub rows: Vec<Row>,
    /// Notes on what makes the runs hard to compare (other scenario, target, model, plan).
    pub notes: Vec<String>,
    /// The limits applied.
    pub limits: Limits,
}

impl Comparison {
    /// The rows that are regressions.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
    }
}

/// Compares `new` with `base` under `limits`.
pub fn compare(base: &RunReport, new: &RunReport, limits: Limits) -> Comparison {
    let mut classes: Vec<(String, Option<&Stats>, Option<&Stats>)> = Vec::new();
    for named in &base.by_name {
        let other = new.by_name.iter().find(|n| n.name == named.name);
        classes.push((
            named.name.clone(),
            Some(&named.stats),
            other.map(|n| &n.stats),
        ));
    }
    for named in &new.by_name {
        if !base.by_name.iter().any(|n| n.name == named.name) {
            classes.push((named.name.clone(), None, Some(&named.stats)));
        }
    }
    classes.push(("all".to_owned(), Some(&base.overall), Some(&new.overall)));
    let mut rows = Vec::new();
    for (class, b, n) in classes {
        for metric in Metric::ALL {
            rows.push(row(&class, metric, b, n, base, new, limits));
        }
    }
    Comparison {
        rows,
        notes: notes(base, new),
        limits,
    }
}

fn row(
    class: &str,
    metric: Metric,
    base_stats: Option<&Stats>,
    new_stats: Option<&Stats>,
    base: &RunReport,
    new: &RunReport,
    limits: Limits,
) -> Row {
    let (b, n) = (
        base_stats.and_then(|s| metric.of(s)),
        new_stats.and_then(|s| metric.of(s)),
    );
    let mut row = Row {
        class: class.to_owned(),
        metric,
        base: b,
        new: n,
        change: None,
        noise: None,
        verdict: Verdict::Missing,
    };
    let (Some(b), Some(n), Some(bs), Some(ns)) = (b, n, base_stats, new_stats) else {
        return row;
    };
    let (change, worse, limit, noise) = match metric {
        Metric::ErrorRate => {
            let noise = binomial_noise(bs, ns);
            (n - b, n - b, limits.max_error_increase, Some(noise))
        }
        Metric::P50 | Metric::P99 | Metric::Rate => {
            let change = if b > 0.0 { n / b - 1.0 } else { 0.0 };
            let worse = if metric == Metric::Rate {
                -change
            } else {
                change
            };
            let noise_of = |run: &RunReport, stats: &Stats| {
                // A request name sees a share of the run's requests: its whole-run value rests on
                // fewer samples, and varies more, by the square root of that share.
                let samples = |s: &Stats| match metric {
                    Metric::Rate => s.count,
                    _ => s.latency_ms.samples,
                };
                let share = samples(stats).max(1) as f64 / samples(&run.overall).max(1) as f64;
                timeline_noise(&run.timeline, metric).map(|noise| noise / share.min(1.0).sqrt())
            };
            let noise = match (noise_of(base, bs), noise_of(new, ns)) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
            (change, worse, limits.max_regression, noise)
        }
    };
    row.change = Some(change);
    row.noise = noise;
    row.verdict = if worse <= limit + 1e-12 {
        Verdict::Ok
    } else if noise.is_some_and(|noise| worse <= noise) {
        Verdict::WithinNoise
    } else {
        Verdict::Regression
    };
    row
}

/// The relative noise of a whole-run value of `metric`, from the spread of its per-second
/// values: interquartile range over median, over the square root of the seconds. `None` with
/// fewer than 4 seconds of values.
fn timeline_noise(timeline: &[Second], metric: Metric) -> Option<f64> {
    let mut values: Vec<f64> = timeline
        .iter()
        .filter_map(|s| metric.per_second(s))
        .collect();
    if values.len() < 4 {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let median = at(0.5);
    (median > 0.0).then(|| (at(0.75) - at(0.25)) / median / (values.len() as f64).sqrt())
}

/// Two standard errors of the difference of two error rates.
fn binomial_noise(base: &Stats, new: &Stats) -> f64 {
    let variance = |s: &Stats| {
        let due = (s.count + s.not_started).max(1) as f64;
        s.error_rate * (1.0 - s.error_rate) / due
    };
    2.0 * (variance(base) + variance(new)).sqrt()
}

fn notes(base: &RunReport, new: &RunReport) -> Vec<String> {
    let mut notes = Vec::new();
    let mut differ = |what: &str, b: String, n: String| {
        if b != n {
            notes.push(format!("{what} differs: {b} vs {n}"));
        }
    };
    differ(
        "scenario",
        base.scenario.name.clone(),
        new.scenario.name.clone(),
    );
    differ("target", base.target.clone(), new.target.clone());
    differ(
        "model",
        format!("{:?}", base.model),
        format!("{:?}", new.model),
    );
    differ(
        "planned duration",
        format!("{} s", base.plan.duration_s),
        format!("{} s", new.plan.duration_s),
    );
    differ(
        "planned requests",
        format!("{:?}", base.plan.planned_requests),
        format!("{:?}", new.plan.planned_requests),
    );
    if base.timeline.is_empty() || new.timeline.is_empty() {
        notes.push(
            "a report without a timeline (version 1): no noise estimate, every change beyond \
             the limit counts"
                .to_owned(),
        );
    }
    notes
}

/// The comparison as a table, with a verdict line.
pub fn render(comparison: &Comparison, base: &RunReport, new: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "base {} ({}, {})  ->  new {} ({}, {})",
        base.run_id,
        base.scenario.name,
        base.window_start,
        new.run_id,
        new.scenario.name,
        new.window_start
    );
    for note in &comparison.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let width = comparison
        .rows
        .iter()
        .map(|r| r.class.len())
        .max()
        .unwrap_or(4)
        .max(5);
    let _ = writeln!(
        out,
        "\n{:<width$} {:<10} {:>10} {:>10} {:>9} {:>8}  verdict",
        "class", "metric", "base", "new", "change", "noise"
    );
    let mut previous = "";
    for row in &comparison.rows {
        let class = if row.class == previous {
            ""
        } else {
            row.class.as_str()
        };
        previous = &row.class;
        let value = |v: Option<f64>| match (v, row.metric) {
            (None, _) => "-".to_owned(),
            (Some(v), Metric::ErrorRate) => format!("{:.2}%", v * 100.0),
            (Some(v), Metric::Rate) => format!("{v:.1}"),
            (Some(v), _) => format!("{v:.3}"),
        };
        let change = |v: Option<f64>| match (v, row.metric) {
            (None, _) => "-".to_owned(),
            (Some(v), Metric::ErrorRate) => format!("{:+.2}pt", v * 100.0),
            (Some(v), _) => format!("{:+.1}%", v * 100.0),
        };
        let noise = match (row.noise, row.metric) {
            (None, _) => "-".to_owned(),
            (Some(v), Metric::ErrorRate) => format!("±{:.2}pt", v * 100.0),
            (Some(v), _) => format!("±{:.1}%", v * 100.0),
        };
        let verdict = match row.verdict {
            Verdict::Ok => "ok",
            Verdict::WithinNoise => "worse, within the runs' noise",
            Verdict::Regression => "REGRESSION",
            Verdict::Missing => "not in both runs",
        };
        let _ = writeln!(
            out,
            "{class:<width$} {:<10} {:>10} {:>10} {:>9} {:>8}  {verdict}",
            row.metric.label(),
            value(row.base),
            value(row.new),
            change(row.change),
            noise
        );
    }
    let regressions = comparison.regressions().count();
    let limits = comparison.limits;
    let _ = writeln!(
        out,
        "\n{}: limits {:+.1}% (p50, p99, rate), {:+.2} points (error rate)",
        if regressions == 0 {
            "no regression".to_owned()
        } else {
            format!("{regressions} regressions")
        },
        limits.max_regression * 100.0,
        limits.max_error_increase * 100.0
    );
    out
}
