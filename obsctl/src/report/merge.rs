//! One run rebuilt from the reports of its shards (`obsctl load --segment I/N`, merged by
//! `obsctl report merge`): counts summed, the HDR histograms added (so every percentile is the
//! one a single process would have measured over the same requests), timelines aligned on wall
//! time, and the thresholds judged again over the whole run.
//!
//! Refused: a report that is no shard, shards of different runs (run id, scenario, plan or shard
//! count differ), and a segment given twice. Missing segments are not an error: the merged
//! report names them (and fails), since a lost shard's requests are in none of its counts.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::histogram::{self, HistogramError};
use super::{
    Histograms, MAX_EXAMPLES, Merged, NamedHistogram, NamedStats, RequestCount, RunReport, Second,
    Stats, round3, thresholds, verdict,
};

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no shard to merge")]
    Empty,
    /// A report of a whole run.
    #[error(
        "{file} is not a shard (no segment): only reports of `obsctl load --segment I/N` merge"
    )]
    NotShard {
        /// The file.
        file: String,
    },
    /// Shards that differ where shards of one run cannot.
    #[error(
        "{file} is not a shard of the same run as {first}: {what} differs ({theirs} vs {ours})"
    )]
    OtherRun {
        /// The odd file.
        file: String,
        /// The first file.
        first: String,
        /// What differs.
        what: &'static str,
        /// Its value in `file`.
        theirs: String,
        /// Its value in `first`.
        ours: String,
    },
    /// The same segment twice.
    #[error("segment {segment} is given twice: {a} and {b}")]
    Overlap {
        /// The segment.
        segment: String,
        /// One file.
        a: String,
        /// The other.
        b: String,
    },
    /// A shard without histograms (version 1).
    #[error(
        "{file} has no histograms (a version 1 report): shards merge exactly only from version 2"
    )]
    NoHistograms {
        /// The file.
        file: String,
    },
    /// A histogram that does not decode or add.
    #[error("{file}: {error}")]
    Histogram {
        /// The file.
        file: String,
        /// What failed.
        error: HistogramError,
    },
}

/// Merges `shards` (file name, report), in any order, into the report of the whole run.
pub fn merge(shards: Vec<(String, RunReport)>) -> Result<RunReport, MergeError> {
    let mut shards = shards;
    let (first_file, first) = shards.first().ok_or(MergeError::Empty)?.clone();
    for (file, report) in &shards {
        check_same_run(file, report, &first_file, &first)?;
    }
    shards.sort_by_key(|(_, r)| r.segment.map(|s| s.index));
    for pair in shards.windows(2) {
        if pair[0].1.segment == pair[1].1.segment {
            return Err(MergeError::Overlap {
                segment: pair[0].1.segment.map(|s| s.to_string()).unwrap_or_default(),
                a: pair[0].0.clone(),
                b: pair[1].0.clone(),
            });
        }
    }
    let count = first.segment.map_or(1, |s| s.count);
    let present: Vec<u32> = shards
        .iter()
        .filter_map(|(_, r)| r.segment)
        .map(|s| s.index)
        .collect();
    let missing: Vec<u32> = (1..=count).filter(|i| !present.contains(i)).collect();
    let reports: Vec<&RunReport> = shards.iter().map(|(_, r)| r).collect();
    let (start, end) = window(&reports);
    let duration_s = reports.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    let merged_histograms = merge_histograms(&shards)?;
    let overall = merge_stats(
        reports.iter().map(|r| &r.overall),
        &merged_histograms.0,
        duration_s,
    );
    let by_name: Vec<NamedStats> = first
        .by_name
        .iter()
        .zip(&merged_histograms.1)
        .map(|(named, histogram)| NamedStats {
            name: named.name.clone(),
            method: named.method.clone(),
            stats: merge_stats(
                reports.iter().filter_map(|r| {
                    r.by_name
                        .iter()
                        .find(|n| n.name == named.name)
                        .map(|n| &n.stats)
                }),
                histogram,
                duration_s,
            ),
        })
        .collect();
    let results: Vec<_> = first
        .thresholds
        .iter()
        .map(|t| {
            let stats = match &t.request {
                None => Some(&overall),
                Some(name) => by_name.iter().find(|n| &n.name == name).map(|n| &n.stats),
            };
            stats.map_or_else(|| t.clone(), |s| thresholds::reevaluate(t, s))
        })
        .collect();
    let mut targets: Vec<&str> = reports.iter().map(|r| r.target.as_str()).collect();
    targets.dedup();
    let encode = |file: &str, h: &hdrhistogram::Histogram<u64>| {
        histogram::encode(h).map_err(|error| MergeError::Histogram {
            file: file.to_owned(),
            error,
        })
    };
    let histograms = Histograms {
        encoding: histogram::ENCODING.to_owned(),
        unit: histogram::UNIT.to_owned(),
        overall: encode("the merged run", &merged_histograms.0)?,
        by_name: first
            .by_name
            .iter()
            .zip(&merged_histograms.1)
            .map(|(named, h)| {
                Ok(NamedHistogram {
                    name: named.name.clone(),
                    histogram: encode("the merged run", h)?,
                })
            })
            .collect::<Result<_, MergeError>>()?,
    };
    let mut plan = first.plan.clone();
    plan.planned_requests = reports.iter().map(|r| r.plan.planned_requests).sum();
    plan.max_in_flight = reports.iter().map(|r| r.plan.max_in_flight).sum();
    let mut report = RunReport {
        schema_version: super::SCHEMA_VERSION,
        run_id: first.run_id.clone(),
        trace_id_prefix: first.trace_id_prefix.clone(),
        seq_count: reports.iter().map(|r| r.seq_count).sum(),
        sequences: reports.iter().flat_map(|r| r.sequences()).collect(),
        segment: None,
        merged: Some(Merged {
            count,
            present,
            missing,
        }),
        scenario: first.scenario.clone(),
        target: targets.join(", "),
        model: first.model,
        plan,
        window_start: rfc3339(start),
        window_end: rfc3339(end),
        duration_s,
        interrupted: reports.iter().any(|r| r.interrupted),
        aborted: reports.iter().find_map(|r| r.aborted.clone()),
        requests_sent: reports.iter().map(|r| r.requests_sent).sum(),
        requests_not_started: reports.iter().map(|r| r.requests_not_started).sum(),
        requests: merge_counts(&reports),
        overall,
        by_name,
        histograms: Some(histograms),
        timeline: merge_timelines(&reports, start),
        passed: results.iter().all(|r| r.passed),
        thresholds: results,
    };
    report.passed &= verdict::no_success(&report).is_none()
        && report.aborted.is_none()
        && report.merged.as_ref().is_none_or(|m| m.missing.is_empty());
    Ok(report)
}

