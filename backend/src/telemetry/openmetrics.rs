//! The OpenMetrics 1.0 text encoder for the `prometheus` crate's gathered families, with
//! exemplars: the crate encodes only the classic text format and has no exemplars, so this
//! writes what the OpenMetrics specification's ABNF asks of the same families.
//!
//! What differs from the text format: a counter family is named without `_total` in its
//! `# TYPE` and `# HELP` lines while its sample keeps it; `# HELP` escapes `"` too; `le` values
//! are canonical numbers (`1.0`, `10.0`); timestamps are seconds; a sample may end with an
//! exemplar (` # {trace_id="...",span_id="..."} value timestamp`); the body ends with `# EOF`.

use std::fmt::Write as _;

use prometheus::proto::{Metric, MetricFamily, MetricType};

use super::exemplars::Stored;
use super::hex::{SpanHex, TraceHex};

/// Content type of an OpenMetrics 1.0 exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where exemplars come from while families are encoded: per histogram series, the exemplar
/// of each bucket in bucket order (`+Inf` last); `None` when the family has none.
pub trait ExemplarSource {
    /// The bucket exemplars of `metric` of family `family`.
    fn buckets(&self, family: &str, metric: &Metric) -> Option<Vec<Option<Stored>>>;
    /// The counter exemplar of `metric` of family `family` (the sample's name, `_total` kept).
    fn counter(&self, family: &str, metric: &Metric) -> Option<Stored>;
}

/// Appends `families` in OpenMetrics text to `out`, without the closing `# EOF` (see [`eof`]),
/// so that callers can add families the registry leaves out.
pub fn encode(families: &[MetricFamily], exemplars: &dyn ExemplarSource, out: &mut String) {
    for family in families {
        encode_family(family, exemplars, out);
    }
}

/// Declares a family that has no series yet: its `# HELP` and `# TYPE` lines. `name` is the
/// name the registry uses (a counter's with `_total`).
pub fn declare(name: &str, help: &str, kind: MetricType, out: &mut String) {
    metadata(family_name(name, kind), help, kind, out);
}

/// Ends the exposition.
pub fn eof(out: &mut String) {
    out.push_str("# EOF\n");
}

