//! The latency percentile spectrum of a run, as wrk2 and HdrHistogram print it (`.hgrm`): one
//! line per percentile step, halving the distance to 100 % five steps at a time, so the tail is
//! read as closely as the median. Plotted with a log x axis of 1/(1-percentile), it is the HDR
//! plot (<https://hdrhistogram.github.io/HdrHistogram/plotFiles.html> reads this format).

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Percentile steps per halving of the distance to 100 % (wrk2 and HdrHistogram use 5).
const TICKS_PER_HALF: u32 = 5;

/// One point of the spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Latency in milliseconds.
    pub value_ms: f64,
    /// The fraction of requests at or below it, 0 to 1.
    pub quantile: f64,
    /// How many requests are at or below it.
    pub count: u64,
}

/// The spectrum of `histogram` (values in microseconds), from the smallest value to 100 %.
pub fn spectrum(histogram: &Histogram<u64>) -> Vec<Point> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<Point> = histogram
        .iter_quantiles(TICKS_PER_HALF)
        .map(|v| Point {
            value_ms: histogram.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0,
            quantile: v.quantile_iterated_to(),
            count: v.count_since_last_iteration(),
        })
        .collect();
    // Running totals, as the format prints them.
    let mut total = 0;
    for point in &mut points {
        total += point.count;
        point.count = total;
    }
    points
}

/// The spectrum as wrk2 prints it: `Value Percentile TotalCount 1/(1-Percentile)` columns, then
/// the mean, standard deviation, max and totals.
pub fn render(histogram: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for point in spectrum(histogram) {
        let inverse = if point.quantile < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - point.quantile))
        } else {
            format!("{:>14}", "inf")
        };
        let _ = writeln!(
            out,
            "{:>12.3} {:>14.12} {:>10} {inverse}",
            point.value_ms, point.quantile, point.count
        );
    }
    let ms = |us: f64| us / 1000.0;
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]\n#[Max     = {:>12.3}, Total count    = {:>12}]",
        ms(histogram.mean()),
        ms(histogram.stdev()),
        ms(histogram.max() as f64),
        histogram.len(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spectrum_climbs_to_every_request_and_halves_towards_the_tail() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        for v in 1..=10_000u64 {
            h.saturating_record(v * 10);
        }
        let points = spectrum(&h);
        let last = points.last().copied().expect("points");
        assert_eq!((last.quantile, last.count), (1.0, 10_000));
        assert!((last.value_ms - 100.0).abs() < 0.1, "{last:?}");
        assert!(points.windows(2).all(|w| w[0].quantile <= w[1].quantile));
        // 5 ticks per halving: 0.5, 0.75, 0.875 ... all present, and beyond 0.999.
        assert!(points.iter().any(|p| (p.quantile - 0.5).abs() < 1e-3));
        assert!(
            points
                .iter()
                .any(|p| p.quantile > 0.999 && p.quantile < 1.0)
        );
        let text = render(&h);
        assert!(
            text.contains("1/(1-Percentile)") && text.contains("Total count    =        10000")
        );
    }

    #[test]
    fn an_empty_histogram_has_no_spectrum() {
        let h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        assert!(spectrum(&h).is_empty());
    }
}