fn check_same_run(
    file: &str,
    report: &RunReport,
    first_file: &str,
    first: &RunReport,
) -> Result<(), MergeError> {
    let Some(segment) = report.segment else {
        return Err(MergeError::NotShard {
            file: file.to_owned(),
        });
    };
    let differs = |what: &'static str, theirs: String, ours: String| {
        (theirs != ours).then(|| MergeError::OtherRun {
            file: file.to_owned(),
            first: first_file.to_owned(),
            what,
            theirs,
            ours,
        })
    };
    let checks = [
        differs("run id", report.run_id.clone(), first.run_id.clone()),
        differs(
            "shard count",
            segment.count.to_string(),
            first.segment.map_or(0, |s| s.count).to_string(),
        ),
        differs(
            "scenario",
            report.scenario.name.clone(),
            first.scenario.name.clone(),
        ),
        differs(
            "model",
            format!("{:?}", report.model),
            format!("{:?}", first.model),
        ),
        differs(
            "planned duration",
            report.plan.duration_s.to_string(),
            first.plan.duration_s.to_string(),
        ),
        differs(
            "request names",
            names(report).join(", "),
            names(first).join(", "),
        ),
    ];
    if let Some(error) = checks.into_iter().flatten().next() {
        return Err(error);
    }
    if report.histograms.is_none() {
        return Err(MergeError::NoHistograms {
            file: file.to_owned(),
        });
    }
    Ok(())
}

fn names(report: &RunReport) -> Vec<String> {
    report.by_name.iter().map(|n| n.name.clone()).collect()
}

/// The histograms of every shard added: overall, then per request name in the first shard's
/// order.
fn merge_histograms(
    shards: &[(String, RunReport)],
) -> Result<
    (
        hdrhistogram::Histogram<u64>,
        Vec<hdrhistogram::Histogram<u64>>,
    ),
    MergeError,
