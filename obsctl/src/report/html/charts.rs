//! The report's charts: rate, latency and errors over time from the `timeline`, and the latency
//! percentile spectrum (the HDR plot) from the `histograms`. Each returns HTML: the chart, or a
//! sentence saying why there is none.

use super::svg::{Axis, Chart, Marker, Scale, Series, Style, Tick};
use super::{escape, note};
use crate::report::{Model, RunReport, Second, hgrm, histogram};

/// Colours of the per-name lines of the spectrum, in scenario order (then again).
const PALETTE: [&str; 8] = [
    "#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563",
];

/// Planned and achieved rate per second, stage boundaries marked.
pub fn rate(report: &RunReport) -> String {
    if report.timeline.is_empty() {
        return no_timeline(report);
    }
    let mut lines = vec![per_second(
        report,
        "achieved",
        Style::solid("#2563eb").wide(2.2),
        |s| Some(s.achieved_rate),
    )];
    // The plan is drawn over the measurement, dashed, so that both show where they agree.
    if report.model == Model::Open {
        lines.push(per_second(
            report,
            "planned",
            Style::dashed("#4b5563").wide(1.6),
            |s| s.planned_rate,
        ));
    }
    let max = max_of(&lines).unwrap_or(0.0);
    let chart = Chart {
        id: "chart-rate",
        label: "Planned and achieved requests per second over the run".to_owned(),
        x: time_axis(report),
        y: Axis::linear(0.0, max, "requests / s"),
        series: lines,
        markers: markers(report),
    };
    let closed = match report.model {
        Model::Closed => note("A closed loop (<code>--rps max</code>) has no planned rate."),
        Model::Open => String::new(),
    };
    chart.render() + &closed
}

/// p50, p90, p99 and max latency per second, on a log scale.
pub fn latency(report: &RunReport) -> String {
    if report.timeline.is_empty() {
        return no_timeline(report);
    }
    let series = |name, style, value| per_second(report, name, style, value);
    let lines = vec![
        series("max", Style::solid("#dc2626").wide(1.2), |s| s.max_ms),
        series("p99", Style::solid("#ea580c"), |s| s.p99_ms),
        series("p90", Style::solid("#16a34a"), |s| s.p90_ms),
        series("p50", Style::solid("#2563eb").wide(2.2), |s| s.p50_ms),
    ];
    let (Some(min), Some(max)) = (min_positive(&lines), max_of(&lines)) else {
        return note("No request got a response: there is no latency to plot.");
    };
    Chart {
        id: "chart-latency",
        label: "Latency percentiles per second over the run, log scale".to_owned(),
        x: time_axis(report),
        y: Axis::log(min, max, "latency (ms, log scale)"),
        series: lines,
        markers: markers(report),
    }
    .render()
}

/// Errors (not-started included) and not-started requests per second.
pub fn errors(report: &RunReport) -> String {
    if report.timeline.is_empty() {
        return no_timeline(report);
    }
    let lines = vec![
        per_second(
            report,
            "errors (all kinds)",
            Style::solid("#dc2626").wide(2.2),
            |s| Some(s.errors as f64),
        ),
        per_second(report, "not started", Style::dashed("#7c3aed"), |s| {
            Some(s.not_started as f64)
        }),
    ];
    let max = max_of(&lines).unwrap_or(0.0);
    let chart = Chart {
        id: "chart-errors",
        label: "Errors and not-started requests per second over the run".to_owned(),
        x: time_axis(report),
        // Counts: at least 0..5 so that a quiet run gets whole-number ticks.
        y: Axis::linear(0.0, max.max(5.0), "requests"),
        series: lines,
        markers: markers(report),
    };
    let quiet = if max == 0.0 {
        note("No errors in this run.")
    } else {
        String::new()
    };
    chart.render() + &quiet
}

/// The latency percentile spectrum of the whole run and of each request name.
pub fn spectrum(report: &RunReport) -> String {
    let Some(histograms) = &report.histograms else {
        return note("The latency histograms are not in this report (a version 1 report).");
    };
    let named = histograms
        .by_name
        .iter()
        .map(|h| (h.name.as_str(), &h.histogram));
    let mut lines = Vec::new();
    for (index, (name, encoded)) in std::iter::once(("all requests", &histograms.overall))
        .chain(named.filter(|_| histograms.by_name.len() > 1))
        .enumerate()
    {
        let decoded = match histogram::decode(encoded) {
            Ok(h) => h,
            Err(e) => {
                return note(&format!(
                    "The histogram of {} does not decode: {}",
                    escape(name),
                    escape(&e.to_string())
                ));
            }
        };
        let style = match index {
            0 => Style::solid("#111827").wide(2.6),
            i => Style::solid(PALETTE[(i - 1) % PALETTE.len()]),
        };
        lines.push(Series {
            name: name.to_owned(),
            style,
            points: spectrum_points(&hgrm::spectrum(&decoded), decoded.len()),
        });
    }
    let x_max = lines
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let Some(y_max) = max_of(&lines) else {
        return note("No request got a response: there is no latency spectrum.");
    };
    let chart = Chart {
        id: "chart-spectrum",
        label: "Latency by percentile, log scale of 1/(1-percentile)".to_owned(),
        x: spectrum_axis(x_max),
        y: Axis::linear(0.0, y_max, "latency (ms)"),
        series: lines,
        markers: Vec::new(),
    };
    chart.render()
        + &note(
            "Each line gives the latency that a fraction of the requests stayed under; the tail \
             is stretched (x is 1/(1&minus;percentile) on a log scale). The last point of a line \
             is its maximum, drawn at 1 in N requests.",
        )
}