/// The family name of the `# TYPE` and `# HELP` lines: a counter's loses `_total`.
fn family_name(name: &str, kind: MetricType) -> &str {
    match kind {
        MetricType::COUNTER => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

fn metadata(name: &str, help: &str, kind: MetricType, out: &mut String) {
    let kind = match kind {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "unknown",
    };
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if !help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape(help, out);
        out.push('\n');
    }
}

fn encode_family(family: &MetricFamily, exemplars: &dyn ExemplarSource, out: &mut String) {
    let name = family.name();
    let kind = family.get_field_type();
    if kind == MetricType::UNTYPED {
        // The crate makes none (its own text encoder refuses them), and their values are
        // deprecated protobuf-only accessors.
        return;
    }
    let base = family_name(name, kind);
    metadata(base, family.help(), kind, out);
    for metric in family.get_metric() {
        match kind {
            MetricType::COUNTER => {
                // A counter not named `..._total` gets the suffix its sample must have.
                let total = format!("{base}_total");
                let value = metric.get_counter().get_value();
                let exemplar = exemplars.counter(name, metric);
                sample(out, &total, metric, None, value, exemplar.map(|e| (e, 1.0)));
            }
            MetricType::GAUGE => sample(
                out,
                name,
                metric,
                None,
                metric.get_gauge().get_value(),
                None,
            ),
            // Left out above: the crate has no untyped collectors.
            MetricType::UNTYPED => {}
            MetricType::HISTOGRAM => histogram(out, name, metric, exemplars),
            MetricType::SUMMARY => summary(out, name, metric),
        }
    }
}

fn histogram(out: &mut String, name: &str, metric: &Metric, exemplars: &dyn ExemplarSource) {
    let histogram = metric.get_histogram();
    let by_bucket = exemplars.buckets(name, metric).unwrap_or_default();
    let exemplar = |i: usize| by_bucket.get(i).copied().flatten().map(|e| (e, e.value));
    let bucket = format!("{name}_bucket");
    let mut inf_seen = false;
    let buckets = histogram.get_bucket();
    for (i, b) in buckets.iter().enumerate() {
        let bound = b.upper_bound();
        inf_seen |= bound == f64::INFINITY;
        let le = canonical(bound);
        let count = b.cumulative_count() as f64;
        sample(out, &bucket, metric, Some(("le", &le)), count, exemplar(i));
    }
    let count = histogram.get_sample_count() as f64;
    if !inf_seen {
        sample(
            out,
            &bucket,
            metric,
            Some(("le", "+Inf")),
            count,
            exemplar(buckets.len()),
        );
    }
    sample(
        out,
        &format!("{name}_sum"),
        metric,
        None,
        histogram.get_sample_sum(),
        None,
    );
    sample(out, &format!("{name}_count"), metric, None, count, None);
}

fn summary(out: &mut String, name: &str, metric: &Metric) {
    let summary = metric.get_summary();
    for q in summary.get_quantile() {
        let quantile = canonical(q.quantile());
        sample(
            out,
            name,
            metric,
            Some(("quantile", &quantile)),
            q.value(),
            None,
        );
    }
    sample(
        out,
        &format!("{name}_sum"),
        metric,
        None,
        summary.sample_sum(),
        None,
    );
    let count = summary.sample_count() as f64;
    sample(out, &format!("{name}_count"), metric, None, count, None);
}

/// One sample line: name, labels (plus `extra`), value, the metric's timestamp in seconds when
/// it has one, and the exemplar with the value it shows.
fn sample(
    out: &mut String,
    name: &str,
    metric: &Metric,
    extra: Option<(&str, &str)>,
    value: f64,
    exemplar: Option<(Stored, f64)>,
) {
    out.push_str(name);
    let labels = metric
        .get_label()
        .iter()
        .map(|pair| (pair.name(), pair.value()))
        .chain(extra);
    write_labels(labels, out);
    out.push(' ');
    number(value, out);
    let timestamp_ms = metric.timestamp_ms();
    if timestamp_ms != 0 {
        let _ = write!(out, " {}", timestamp_ms as f64 / 1000.0);
    }
    if let Some((stored, shown)) = exemplar {
        out.push_str(" # ");
        exemplar_labels(&stored, out);
        out.push(' ');
        number(shown, out);
        let _ = write!(
            out,
            " {}.{:03}",
            stored.unix_ms / 1000,
            stored.unix_ms % 1000
        );
    }
    out.push('\n');
}

/// `{trace_id="<32 hex>",span_id="<16 hex>"}`: 63 characters of names and values, within the
/// 128 the specification allows an exemplar's label set.
fn exemplar_labels(stored: &Stored, out: &mut String) {
    out.push_str("{trace_id=\"");
    out.push_str(TraceHex::new(&stored.ids.trace_id).as_str());
    out.push_str("\",span_id=\"");
    out.push_str(SpanHex::new(&stored.ids.span_id).as_str());
    out.push_str("\"}");
}

fn write_labels<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>, out: &mut String) {
    let mut separator = '{';
    for (name, value) in labels {
        out.push(separator);
        out.push_str(name);
        out.push_str("=\"");
        escape(value, out);
        out.push('"');
        separator = ',';
    }
    if separator == ',' {
        out.push('}');
    }
}

/// OpenMetrics escaping, for label values and HELP text alike: `\`, newline and `"`.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A sample value: Rust's shortest round-trip rendering (a valid OpenMetrics number), with
/// the specification's spellings of the non-real values.
fn number(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

/// The canonical rendering of an `le` or `quantile` value: Go's shortest `%g`, with `.0`
/// appended when it has neither a point nor an exponent (`0.01`, `1.0`, `10.0`, `1e+06`).
pub fn canonical(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value == 0.0 {
        return "0.0".to_owned();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        // Go's shortest `%g` uses an exponent below 1e-4 and from 1e+06 on.
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let plain = format!("{value}");
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn le_values_are_canonical_numbers() {
        // The specification's examples.
        for (value, text) in [
            (0.0, "0.0"),
            (0.001, "0.001"),
            (0.01, "0.01"),
            (0.025, "0.025"),
            (0.95, "0.95"),
            (1.0, "1.0"),
            (1.7, "1.7"),
            (2.5, "2.5"),
            (10.0, "10.0"),
            (1e-10, "1e-10"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (100_000.0, "100000.0"),
            (1e6, "1e+06"),
            (1e10, "1e+10"),
            (1_234_567.0, "1.234567e+06"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(canonical(value), text, "{value}");
        }
    }
}
