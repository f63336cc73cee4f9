//! The check registry: every check declared once (id, the checklist's words, signal, the
//! sources it needs, its default level, what it proves, what it catches, and its function).
//! `check --help`, the README table, the JSON and JUnit reports all come from [`CHECKS`].

use futures::future::LocalBoxFuture;

use super::context::CheckContext;
use super::model::{Level, Outcome, Signal};
use super::{
    accounting, accounting_prometheus, accounting_stack, correlation, dashboard, exemplars, load,
    logs, metrics, prometheus, stack, structure, traces, units,
};

/// A check's function: looks at the context's sources, returns what it found.
pub type CheckFn = for<'a> fn(&'a CheckContext) -> LocalBoxFuture<'a, Outcome>;

/// One check, declared once.
pub struct CheckDef {
    /// Stable kebab-case id, e.g. `metrics-endpoint`: CI configurations refer to it.
    pub id: &'static str,
    /// The checklist item's words, or what the check proves beyond it.
    pub title: &'static str,
    /// The signal it concerns.
    pub signal: Signal,
    /// The flags (sources) it needs, as a user types them.
    pub sources: &'static str,
    /// Its level unless the policy says otherwise: `deny` for the checklist and the contract,
    /// `warn` for advice beyond it.
    pub level: Level,
    /// What it proves, one sentence (help and README).
    pub proves: &'static str,
    /// The failures it names (README).
    pub catches: &'static str,
    /// The function.
    pub run: CheckFn,
}

impl std::fmt::Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckDef").field("id", &self.id).finish()
    }
}

