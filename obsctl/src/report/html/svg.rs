//! A small line-chart builder for the HTML report: linear and log axes with readable ticks,
//! series with gaps, vertical markers, drawn as one inline `<svg>` (no script, no font, no
//! fetch). Pure: values in, markup out.

use super::escape;
use std::fmt::Write as _;

/// Width of a chart in SVG units (the page is about 1,100 px wide).
pub const WIDTH: f64 = 1060.0;
/// Height of a chart in SVG units.
pub const HEIGHT: f64 = 300.0;

// The plot area inside the chart: room on the left for tick labels and the axis title, below
// for tick labels and the axis title.
const LEFT: f64 = 72.0;
const RIGHT: f64 = WIDTH - 20.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = HEIGHT - 44.0;

/// How values map to positions along an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Equal steps for equal differences.
    Linear,
    /// Equal steps for equal ratios (values must be positive).
    Log,
}

/// One labelled tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Where the tick is, in data units.
    pub value: f64,
    /// What it says.
    pub label: String,
}

/// An axis: its scale, domain, ticks and title.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    scale: Scale,
    min: f64,
    max: f64,
    ticks: Vec<Tick>,
    title: String,
}

impl Axis {
    /// A linear axis from `min` to at least `max`, extended to a round tick.
    pub fn linear(min: f64, max: f64, title: &str) -> Self {
        let max = if max > min { max } else { min + 1.0 };
        let step = nice_step((max - min) / 5.0);
        let max = (max / step).ceil() * step;
        let ticks = linear_ticks(min, max, step)
            .into_iter()
            .map(|value| Tick {
                value,
                label: number(value),
            })
            .collect();
        Self {
            scale: Scale::Linear,
            min,
            max,
            ticks,
            title: title.to_owned(),
        }
    }

    /// A log axis covering `min..=max` (both positive), widened to 1-2-5 steps.
    pub fn log(min: f64, max: f64, title: &str) -> Self {
        let (min, max) = log_domain(min, max);
        let ticks = log_ticks(min, max)
            .into_iter()
            .map(|value| Tick {
                value,
                label: number(value),
            })
            .collect();
        Self {
            scale: Scale::Log,
            min,
            max,
            ticks,
            title: title.to_owned(),
        }
    }

    /// An axis with a given scale, domain and ticks.
    pub fn custom(scale: Scale, min: f64, max: f64, ticks: Vec<Tick>, title: &str) -> Self {
        Self {
            scale,
            min,
            max,
            ticks,
            title: title.to_owned(),
        }
    }

    /// Where `value` sits between the ends of the axis: 0 at `min`, 1 at `max`, clamped.
    pub fn fraction(&self, value: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear => (value - self.min) / (self.max - self.min),
            Scale::Log => {
                let value = value.max(self.min);
                (value.ln() - self.min.ln()) / (self.max.ln() - self.min.ln())
            }
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The domain's ends.
    pub fn domain(&self) -> (f64, f64) {
        (self.min, self.max)
    }

    /// The labelled ticks.
    pub fn ticks(&self) -> &[Tick] {
        &self.ticks
    }
}

/// A step of 1, 2 or 5 times a power of ten, at least `raw` (1 when `raw` is not positive).
pub fn nice_step(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// Multiples of `step` from `min` to `max` (both included when they are multiples).
pub fn linear_ticks(min: f64, max: f64, step: f64) -> Vec<f64> {
    if step.is_nan() || step <= 0.0 || max < min {
        return Vec::new();
    }
    let first = (min / step).ceil() as i64;
    let last = (max / step + 1e-9).floor() as i64;
    // A linear axis carries a handful of ticks; the bound only guards against absurd input.
    (first..=last.min(first + 100))
        .map(|i| round(i as f64 * step))
        .collect()
}

/// The 1-2-5 values around `min..=max` (both positive): the largest at or below `min` and the
/// smallest at or above `max`; never a single point.
pub fn log_domain(min: f64, max: f64) -> (f64, f64) {
    let min = if min > 0.0 && min.is_finite() {
        min
    } else {
        1e-3
    };
    let max = if max.is_finite() { max.max(min) } else { min };
    let low = one_two_five(min, false);
    let high = one_two_five(max, true);
    if high > low {
        (low, high)
    } else {
        (low, one_two_five(low * 1.5, true))
    }
}

/// Ticks of a log axis: each power of ten, with the 2s and 5s when the axis spans three
/// decades or fewer.
pub fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    if !(min > 0.0 && max >= min && max.is_finite()) {
        return Vec::new();
    }
    let (first, last) = (min.log10().floor() as i32, max.log10().ceil() as i32);
    let multiples: &[f64] = if max / min <= 1001.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    // Bounded: at most a few dozen decades between finite positive floats that matter here.
    (first..=last.min(first + 40))
        .flat_map(|e| multiples.iter().map(move |m| round(m * 10f64.powi(e))))
        .filter(|v| *v >= min * (1.0 - 1e-9) && *v <= max * (1.0 + 1e-9))
        .collect()
}

fn one_two_five(value: f64, up: bool) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    let candidates = [1.0, 2.0, 5.0, 10.0].map(|m| round(m * power));
    if up {
        candidates
            .into_iter()
            .find(|c| *c >= value * (1.0 - 1e-9))
            .unwrap_or(10.0 * power)
    } else {
        candidates
            .into_iter()
            .rev()
            .find(|c| *c <= value * (1.0 + 1e-9))
            .unwrap_or(power)
    }
}

