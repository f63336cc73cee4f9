//! What checks read from a parsed body: [`MetricFamily`], [`Samples`], [`Sample`] and
//! [`Labels`] are views that borrow the parsed value and resolve its interned names and spans
//! on access, so reading a family costs nothing per sample and no string is copied.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use super::store::{FamilyRecord, LabelRecord, Store};
use super::{MetricType, parse_float};

/// A metric family: its metadata and every sample that belongs to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricFamily<'a> {
    /// The family name (as in `# TYPE`; for undeclared samples, the sample name).
    pub name: &'a str,
    /// The `# HELP` text, unescaped.
    pub help: Option<&'a str>,
    /// The OpenMetrics `# UNIT`, when declared.
    pub unit: Option<&'a str>,
    /// The declared type (`Untyped` when no `# TYPE` line).
    pub kind: MetricType,
    /// Whether a `# TYPE` line declared the type.
    pub type_declared: bool,
    /// The samples, in body order.
    pub samples: Samples<'a>,
}

/// The samples of one family, in body order.
#[derive(Clone, Copy)]
pub struct Samples<'a> {
    store: &'a Store,
    /// `store.samples[start..end]`.
    start: usize,
    end: usize,
}

/// One sample line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name, suffix included (`fastapi_request_duration_seconds_bucket`).
    pub name: &'a str,
    /// The sample's labels, unescaped, by name.
    pub labels: Labels<'a>,
    /// The value (may be NaN or infinite).
    pub value: f64,
    /// The optional timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// 1-based line number in the body, for evidence.
    pub line: usize,
    /// The OpenMetrics exemplar after the sample, if any.
    pub exemplar: Option<Exemplar<'a>>,
}

/// An OpenMetrics exemplar: a label set (`trace_id`, `span_id`, ...), a value and an optional
/// timestamp, referring to one event counted in its sample (a request in a bucket).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar<'a> {
    /// Its labels, unescaped, by name.
    pub labels: Labels<'a>,
    /// The event's value (a bucket's exemplar: the duration observed).
    pub value: f64,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

impl Exemplar<'_> {
    /// The characters of its label names and values together (OpenMetrics allows 128).
    pub fn label_chars(&self) -> usize {
        self.labels
            .iter()
            .map(|(k, v)| k.chars().count() + v.chars().count())
            .sum()
    }
}

/// Label names to values of one sample (or one series), sorted by name. Equal and hashed by
/// content, so label sets from two scrapes compare as maps would.
#[derive(Clone, Copy)]
pub struct Labels<'a> {
    store: &'a Store,
    records: &'a [LabelRecord],
    hide: Hide,
}

/// Labels a series view leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hide {
    Nothing,
    Le,
    LeAndQuantile,
}

/// One histogram series: the samples of a histogram family that share labels (apart from `le`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries<'a> {
    /// The series labels, without `le`.
    pub labels: Labels<'a>,
    /// `(upper bound, cumulative count)` pairs in body order; `le` values that are not numbers
    /// are left out.
    pub buckets: Vec<(f64, f64)>,
    /// The `_sum` sample's value, if present.
    pub sum: Option<f64>,
    /// The `_count` sample's value, if present.
    pub count: Option<f64>,
}

impl<'a> MetricFamily<'a> {
    pub(super) fn new(store: &'a Store, record: &FamilyRecord) -> Self {
        let start = record.start as usize;
        Self {
            name: store.name(record.name),
            help: record.help.map(|span| store.text.get(span)),
            unit: record.unit.map(|span| store.text.get(span)),
            kind: record.kind,
            type_declared: record.type_declared,
            samples: Samples {
                store,
                start,
                end: start + record.len as usize,
            },
        }
    }

    /// Samples whose labels include every pair of `matcher`.
    pub fn samples_matching(
        &self,
        matcher: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = Sample<'a>> + 'a {
        self.samples.iter().filter(move |s| s.matches(matcher))
    }

    /// The sum of values of samples named exactly `name` whose labels include `matcher`.
    pub fn sum_matching(&self, name: &str, matcher: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && s.matches(matcher))
            .map(|s| s.value)
            .sum()
    }

    /// The set of label names used by the family's samples (without `le` and `quantile`).
    pub fn label_names(&self) -> BTreeSet<&'a str> {
        self.samples
            .iter()
            .flat_map(|s| s.labels.with(Hide::LeAndQuantile).keys())
            .collect()
    }

    /// The distinct label sets of the family's series (without `le` and `quantile`), in order of
    /// first appearance: one per time series Prometheus would store for the family.
    pub fn series(&self) -> Vec<Labels<'a>> {
        let mut seen = HashSet::new();
        self.samples
            .iter()
            .map(|s| s.labels.with(Hide::LeAndQuantile))
            .filter(|labels| seen.insert(*labels))
            .collect()
    }

    /// The family's samples grouped as histogram series (by labels without `le`), in order of
    /// first appearance. Meaningful for histogram families; empty buckets otherwise.
    pub fn histogram_series(&self) -> Vec<HistogramSeries<'a>> {
        let mut series: Vec<HistogramSeries<'a>> = Vec::new();
        let mut index: HashMap<Labels<'a>, usize> = HashMap::new();
        for sample in self.samples {
            let labels = sample.labels.with(Hide::Le);
            let i = *index.entry(labels).or_insert_with(|| {
                series.push(HistogramSeries {
                    labels,
                    buckets: Vec::new(),
                    sum: None,
                    count: None,
                });
                series.len() - 1
            });
            let Some(entry) = series.get_mut(i) else {
                continue;
            };
            match sample.name.strip_prefix(self.name) {
                Some("_bucket") => {
                    if let Some(bound) = sample.labels.get("le").and_then(parse_float) {
                        entry.buckets.push((bound, sample.value));
                    }
                }
                Some("_sum") => entry.sum = Some(sample.value),
                Some("_count") => entry.count = Some(sample.value),
                _ => {}
            }
        }
        series
    }
}

