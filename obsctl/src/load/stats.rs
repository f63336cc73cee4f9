//! Aggregates samples into HDR histograms (overall and per request name), outcome counts per
//! request template and a [`Timeline`], in memory that does not grow with the run's length
//! (except the timeline's few counters a second) nor with the concrete paths a template renders.

use super::sample::{ErrorKind, Sample};
use super::timeline::Timeline;
use crate::report::histogram::latency;
use crate::report::{
    Histograms, MAX_EXAMPLES, NamedHistogram, RequestCount, Second, Stats, histogram,
};
use crate::scenario::RequestSpec;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Highest latency the histograms track exactly (1 hour, in microseconds); larger values are
/// recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Counts and latency histogram of one set of requests.
#[derive(Debug)]
struct Bucket {
    histogram: Histogram<u64>,
    /// Requests written to an open connection.
    sent: u64,
    /// Requests whose connection could not be opened: they never reached the target.
    unreached: u64,
    not_started: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    error_kinds: BTreeMap<ErrorKind, u64>,
}

impl Bucket {
    fn new() -> Self {
        // Constant, valid bounds (1 µs ..= 1 h, 3 significant digits): this cannot fail.
        let histogram =
            Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds");
        Self {
            histogram,
            sent: 0,
            unreached: 0,
            not_started: 0,
            errors: 0,
            statuses: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
        }
    }

    fn record(&mut self, sample: &Sample) {
        match (sample.sent, sample.outcome.error) {
            (None, _) => self.not_started += 1,
            (Some(_), Some(ErrorKind::Connect)) => self.unreached += 1,
            (Some(_), _) => self.sent += 1,
        }
        if let Some(status) = sample.outcome.status {
            *self.statuses.entry(status).or_default() += 1;
            let micros = u64::try_from(sample.latency().as_micros()).unwrap_or(u64::MAX);
            self.histogram
                .saturating_record(micros.clamp(1, MAX_LATENCY_US));
        }
        if let Some(kind) = sample.outcome.error {
            // A request cut off by the user's stop (Ctrl-C, SIGTERM) is named, not an error of
            // the target's.
            if kind != ErrorKind::Cancelled {
                self.errors += 1;
            }
            *self.error_kinds.entry(kind).or_default() += 1;
        }
    }

    fn stats(&self, duration_s: f64) -> Stats {
        let due = self.sent + self.unreached + self.not_started;
        Stats {
            count: self.sent,
            not_started: self.not_started,
            errors: self.errors,
            error_rate: ratio(self.errors as f64, due as f64),
            achieved_rate: ratio(self.sent as f64, duration_s),
            statuses: self
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors_by_kind: self
                .error_kinds
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), *v))
                .collect(),
            latency_ms: latency(&self.histogram),
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// What a set of requests shows so far ([`Aggregator::so_far`]).
#[derive(Debug, Clone, Copy)]
pub struct SoFar<'a> {
    /// Latencies of the answered requests, microseconds.
    pub histogram: &'a Histogram<u64>,
    /// Requests that came due.
    pub due: u64,
    /// Requests sent.
    pub sent: u64,
    /// Requests in error (not-started included, cancelled excluded).
    pub errors: u64,
}

/// Key of one line of the per-outcome counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CountKey {
    request: usize,
    status: Option<u16>,
    error: Option<ErrorKind>,
}

/// How many requests ended one way, and a few of the concrete paths they went to.
#[derive(Debug, Default)]
struct Tally {
    count: u64,
    examples: Vec<Arc<str>>,
}

/// All statistics of a run, fed one sample at a time.
#[derive(Debug)]
pub struct Aggregator {
    overall: Bucket,
    per_request: Vec<Bucket>,
    /// Per request kind: the path its requests are counted under ([`RequestFactory::template_path`](super::request::RequestFactory::template_path)).
    templates: Vec<Arc<str>>,
    counts: HashMap<CountKey, Tally>,
    timeline: Timeline,
}