/// `value` without floating-point noise (0.30000000000000004 is 0.3).
fn round(value: f64) -> f64 {
    if value == 0.0 {
        return 0.0;
    }
    let digits = 12 - value.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// A tick label: `0.002`, `2.5`, `500`, `2k`, `10k`, `2.5M` (thousands always as `k`, so that
/// one axis never mixes `5000` with `10k`).
pub fn number(value: f64) -> String {
    let value = round(value);
    if value.abs() >= 1e6 {
        format!("{}M", round(value / 1e6))
    } else if value.abs() >= 1e3 {
        format!("{}k", round(value / 1e3))
    } else {
        format!("{value}")
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Stroke colour.
    pub color: &'static str,
    /// Stroke width.
    pub width: f64,
    /// Dashed (for plans and references) or solid (for measurements).
    pub dashed: bool,
}

impl Style {
    /// A solid line of `color`.
    pub fn solid(color: &'static str) -> Self {
        Self {
            color,
            width: 1.8,
            dashed: false,
        }
    }

    /// A dashed line of `color`.
    pub fn dashed(color: &'static str) -> Self {
        Self {
            dashed: true,
            ..Self::solid(color)
        }
    }

    /// The same style, `width` wide.
    pub fn wide(self, width: f64) -> Self {
        Self { width, ..self }
    }
}

/// A named line; `None` values are gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// How it is drawn.
    pub style: Style,
    /// `(x, y)` points in data units, in x order.
    pub points: Vec<(f64, Option<f64>)>,
}

/// A vertical line across the plot with a short label (stage boundaries, the stop).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Where, in x data units.
    pub x: f64,
    /// What it marks.
    pub label: String,
    /// Its colour.
    pub color: &'static str,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The `id` of the `<svg>` element, for links and tests.
    pub id: &'static str,
    /// What the chart shows, for screen readers (`aria-label`).
    pub label: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// The lines, drawn in order (the last on top).
    pub series: Vec<Series>,
    /// Vertical markers, drawn under the lines.
    pub markers: Vec<Marker>,
}

impl Chart {
    /// The legend (HTML, so that long names wrap) followed by the chart as SVG.
    pub fn render(&self) -> String {
        let mut out = legend(&self.series);
        let _ = write!(
            out,
            "<svg id=\"{}\" class=\"chart\" role=\"img\" aria-label=\"{}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             xmlns=\"http://www.w3.org/2000/svg\">",
            self.id,
            escape(&self.label)
        );
        self.grid(&mut out);
        for marker in &self.markers {
            let x = self.px(marker.x);
            let _ = write!(
                out,
                "<line class=\"marker\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{BOTTOM}\" \
                 stroke=\"{c}\"/><text class=\"marker-label\" x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\">{}</text>",
                x + 4.0,
                TOP + 12.0,
                escape(&marker.label),
                c = marker.color,
            );
        }
        for series in &self.series {
            out.push_str(&self.line(series));
        }
        out.push_str("</svg>");
        out
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + self.x.fraction(x) * (RIGHT - LEFT)
    }

    fn py(&self, y: f64) -> f64 {
        BOTTOM - self.y.fraction(y) * (BOTTOM - TOP)
    }

    /// Grid lines, tick labels, the frame and the axis titles.
    fn grid(&self, out: &mut String) {
        for tick in &self.y.ticks {
            let y = self.py(tick.value);
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT - 6.0,
                y + 4.0,
                escape(&tick.label)
            );
        }
        for tick in &self.x.ticks {
            let x = self.px(tick.value);
            // A label centred on the right edge would be cut off by the chart's border.
            let anchor = if x > RIGHT - 24.0 { "end" } else { "middle" };
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{BOTTOM}\"/>\
                 <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                BOTTOM + 16.0,
                escape(&tick.label)
            );
        }
        let _ = write!(
            out,
            "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"/>\
             <text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"axis-title\" transform=\"translate(16 {:.1}) rotate(-90)\" \
             text-anchor=\"middle\">{}</text>",
            RIGHT - LEFT,
            BOTTOM - TOP,
            (LEFT + RIGHT) / 2.0,
            HEIGHT - 8.0,
            escape(&self.x.title),
            (TOP + BOTTOM) / 2.0,
            escape(&self.y.title),
        );
    }

    /// One series as a `<path>`: a segment per run of values, a dot for a lone value.
    fn line(&self, series: &Series) -> String {
        let mut d = String::new();
        let mut in_segment = false;
        let mut lone = false;
        for &(x, y) in &series.points {
            match y {
                Some(y) if y.is_finite() => {
                    let (px, py) = (self.px(x), self.py(y));
                    if in_segment {
                        let _ = write!(d, "L{px:.1} {py:.1}");
                        lone = false;
                    } else {
                        close_lone(&mut d, lone);
                        let _ = write!(d, "M{px:.1} {py:.1}");
                        in_segment = true;
                        lone = true;
                    }
                }
                _ => in_segment = false,
            }
        }
        close_lone(&mut d, lone);
        if d.is_empty() {
            return String::new();
        }
        let style = series.style;
        format!(
            "<path class=\"series\" d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{} \
             stroke-linejoin=\"round\" stroke-linecap=\"round\"><title>{}</title></path>",
            style.color,
            style.width,
            if style.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            escape(&series.name)
        )
    }
}