/// Every check, in the order of the checklist, then what it implies.
pub static CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "metrics-endpoint",
        title: "/metrics endpoint returns Prometheus metrics",
        signal: Signal::Metrics,
        sources: "--target",
        level: Level::Deny,
        proves: "`/metrics` answers Prometheus text (or OpenMetrics) with its content type, and no series is exposed twice",
        catches: "a JSON-encoded string body (`return generate_latest()`), a wrong content type, HTML, unparsable lines (with line number), duplicate series; asked for OpenMetrics as Prometheus asks, an answer Prometheus would reject (no `# EOF`, exemplars in the text format)",
        run: |ctx| Box::pin(metrics::endpoint(ctx)),
    },
    CheckDef {
        id: "requests-counter",
        title: "Metrics include fastapi_requests_total counter",
        signal: Signal::Metrics,
        sources: "--target",
        level: Level::Deny,
        proves: "`fastapi_requests_total` is a counter with labels exactly `method`, `path`, `status_code`",
        catches: "missing, wrong type, missing or extra labels; declared without series yet is said, not failed",
        run: |ctx| Box::pin(metrics::requests_counter(ctx)),
    },
    CheckDef {
        id: "duration-histogram",
        title: "Metrics include fastapi_request_duration_seconds histogram",
        signal: Signal::Metrics,
        sources: "--target",
        level: Level::Deny,
        proves: "`fastapi_request_duration_seconds` is a histogram with those labels, buckets 0.01 … 10, and consistent values",
        catches: "a summary, other buckets (both lists shown), bucket counts that are not cumulative, `+Inf` bucket unequal to `_count`, a negative or NaN `_sum`",
        run: |ctx| Box::pin(metrics::duration_histogram(ctx)),
    },
    CheckDef {
        id: "duration-units",
        title: "The histogram and the log lines agree on request durations (seconds vs milliseconds)",
        signal: Signal::Metrics,
        sources: "--target + --logs",
        level: Level::Deny,
        proves: "the histogram's mean request (`_sum` / `_count`, seconds) and the log lines' mean `duration_ms` agree within 100x",
        catches: "`observe(duration_ms)` into the seconds histogram, seconds written as `duration_ms`, whole seconds observed (all 0)",
        run: |ctx| Box::pin(units::durations_agree(ctx)),
    },
    CheckDef {
        id: "metrics-cardinality",
        title: "The path label is a route template (bounded series)",
        signal: Signal::Metrics,
        sources: "--target",
        level: Level::Warn,
        proves: "`path` holds route templates of any framework (`{id}`, `:id`, `<int:id>`, `[id]`, `*`), so series stay bounded",
        catches: "raw URLs such as `/api/users/1` (`request.url.path`, as the guide's sample has it): one series per id",
        run: |ctx| Box::pin(metrics::cardinality(ctx)),
    },
    CheckDef {
        id: "logs-json-stdout",
        title: "JSON logs appear in STDOUT with all required fields",
        signal: Signal::Logs,
        sources: "--logs",
        level: Level::Deny,
        proves: "every stdout line is a JSON object with `timestamp`, `level`, `service`, `message`",
        catches: "non-JSON lines (with number), missing keys, another `service`, logs on stderr (Python's `StreamHandler()`, as in the guide's sample)",
        run: |ctx| Box::pin(logs::json_lines(ctx)),
    },
    CheckDef {
        id: "logs-fields",
        title: "Logs include: timestamp, level, service, endpoint, method, status_code, duration_ms",
        signal: Signal::Logs,
        sources: "--logs",
        level: Level::Deny,
        proves: "request lines (lines whose request fields hold request values; `null` is not a request) carry the seven fields with their types",
        catches: "each missing field or wrong type, per kind, with line numbers: a string `\"200\"` status, a string duration",
        run: |ctx| Box::pin(logs::request_fields(ctx)),
    },
    CheckDef {
        id: "logs-level-by-status",
        title: "Request lines are logged at a level that follows the status",
        signal: Signal::Logs,
        sources: "--logs",
        level: Level::Warn,
        proves: "5xx answers are logged at `ERROR`, 4xx at `WARNING`, others at `INFO`",
        catches: "every request at `INFO` (errors invisible to a level filter)",
        run: |ctx| Box::pin(logs::level_by_status(ctx)),
    },
    CheckDef {
        id: "logs-timestamp-format",
        title: "Log timestamps are RFC 3339 in UTC",
        signal: Signal::Logs,
        sources: "--logs",
        level: Level::Warn,
        proves: "`timestamp` is RFC 3339 with a UTC offset, as Loki and Grafana read it",
        catches: "Python's default `2026-01-01 10:00:00,123`, local-time offsets, no offset at all",
        run: |ctx| Box::pin(logs::timestamp_format(ctx)),
    },
    CheckDef {
        id: "traces-otlp",
        title: "Traces are sent to the OTLP endpoint (Tempo at :4317)",
        signal: Signal::Traces,
        sources: "obsctl verify (its receiver), or --tempo",
        level: Level::Deny,
        proves: "the service's spans, with `service.name`, SERVER spans among them, reach an OTLP endpoint",
        catches: "no spans, spans without `service.name`, another service name, no SERVER span",
        run: |ctx| Box::pin(traces::exported(ctx)),
    },
    CheckDef {
        id: "traces-server-spans",
        title: "SERVER spans follow the HTTP semantic conventions",
        signal: Signal::Traces,
        sources: "obsctl verify (its receiver)",
        level: Level::Warn,
        proves: "SERVER spans are named `{METHOD} {route}`, carry the method and status (stable or older names), are Error on 5xx and not on 4xx",
        catches: "raw URLs in span names, no method or status attribute, 5xx spans not marked Error, 4xx spans marked Error",
        run: |ctx| Box::pin(traces::server_span_shape(ctx)),
    },
    CheckDef {
        id: "traces-structure",
        title: "Each request's trace is one tree rooted at the service's SERVER span",
        signal: Signal::Traces,
        sources: "obsctl verify (its receiver) + --run-report",
        level: Level::Deny,
        proves: "in every trace of the run, one SERVER span of the service is the local root (its parent is the caller's span) and every other span's parent arrived",
        catches: "the request span not of kind SERVER, two SERVER spans per request, spans whose parent never arrived (a broken tree in Tempo)",
        run: |ctx| Box::pin(structure::traces_structure(ctx)),
    },
    CheckDef {
        id: "traces-tempo",
        title: "Traces appear in Grafana Tempo",
        signal: Signal::Traces,
        sources: "--tempo",
        level: Level::Deny,
        proves: "Tempo finds the service's traces and returns one by id",
        catches: "not ready, nothing found in the window",
        run: |ctx| Box::pin(stack::tempo(ctx)),
    },
    CheckDef {
        id: "logs-loki",
        title: "Logs appear in Grafana Loki with the service=\"fastapi-backend\" label",
        signal: Signal::Logs,
        sources: "--loki",
        level: Level::Deny,
        proves: "Loki has lines for `{service=\"<name>\"}` in the window",
        catches: "no logs at all (no log shipper, as in the guide's compose file), no `service` label, other values",
        run: |ctx| Box::pin(stack::loki(ctx)),
    },
    CheckDef {
        id: "prometheus-scrape",
        title: "Prometheus scrapes metrics successfully",
        signal: Signal::Metrics,
        sources: "--prometheus",
        level: Level::Deny,
        proves: "a Prometheus target scraping the service is up and the counter is queryable",
        catches: "no such target, target down (with its `lastError`); a target matched by its series rather than its address is said",
        run: |ctx| Box::pin(prometheus::scrape(ctx)),
    },
    CheckDef {
        id: "process-metrics",
        title: "CPU and memory metrics are available",
        signal: Signal::Metrics,
        sources: "--target",
        level: Level::Deny,
        proves: "`process_cpu_seconds_total` and `process_resident_memory_bytes` are exposed",
        catches: "missing (e.g. prometheus_client multiprocess mode without a process collector)",
        run: |ctx| Box::pin(metrics::process(ctx)),
    },
    CheckDef {
        id: "process-metrics-prometheus",
        title: "CPU and memory metrics are queryable in Prometheus",
        signal: Signal::Metrics,
        sources: "--prometheus",
        level: Level::Deny,
        proves: "the same, queryable in Prometheus as the CPU and memory panels query them",
        catches: "no data",
        run: |ctx| Box::pin(prometheus::process(ctx)),
    },
    CheckDef {
        id: "accounting-metrics",
        title: "Every request sent is counted in fastapi_requests_total",
        signal: Signal::Metrics,
        sources: "--run-report + --target",
        level: Level::Deny,
        proves: "the counter, and the histogram's `_count`, rose by exactly the requests sent, per method, route and status",
        catches: "lost or double-counted requests (per series); a duration observed only on success; a counter that goes down between scrapes (several processes with separate registries)",
        run: |ctx| Box::pin(accounting::metrics(ctx)),
    },
    CheckDef {
        id: "accounting-prometheus",
        title: "Every request sent is counted, across every replica Prometheus scrapes",
        signal: Signal::Metrics,
        sources: "--run-report + --prometheus",
        level: Level::Deny,
        proves: "the counter's increments over the run's window, per instance of the job and summed, equal the requests sent per method, route and status",
        catches: "a replica Prometheus does not scrape (its requests missing), lost or double-counted requests, a replica that restarted or vanished during the run",
        run: |ctx| Box::pin(accounting_prometheus::prometheus(ctx)),
    },
    CheckDef {
        id: "accounting-logs",
        title: "Every request sent has its request log line",
        signal: Signal::Logs,
        sources: "--run-report + --logs",
        level: Level::Deny,
        proves: "one request log line per request sent (attributed by the run's trace-id prefix when lines carry trace ids)",
        catches: "lost lines, lines logged twice",
        run: |ctx| Box::pin(accounting::logs(ctx)),
    },
    CheckDef {
        id: "accounting-traces",
        title: "Every request sent has its SERVER span, in the caller's trace",
        signal: Signal::Traces,
        sources: "--run-report + obsctl verify (its receiver)",
        level: Level::Deny,
        proves: "one SERVER span per request, in the trace obsctl started (W3C `traceparent` continued)",
        catches: "lost spans, `traceparent` ignored, the request span of another kind; spans obsctl itself dropped are said to be obsctl's",
        run: |ctx| Box::pin(accounting::traces(ctx)),
    },
    CheckDef {
        id: "accounting-loki",
        title: "Every request sent has its request line in Loki",
        signal: Signal::Logs,
        sources: "--run-report + --loki",
        level: Level::Deny,
        proves: "Loki counts (a metric query over the run's window, filtered to its trace-id prefix) one request line per request sent, per method, endpoint and status",
        catches: "lines lost by the shipper or Loki, lines logged twice, a run's lines without its trace ids",
        run: |ctx| Box::pin(accounting_stack::loki(ctx)),
    },
    CheckDef {
        id: "accounting-tempo",
        title: "Every request sent has its trace in Tempo",
        signal: Signal::Traces,
        sources: "--run-report + --tempo",
        level: Level::Deny,
        proves: "each trace id the run numbered (all, or a uniform sample past 1,000) is in Tempo with a SERVER span of the service",
        catches: "traces lost between the service and Tempo, traceparent not continued, request spans of another kind",
        run: |ctx| Box::pin(accounting_stack::tempo(ctx)),
    },
    CheckDef {
        id: "logs-trace-correlation",
        title: "Request log lines carry their request's trace_id and span_id",
        signal: Signal::Logs,
        sources: "--logs + --run-report + obsctl verify (its receiver)",
        level: Level::Warn,
        proves: "each of the run's request lines carries the `trace_id` and `span_id` of its request's SERVER span, as lowercase hex, so a log line leads to its trace",
        catches: "no `trace_id`, a child span's or a made-up `span_id`, all-zero ids (logged after the span ended), upper-case or integer ids",
        run: |ctx| Box::pin(correlation::logs_to_traces(ctx)),
    },
    CheckDef {
        id: "exemplars",
        title: "Latency buckets carry exemplars that lead to their requests' traces",
        signal: Signal::Metrics,
        sources: "--target (+ obsctl verify (its receiver) or --tempo; + --prometheus)",
        level: Level::Warn,
        proves: "asked as Prometheus asks, `/metrics` answers OpenMetrics whose `fastapi_request_duration_seconds` buckets carry exemplars with the `trace_id` and `span_id` of a request's SERVER span that arrived (receiver, or Tempo by id), and Prometheus returns them from `/api/v1/query_exemplars`",
        catches: "no OpenMetrics offered, no exemplars, ids that are not 32/16 lowercase hex, label sets over 128 characters, values above their bucket, traces that never arrived (unsampled or made-up ids), a child span's id, a Prometheus without `--enable-feature=exemplar-storage`",
        run: |ctx| Box::pin(exemplars::exemplars(ctx)),
    },
    CheckDef {
        id: "grafana",
        title: "Grafana is up with the Prometheus, Loki and Tempo datasources and the 8-panel dashboard",
        signal: Signal::Dashboard,
        sources: "--grafana",
        level: Level::Deny,
        proves: "Grafana is up with healthy Prometheus, Loki and Tempo datasources and the 8-panel dashboard",
        catches: "a missing or failing datasource, a missing dashboard or panel, 401 (pass `--grafana-user`)",
        run: |ctx| Box::pin(dashboard::grafana(ctx)),
    },
    CheckDef {
        id: "dashboard-panels",
        title: "Every dashboard panel's query returns data",
        signal: Signal::Dashboard,
        sources: "--dashboard + --prometheus / --loki",
        level: Level::Deny,
        proves: "every panel query of the dashboard returns data",
        catches: "each panel without data, with its query",
        run: |ctx| Box::pin(dashboard::dashboard_panels(ctx)),
    },
    CheckDef {
        id: "load-thresholds",
        title: "The scenario's thresholds hold",
        signal: Signal::Load,
        sources: "--run-report, or obsctl verify",
        level: Level::Deny,
        proves: "every threshold of the scenario (latency percentiles, error rate, minimum rate) held over the run",
        catches: "each threshold missed, with its limit and what was measured; a run in which no request got an answer",
        run: |ctx| Box::pin(load::thresholds(ctx)),
    },
    CheckDef {
        id: "load-expected-status",
        title: "Every request got a status its scenario expects",
        signal: Signal::Load,
        sources: "--run-report, or obsctl verify",
        level: Level::Deny,
        proves: "each request's answer is in its scenario `expect` list (2xx/3xx when none is given)",
        catches: "each request name answered otherwise, with the statuses seen; connection errors and timeouts",
        run: |ctx| Box::pin(load::expected_status(ctx)),
    },
];