impl Aggregator {
    /// An empty aggregator for the request kinds counted under `templates` (one path each), of a
    /// run that started at `start` with a per-request `timeout`.
    pub fn new(templates: Vec<Arc<str>>, start: Instant, timeout: Duration) -> Self {
        Self {
            overall: Bucket::new(),
            per_request: templates.iter().map(|_| Bucket::new()).collect(),
            templates,
            counts: HashMap::new(),
            timeline: Timeline::new(start, timeout),
        }
    }

    /// Records one sample.
    pub fn record(&mut self, sample: Sample) {
        self.overall.record(&sample);
        if let Some(bucket) = self.per_request.get_mut(sample.request) {
            bucket.record(&sample);
        }
        self.timeline.record(&sample);
        let key = CountKey {
            request: sample.request,
            status: sample.outcome.status,
            error: sample.outcome.error,
        };
        let tally = self.counts.entry(key).or_default();
        tally.count += 1;
        let template = self.templates.get(sample.request);
        if let Some(path) = sample.path
            && tally.examples.len() < MAX_EXAMPLES
            && template.is_none_or(|t| **t != *path)
            && !tally.examples.contains(&path)
        {
            tally.examples.push(path);
        }
    }

    /// What the whole run (`None`) or request kind `index` shows so far.
    pub fn so_far(&self, index: Option<usize>) -> Option<SoFar<'_>> {
        let bucket = match index {
            None => &self.overall,
            Some(i) => self.per_request.get(i)?,
        };
        Some(SoFar {
            histogram: &bucket.histogram,
            due: bucket.sent + bucket.unreached + bucket.not_started,
            sent: bucket.sent,
            errors: bucket.errors,
        })
    }

    /// Overall statistics over `duration_s` seconds.
    pub fn overall(&self, duration_s: f64) -> Stats {
        self.overall.stats(duration_s)
    }

    /// Statistics per request kind, in scenario order.
    pub fn per_request(&self, duration_s: f64) -> Vec<Stats> {
        self.per_request
            .iter()
            .map(|b| b.stats(duration_s))
            .collect()
    }

    /// Per-outcome counts, sorted by name, method, path, status and error.
    pub fn counts(&self, specs: &[RequestSpec]) -> Vec<RequestCount> {
        let mut out: Vec<RequestCount> = self
            .counts
            .iter()
            .filter_map(|(key, tally)| {
                let spec = specs.get(key.request)?;
                let mut examples: Vec<String> =
                    tally.examples.iter().map(|p| p.to_string()).collect();
                examples.sort();
                Some(RequestCount {
                    method: spec.method.to_string(),
                    path: self.templates.get(key.request)?.to_string(),
                    name: spec.name.clone(),
                    status: key.status,
                    error: key.error,
                    count: tally.count,
                    examples,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.name, &a.method, &a.path, a.status, a.error)
                .cmp(&(&b.name, &b.method, &b.path, b.status, b.error))
        });
        out
    }

    /// The histograms, serialized (`None` if one could not be encoded, which the report says by
    /// leaving them out rather than failing the run).
    pub fn histograms(&self, specs: &[RequestSpec]) -> Option<Histograms> {
        let by_name = specs
            .iter()
            .zip(&self.per_request)
            .map(|(spec, bucket)| {
                Some(NamedHistogram {
                    name: spec.name.clone(),
                    histogram: histogram::encode(&bucket.histogram).ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Histograms {
            encoding: histogram::ENCODING.to_owned(),
            unit: histogram::UNIT.to_owned(),
            overall: histogram::encode(&self.overall.histogram).ok()?,
            by_name,
        })
    }

    /// The run second by second ([`Timeline::finish`]).
    pub fn timeline(
        self,
        duration_s: f64,
        planned_rate: impl Fn(f64, f64) -> Option<f64>,
    ) -> Vec<Second> {
        self.timeline.finish(duration_s, planned_rate)
    }
}