/// A segment of one point is drawn as a dot: a zero-length line with round caps.
fn close_lone(d: &mut String, lone: bool) {
    if lone {
        d.push_str("h0");
    }
}

/// The legend of `series`: a short line in each one's style, then its name.
pub fn legend(series: &[Series]) -> String {
    let mut out = String::from("<ul class=\"legend\">");
    for s in series {
        let _ = write!(
            out,
            "<li><svg width=\"22\" height=\"10\" aria-hidden=\"true\"><line x1=\"1\" y1=\"5\" \
             x2=\"21\" y2=\"5\" stroke=\"{}\" stroke-width=\"{}\"{}/></svg>{}</li>",
            s.style.color,
            s.style.width.max(2.0),
            if s.style.dashed {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            },
            escape(&s.name)
        );
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        let cases = [
            (0.7, 1.0),
            (1.0, 1.0),
            (1.2, 2.0),
            (3.0, 5.0),
            (7.0, 10.0),
            (130.0, 200.0),
            (0.013, 0.02),
        ];
        for (raw, step) in cases {
            assert_eq!(nice_step(raw), step, "{raw}");
        }
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn a_linear_axis_ends_on_a_round_tick() {
        let axis = Axis::linear(0.0, 487.0, "req/s");
        assert_eq!(axis.domain(), (0.0, 500.0));
        let values: Vec<f64> = axis.ticks.iter().map(|t| t.value).collect();
        assert_eq!(values, [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]);
        assert_eq!(linear_ticks(0.0, 0.6, 0.2), [0.0, 0.2, 0.4, 0.6]);
        // Nothing to show still gives an axis, not a division by zero.
        assert_eq!(Axis::linear(0.0, 0.0, "n").domain(), (0.0, 1.0));
    }

    #[test]
    fn a_log_axis_covers_its_values_with_one_two_five_ends() {
        assert_eq!(log_domain(0.31, 180.0), (0.2, 200.0));
        assert_eq!(log_domain(1.0, 1.0), (1.0, 2.0));
        assert_eq!(log_domain(0.0, 5.0).0, 0.001);
        assert_eq!(
            log_ticks(0.2, 200.0),
            [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]
        );
        // Wide ranges keep the powers of ten only.
        assert_eq!(
            log_ticks(0.01, 1000.0),
            [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
        );
    }

    #[test]
    fn positions_are_fractions_of_the_axis_clamped_to_it() {
        let log = Axis::log(1.0, 100.0, "ms");
        assert!((log.fraction(10.0) - 0.5).abs() < 1e-9);
        assert_eq!(log.fraction(0.0), 0.0);
        assert_eq!(log.fraction(1e9), 1.0);
        let linear = Axis::linear(0.0, 10.0, "s");
        assert!((linear.fraction(2.5) - 0.25).abs() < 1e-9);
    }

    #[test]
    fn tick_labels_are_short() {
        let labels: Vec<String> = [0.002, 0.1 + 0.2, 2.5, 500.0, 2000.0, 10_000.0, 2_500_000.0]
            .into_iter()
            .map(number)
            .collect();
        assert_eq!(labels, ["0.002", "0.3", "2.5", "500", "2k", "10k", "2.5M"]);
    }

    #[test]
    fn gaps_split_a_line_and_lone_values_are_dots() {
        let chart = Chart {
            id: "chart-test",
            label: "test".to_owned(),
            x: Axis::linear(0.0, 10.0, "s"),
            y: Axis::linear(0.0, 10.0, "n"),
            series: vec![Series {
                name: "a<b".to_owned(),
                style: Style::solid("#000"),
                points: vec![
                    (0.0, Some(0.0)),
                    (1.0, Some(1.0)),
                    (2.0, None),
                    (3.0, Some(3.0)),
                ],
            }],
            markers: vec![],
        };
        let svg = chart.render();
        assert!(svg.contains("id=\"chart-test\""), "{svg}");
        assert!(
            svg.contains("d=\"M72.0 256.0L168.8 231.8M362.4 183.4h0\""),
            "{svg}"
        );
        assert!(
            svg.contains("<title>a&lt;b</title>") && !svg.contains("a<b"),
            "{svg}"
        );
    }
}