/// `(1/(1-quantile), ms)` for each point; the last (100 %) at 1 in `count`.
pub fn spectrum_points(points: &[hgrm::Point], count: u64) -> Vec<(f64, Option<f64>)> {
    let mut out: Vec<(f64, Option<f64>)> = Vec::with_capacity(points.len());
    for point in points {
        let x = if point.quantile < 1.0 {
            1.0 / (1.0 - point.quantile)
        } else {
            let last = out.last().map_or(1.0, |p| p.0);
            last.max(count as f64)
        };
        out.push((x, Some(point.value_ms)));
    }
    out
}

/// The spectrum's x axis: 1/(1-q) from 1 (0 %) a little past `x_max`, at least to 100 (99 %),
/// ticks at each power of ten.
fn spectrum_axis(x_max: f64) -> Axis {
    let max = (x_max * 1.2).max(100.0);
    let decades = max.log10().floor().min(12.0) as i32;
    let ticks = (0..=decades)
        .map(|i| Tick {
            value: 10f64.powi(i),
            label: percentile_label(i),
        })
        .collect();
    Axis::custom(
        Scale::Log,
        1.0,
        max,
        ticks,
        "percentile (log scale of 1/(1\u{2212}p))",
    )
}

/// The percentile at 1/(1-q) = 10^`decade`: `0%`, `90%`, `99%`, `99.9%`...
pub fn percentile_label(decade: i32) -> String {
    match decade {
        i if i <= 0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        i => format!("99.{}%", "9".repeat((i - 2) as usize)).replace("99.%", "99%"),
    }
}

/// One value of each second of the timeline, drawn at the middle of its second.
fn per_second(
    report: &RunReport,
    name: &str,
    style: Style,
    value: fn(&Second) -> Option<f64>,
) -> Series {
    Series {
        name: name.to_owned(),
        style,
        points: report
            .timeline
            .iter()
            .map(|s| (s.t as f64 + 0.5, value(s)))
            .collect(),
    }
}

fn no_timeline(report: &RunReport) -> String {
    if report.schema_version < 2 {
        note("The timeline is not in this report (a version 1 report).")
    } else {
        note("No request came due in this run: there is nothing to plot over time.")
    }
}

/// Seconds from the start to the end of the plan or of the run, whichever is later.
fn time_axis(report: &RunReport) -> Axis {
    let last = report.timeline.last().map_or(0.0, |s| s.t as f64 + 1.0);
    let end = last.max(report.plan.duration_s).max(report.duration_s);
    Axis::linear(0.0, end, "seconds since the start")
}

/// Where each stage after the first begins, and where an interrupted run stopped.
fn markers(report: &RunReport) -> Vec<Marker> {
    let mut at = 0.0;
    let mut out = Vec::new();
    let stages = &report.plan.stages;
    for (index, stage) in stages
        .iter()
        .enumerate()
        .take(stages.len().saturating_sub(1))
    {
        at += stage.duration_s;
        out.push(Marker {
            x: at,
            label: format!("stage {}", index + 2),
            color: "#6b7280",
        });
    }
    if report.interrupted {
        out.push(Marker {
            x: report.duration_s,
            label: "stopped".to_owned(),
            color: "#dc2626",
        });
    }
    out
}

fn values(lines: &[Series]) -> impl Iterator<Item = f64> + '_ {
    lines
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite())
}

fn max_of(lines: &[Series]) -> Option<f64> {
    values(lines).reduce(f64::max)
}

fn min_positive(lines: &[Series]) -> Option<f64> {
    values(lines).filter(|v| *v > 0.0).reduce(f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels_count_the_nines() {
        let labels: Vec<String> = (0..=5).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn the_spectrum_maximum_sits_at_one_in_n() {
        let point = |quantile, value_ms| hgrm::Point {
            value_ms,
            quantile,
            count: 0,
        };
        let points = [point(0.5, 1.0), point(0.9, 2.0), point(1.0, 9.0)];
        assert_eq!(
            spectrum_points(&points, 1000),
            [
                (2.0, Some(1.0)),
                (10.000000000000002, Some(2.0)),
                (1000.0, Some(9.0))
            ]
        );
        // Never left of the point before it.
        assert_eq!(spectrum_points(&points, 3)[2].0, 10.000000000000002);
    }

    #[test]
    fn the_spectrum_axis_reaches_just_past_the_maximum() {
        let axis = spectrum_axis(2500.0);
        assert_eq!(axis.domain(), (1.0, 3000.0));
        let labels: Vec<&str> = axis.ticks().iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%"]);
        assert_eq!(spectrum_axis(3.0).domain(), (1.0, 100.0));
    }
}