> {
    let decode = |file: &str, text: &str| {
        histogram::decode(text).map_err(|error| MergeError::Histogram {
            file: file.to_owned(),
            error,
        })
    };
    let mut overall = Vec::new();
    let mut named: BTreeMap<String, Vec<hdrhistogram::Histogram<u64>>> = BTreeMap::new();
    for (file, report) in shards {
        let Some(h) = &report.histograms else {
            return Err(MergeError::NoHistograms { file: file.clone() });
        };
        overall.push(decode(file, &h.overall)?);
        for n in &h.by_name {
            named
                .entry(n.name.clone())
                .or_default()
                .push(decode(file, &n.histogram)?);
        }
    }
    let add = |list: &[hdrhistogram::Histogram<u64>]| -> Result<hdrhistogram::Histogram<u64>, MergeError> {
        let empty = || hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3);
        match histogram::merge(list) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => empty().map_err(|e| MergeError::Histogram {
                file: "the merged run".to_owned(),
                error: HistogramError::Merge(format!("{e:?}")),
            }),
            Err(error) => Err(MergeError::Histogram {
                file: "the merged run".to_owned(),
                error,
            }),
        }
    };
    let first = &shards[0].1;
    let per_name = first
        .by_name
        .iter()
        .map(|n| add(named.get(&n.name).map_or(&[][..], Vec::as_slice)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((add(&overall)?, per_name))
}

/// The statistics of several shards' requests: counts summed, latency from the merged
/// histogram, rates over the merged run's duration.
fn merge_stats<'a>(
    parts: impl Iterator<Item = &'a Stats>,
    histogram: &hdrhistogram::Histogram<u64>,
    duration_s: f64,
) -> Stats {
    let mut sum = Stats {
        count: 0,
        not_started: 0,
        errors: 0,
        error_rate: 0.0,
        achieved_rate: 0.0,
        statuses: BTreeMap::new(),
        errors_by_kind: BTreeMap::new(),
        latency_ms: histogram::latency(histogram),
    };
    for part in parts {
        sum.count += part.count;
        sum.not_started += part.not_started;
        sum.errors += part.errors;
        for (k, v) in &part.statuses {
            *sum.statuses.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &part.errors_by_kind {
            *sum.errors_by_kind.entry(k.clone()).or_default() += v;
        }
    }
    let connect = sum.errors_by_kind.get("connect").copied().unwrap_or(0);
    let due = sum.count + sum.not_started + connect;
    sum.error_rate = if due > 0 {
        sum.errors as f64 / due as f64
    } else {
        0.0
    };
    sum.achieved_rate = if duration_s > 0.0 {
        sum.count as f64 / duration_s
    } else {
        0.0
    };
    sum
}

/// Counts per (name, method, path, status, error) summed, examples pooled.
fn merge_counts(reports: &[&RunReport]) -> Vec<RequestCount> {
    let mut merged: BTreeMap<(String, String, String, Option<u16>, String), RequestCount> =
        BTreeMap::new();
    for request in reports.iter().flat_map(|r| &r.requests) {
        let error = request
            .error
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default();
        let key = (
            request.name.clone(),
            request.method.clone(),
            request.path.clone(),
            request.status,
            error,
        );
        match merged.get_mut(&key) {
            Some(entry) => {
                entry.count += request.count;
                for example in &request.examples {
                    if entry.examples.len() < MAX_EXAMPLES && !entry.examples.contains(example) {
                        entry.examples.push(example.clone());
                    }
                }
                entry.examples.sort();
            }
            None => {
                merged.insert(key, request.clone());
            }
        }
    }
    merged.into_values().collect()
}

/// The first due time and the last end of all shards.
fn window(reports: &[&RunReport]) -> (OffsetDateTime, OffsetDateTime) {
    let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let start = reports.iter().map(|r| parse(&r.window_start)).min();
    let end = reports.iter().map(|r| parse(&r.window_end)).max();
    (
        start.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        end.unwrap_or(OffsetDateTime::UNIX_EPOCH),
    )
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// The shards' timelines on one clock: each shard's seconds shifted by how much later than the
/// first it started (to the nearest second), then summed. Per-second percentiles cannot be
/// added: the merged second shows the highest of the shards' (an upper bound).
fn merge_timelines(reports: &[&RunReport], start: OffsetDateTime) -> Vec<Second> {
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    for report in reports {
        let began = OffsetDateTime::parse(&report.window_start, &Rfc3339).unwrap_or(start);
        let shift = (began - start).as_seconds_f64().round().max(0.0) as u64;
        for second in &report.timeline {
            let t = second.t + shift;
            let entry = seconds.entry(t).or_insert_with(|| Second {
                t,
                planned_rate: Some(0.0),
                achieved_rate: 0.0,
                due: 0,
                sent: 0,
                answered: 0,
                errors: 0,
                not_started: 0,
                p50_ms: None,
                p90_ms: None,
                p99_ms: None,
                max_ms: None,
            });
            entry.planned_rate = match (entry.planned_rate, second.planned_rate) {
                (Some(a), Some(b)) => Some(round3(a + b)),
                _ => None,
            };
            entry.achieved_rate = round3(entry.achieved_rate + second.achieved_rate);
            entry.due += second.due;
            entry.sent += second.sent;
            entry.answered += second.answered;
            entry.errors += second.errors;
            entry.not_started += second.not_started;
            let highest = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            entry.p50_ms = highest(entry.p50_ms, second.p50_ms);
            entry.p90_ms = highest(entry.p90_ms, second.p90_ms);
            entry.p99_ms = highest(entry.p99_ms, second.p99_ms);
            entry.max_ms = highest(entry.max_ms, second.max_ms);
        }
    }
    seconds.into_values().collect()
}
