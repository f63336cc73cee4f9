//! `accounting-prometheus`: every request the run sent is counted, summed over every instance
//! Prometheus scrapes for the service's job. One target's `/metrics` sees one replica: behind a
//! Service with several, only Prometheus sees them all.
//!
//! The counter's value per series just before the run's window (the last scrape before it) and
//! after it (once every instance of the job has been scraped after the window ended), per
//! instance; the increments summed over instances per method, path and status, then tallied
//! against the run as `accounting-metrics` does. A counter that went down (a restart) and an
//! instance that appeared or vanished during the window are named, never silently absorbed; a
//! replica Prometheus does not scrape shows as missing increments.

use std::collections::{BTreeMap, BTreeSet};

use super::accounting::{Key, judge, tally};
use super::context::{CheckContext, run_window};
use super::model::{Finding, Outcome};
use crate::sources::prometheus::{InstantSample, Prometheus};

/// The job the contract's dashboards query.
const CONTRACT_JOB: &str = "fastapi-backend";

/// The job whose series hold the request counter: the contract's when it has them, else the
/// only one that has.
async fn job_of(prometheus: &Prometheus) -> Result<String, Outcome> {
    let answer = prometheus
        .query("count by (job) (fastapi_requests_total)", None)
        .await
        .map_err(|e| {
            Outcome::error(
                format!("cannot query Prometheus at {}: {e}", prometheus.base_url()),
                "check the --prometheus URL",
            )
        })?;
    let jobs: BTreeSet<String> = answer
        .data
        .samples()
        .iter()
        .filter_map(|s| s.labels.get("job").cloned())
        .collect();
    if jobs.contains(CONTRACT_JOB) || jobs.is_empty() {
        return Ok(CONTRACT_JOB.to_owned());
    }
    match jobs.iter().collect::<Vec<_>>().as_slice() {
        [only] => Ok((*only).clone()),
        several => Err(Outcome::error(
            format!(
                "fastapi_requests_total comes from several jobs ({}), none named {CONTRACT_JOB}",
                several
                    .iter()
                    .map(|j| j.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "name the service's scrape job fastapi-backend, as the dashboard queries it",
        )),
    }
}

/// The counter per (instance, method, path, status) at `time` (Unix seconds; now when `None`).
async fn counters(
    prometheus: &Prometheus,
    job: &str,
    time: Option<f64>,
) -> Result<BTreeMap<(String, Key), f64>, Outcome> {
    let query = format!("fastapi_requests_total{{job=\"{job}\"}}");
    let answer = prometheus.query(&query, time).await.map_err(|e| {
        Outcome::error(
            format!("cannot query {query}: {e}"),
            "check the --prometheus URL",
        )
    })?;
    let mut values = BTreeMap::new();
    for sample in answer.data.samples() {
        if let Some(key) = series_key(sample) {
            *values.entry(key).or_default() += sample.value;
        }
    }
    Ok(values)
}

fn series_key(sample: &InstantSample) -> Option<(String, Key)> {
    let label = |k: &str| sample.labels.get(k).cloned().unwrap_or_default();
    let status = label("status_code").parse::<u16>().ok()?;
    Some((label("instance"), (label("method"), label("path"), status)))
}

/// `accounting-prometheus`; see the module docs.
pub async fn prometheus(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip(
            "no run report given",
            "pass --run-report FILE from `obsctl load --report FILE`",
        );
    };
    let Some(prometheus) = &ctx.prometheus else {
        return Outcome::skip(
            "no Prometheus given",
            "pass --prometheus URL: it scrapes every replica, where --target sees one",
        );
    };
    let Some(window) = run_window(run) else {
        return Outcome::error(
            "the run report's window does not parse",
            "pass a report written by obsctl load",
        );
    };
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let (start, end) = (unix(window.start), unix(window.end));
    let job = match job_of(prometheus).await {
        Ok(job) => job,
        Err(outcome) => return outcome,
    };
    // Every instance scraped after the last request ended: its counter holds the whole run.
    let freshness = format!("timestamp(up{{job=\"{job}\"}})");
    let scraped_after = ctx
        .poll(|| async {
            let answer = prometheus.query(&freshness, None).await.ok()?;
            let samples = answer.data.samples();
            (!samples.is_empty() && samples.iter().all(|s| s.value > end)).then_some(samples.len())
        })
        .await;
    let Some(instances) = scraped_after else {
        return Outcome::error(
            format!(
                "no scrape of every instance of job {job} after the run's window ended (waited for {freshness} to pass {end})"
            ),
            "raise --timeout beyond a scrape interval, or check that Prometheus scrapes the job",
        );
    };
    let before = match counters(prometheus, &job, Some(start - 0.001)).await {
        Ok(values) => values,
        Err(outcome) => return outcome,
    };
    let after = match counters(prometheus, &job, None).await {
        Ok(values) => values,
        Err(outcome) => return outcome,
    };
    let increments = Increments::between(&before, &after);
    let restarted = restarts(prometheus, &job, start).await;
    let counted = tally(run, increments.per_key.clone());
    let mut findings = judge(&counted, "counter increment", false, ctx.exclusive);
    findings.extend(increments.findings(&restarted));
    let outcome = Outcome::judged(
        findings,
        format!(
            "every one of {} answered requests is counted, summed over the {instances} instances of job {job}",
            counted.total_expected()
        ),
    )
    .evidence(format!(
        "fastapi_requests_total{{job=\"{job}\"}} per instance at {start:.3} (before the run) and after every instance's first scrape past {end:.3}"
    ));
    if increments.appeared.is_empty() {
        return outcome;
    }
    let appeared: Vec<&str> = increments.appeared.iter().map(String::as_str).collect();
    outcome.evidence(format!(
        "instances without series before the run, counted from 0: {}",
        appeared.join(", ")
    ))
}

/// The instances whose process started after `start`: restarted during the run.
async fn restarts(prometheus: &Prometheus, job: &str, start: f64) -> BTreeSet<String> {
    let query = format!("process_start_time_seconds{{job=\"{job}\"}} > {start}");
    prometheus
        .query(&query, None)
        .await
        .map(|answer| {
            answer
                .data
                .samples()
                .iter()
                .filter_map(|s| s.labels.get("instance").cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// The counter's increments over the window, and what makes them doubtful.
#[derive(Debug, Default)]
struct Increments {
    /// Summed over instances.
    per_key: BTreeMap<Key, u64>,
    /// Series whose value went down: (instance, key, before, after).
    decreased: Vec<(String, Key, f64, f64)>,
    /// Instances with series before the window and none after.
    vanished: BTreeSet<String>,
    /// Instances with series after the window and none before.
    appeared: BTreeSet<String>,
}

impl Increments {
    fn between(
        before: &BTreeMap<(String, Key), f64>,
        after: &BTreeMap<(String, Key), f64>,
    ) -> Self {
        let instances = |m: &BTreeMap<(String, Key), f64>| -> BTreeSet<String> {
            m.keys().map(|(i, _)| i.clone()).collect()
        };
        let (was, is) = (instances(before), instances(after));
        let mut out = Self {
            vanished: was.difference(&is).cloned().collect(),
            appeared: is.difference(&was).cloned().collect(),
            ..Self::default()
        };
        for ((instance, key), value) in after {
            let old = before
                .get(&(instance.clone(), key.clone()))
                .copied()
                .unwrap_or(0.0);
            let rose = if *value >= old {
                value - old
            } else {
                // A reset: the requests counted since the restart are all that is left.
                out.decreased
                    .push((instance.clone(), key.clone(), old, *value));
                *value
            };
            *out.per_key.entry(key.clone()).or_default() += rose.round() as u64;
        }
        out
    }

    fn findings(&self, restarted: &BTreeSet<String>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut restarted_or_reset: BTreeSet<&String> = restarted.iter().collect();
        restarted_or_reset.extend(self.decreased.iter().map(|(i, ..)| i));
        if !restarted_or_reset.is_empty() {
            findings.push(
                Finding::new(
                    format!(
                        "{} instances restarted during the run: their counters started again from 0, and what they counted before is lost",
                        restarted_or_reset.len()
                    ),
                    restarted_or_reset.len() as u64,
                    "find why they restarted (a crash, an OOM kill, a rollout); account over a window without restarts",
                )
                .examples(restarted_or_reset.iter().map(|i| format!("instance {i}")))
                .examples(self.decreased.iter().map(|(i, (m, p, s), b, a)| {
                    format!("instance {i}: {m} {p} {s} went from {b} to {a}")
                })),
            );
        }
        if !self.vanished.is_empty() {
            findings.push(
                Finding::new(
                    format!(
                        "{} instances stopped being scraped during the run: their increments are unknown",
                        self.vanished.len()
                    ),
                    self.vanished.len() as u64,
                    "keep every replica scraped through the run (a scale-down or a failing target loses its counts)",
                )
                .examples(self.vanished.iter().map(|i| format!("instance {i}"))),
            );
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str, status: u16) -> Key {
        ("GET".to_owned(), path.to_owned(), status)
    }

    #[test]
    fn increments_sum_over_instances_and_name_resets_and_vanished_instances() {
        let before = BTreeMap::from([
            (("a:1".to_owned(), key("/x", 200)), 10.0),
            (("b:1".to_owned(), key("/x", 200)), 5.0),
            (("gone:1".to_owned(), key("/x", 200)), 7.0),
        ]);
        let after = BTreeMap::from([
            (("a:1".to_owned(), key("/x", 200)), 13.0),
            (("b:1".to_owned(), key("/x", 200)), 2.0),
            (("new:1".to_owned(), key("/x", 404)), 4.0),
        ]);
        let increments = Increments::between(&before, &after);
        assert_eq!(
            increments.per_key,
            BTreeMap::from([(key("/x", 200), 5), (key("/x", 404), 4)])
        );
        assert_eq!(increments.decreased.len(), 1);
        assert!(increments.vanished.contains("gone:1") && increments.appeared.contains("new:1"));
        let findings = increments.findings(&BTreeSet::new());
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(
            findings[0].what.contains("1 instances restarted"),
            "{findings:?}"
        );
    }
}