impl<'a> Samples<'a> {
    /// How many samples.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The `i`-th sample, in body order.
    pub fn get(&self, i: usize) -> Option<Sample<'a>> {
        if i >= self.len() {
            return None;
        }
        sample(self.store, self.start + i)
    }

    /// The first sample.
    pub fn first(&self) -> Option<Sample<'a>> {
        self.get(0)
    }

    /// The samples, in body order.
    pub fn iter(&self) -> SampleIter<'a> {
        SampleIter {
            store: self.store,
            next: self.start,
            end: self.end,
        }
    }
}

impl<'a> IntoIterator for Samples<'a> {
    type Item = Sample<'a>;
    type IntoIter = SampleIter<'a>;
    fn into_iter(self) -> SampleIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Samples<'a> {
    type Item = Sample<'a>;
    type IntoIter = SampleIter<'a>;
    fn into_iter(self) -> SampleIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Samples<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Samples<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// Iterates over [`Samples`].
#[derive(Clone)]
pub struct SampleIter<'a> {
    store: &'a Store,
    next: usize,
    end: usize,
}

impl<'a> Iterator for SampleIter<'a> {
    type Item = Sample<'a>;

    fn next(&mut self) -> Option<Sample<'a>> {
        if self.next >= self.end {
            return None;
        }
        self.next += 1;
        sample(self.store, self.next - 1)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.saturating_sub(self.next);
        (left, Some(left))
    }
}

impl<'a> DoubleEndedIterator for SampleIter<'a> {
    fn next_back(&mut self) -> Option<Sample<'a>> {
        if self.next >= self.end {
            return None;
        }
        self.end -= 1;
        sample(self.store, self.end)
    }
}

impl ExactSizeIterator for SampleIter<'_> {}

/// The view of `store.samples[index]`.
pub(super) fn sample(store: &Store, index: usize) -> Option<Sample<'_>> {
    let record = store.samples.get(index)?;
    Some(Sample {
        name: store.name(record.name),
        labels: Labels {
            store,
            records: store.labels_of(index),
            hide: Hide::Nothing,
        },
        value: record.value,
        timestamp_ms: store.timestamp(record.line),
        line: record.line as usize,
        exemplar: store.exemplar(record.line).map(|e| Exemplar {
            labels: Labels {
                store,
                records: store.exemplar_labels_of(e),
                hide: Hide::Nothing,
            },
            value: e.value,
            timestamp_ms: e.timestamp_ms,
        }),
    })
}

impl Sample<'_> {
    /// Whether every `(name, value)` pair in `matcher` is among this sample's labels.
    pub fn matches(&self, matcher: &[(&str, &str)]) -> bool {
        matcher
            .iter()
            .all(|(k, v)| self.labels.get(k).is_some_and(|have| have == *v))
    }
}

impl<'a> Labels<'a> {
    fn with(self, hide: Hide) -> Self {
        Self { hide, ..self }
    }

    fn visible(&self) -> impl Iterator<Item = &'a LabelRecord> + use<'a> {
        let (store, hide) = (self.store, self.hide);
        self.records.iter().filter(move |l| match hide {
            Hide::Nothing => true,
            Hide::Le => Some(l.name) != store.le,
            Hide::LeAndQuantile => Some(l.name) != store.le && Some(l.name) != store.quantile,
        })
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Whether label `name` is present.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `(name, value)` pairs, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let store = self.store;
        self.visible()
            .map(move |l| (store.name(l.name), store.text.get(l.value)))
    }

    /// The label names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.iter().map(|(k, _)| k)
    }

    /// The label values, in name order.
    pub fn values(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.iter().map(|(_, v)| v)
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.visible().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.visible().next().is_none()
    }
}

impl PartialEq for Labels<'_> {
    fn eq(&self, other: &Self) -> bool {
        if std::ptr::eq(self.store, other.store) {
            // One body: names are interned, values compared as text.
            let text = &self.store.text;
            return self
                .visible()
                .map(|l| (l.name, text.get(l.value)))
                .eq(other.visible().map(|l| (l.name, text.get(l.value))));
        }
        self.iter().eq(other.iter())
    }
}

impl Eq for Labels<'_> {}

impl Hash for Labels<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for (name, value) in self.iter() {
            name.hash(state);
            value.hash(state);
        }
    }
}

impl fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