/// The check with `id`, if there is one.
pub fn find(id: &str) -> Option<&'static CheckDef> {
    CHECKS.iter().find(|c| c.id == id)
}

/// The ids of every check, comma-separated (for error messages).
pub fn ids() -> String {
    CHECKS.iter().map(|c| c.id).collect::<Vec<_>>().join(", ")
}

/// The list of checks for `check --help`: id, default level and sources, one line each.
pub fn help_table() -> String {
    let width = CHECKS.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in CHECKS {
        out.push_str(&format!(
            "  {:<width$}  {:<4}  {}\n",
            check.id,
            check.level.name(),
            check.sources
        ));
    }
    out
}

/// The README's table of checks, in Markdown.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| id | default level | proves | sources | what it names |\n|---|---|---|---|---|\n",
    );
    for check in CHECKS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            check.id,
            check.level.name(),
            check.proves,
            check.sources,
            check.catches
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- checks:begin -->\n";
    const END: &str = "<!-- checks:end -->";

    /// README.md's table of checks is generated from the registry; `OBSCTL_BLESS=1 cargo test
    /// -p obsctl --lib registry` writes it after a change.
    #[test]
    fn the_readme_table_is_the_registry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md is readable");
        let start = readme
            .find(BEGIN)
            .expect("README.md has the checks:begin marker")
            + BEGIN.len();
        let end = readme
            .find(END)
            .expect("README.md has the checks:end marker");
        let want = markdown_table();
        if readme[start..end] == want {
            return;
        }
        if std::env::var_os("OBSCTL_BLESS").is_some() {
            let updated = format!("{}{want}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, updated).expect("README.md is writable");
            return;
        }
        panic!(
            "README.md's table of checks differs from the registry: run \
             OBSCTL_BLESS=1 cargo test -p obsctl --lib registry\nexpected:\n{want}"
        );
    }

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for check in CHECKS {
            assert!(seen.insert(check.id), "duplicate id {}", check.id);
            assert!(
                check
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                check.id
            );
            for text in [check.title, check.sources, check.proves, check.catches] {
                assert!(!text.trim().is_empty(), "{} is not documented", check.id);
                assert!(
                    !text.contains('|'),
                    "{}: `|` breaks the README table",
                    check.id
                );
            }
        }
    }
}
