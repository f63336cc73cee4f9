//! Exposition bodies for fake targets, written in the Prometheus text format 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>): the
//! contract's families, and variants with exactly one defect each.

/// The contract's bucket upper bounds (DESIGN.md, "Metrics"), `+Inf` excluded.
pub const CONTRACT_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// prometheus_client's `Histogram.DEFAULT_BUCKETS`, what a Python histogram gets when no buckets
/// are given (<https://prometheus.github.io/client_python/instrumenting/histogram/>).
pub const PYTHON_DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// One request series: method, path label, status code, requests counted.
pub type Series<'a> = (&'a str, &'a str, u16, u64);

/// A little traffic as a template-labelling service counts it.
pub const TRAFFIC: &[Series<'static>] = &[
    ("GET", "/api/users/{user_id}", 200, 3),
    ("GET", "/api/users/{user_id}", 404, 1),
    ("POST", "/api/users", 201, 1),
    ("GET", "/metrics", 200, 1),
    ("GET", "<unmatched>", 404, 1),
];

/// The body of a service that honours the whole contract.
pub fn contract_body() -> String {
    [
        requests_counter(TRAFFIC),
        duration_histogram(&CONTRACT_BUCKETS, TRAFFIC),
        process_metrics(),
    ]
    .concat()
}

/// `{k="v",...}` with values escaped as the format requires (`\\`, `\"`, `\n`).
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// A family `name` of type `kind` whose samples (named `name`) have exactly the given labels.
pub fn family(name: &str, kind: &str, rows: &[(&[(&str, &str)], f64)]) -> String {
    let mut out = format!("# HELP {name} Total HTTP requests\n# TYPE {name} {kind}\n");
    for (pairs, value) in rows {
        out.push_str(&format!("{name}{} {value}\n", labels(pairs)));
    }
    out
}

/// `fastapi_requests_total` as a counter with the contract's labels.
pub fn requests_counter(series: &[Series]) -> String {
    let mut out = String::from(
        "# HELP fastapi_requests_total Total HTTP requests\n\
         # TYPE fastapi_requests_total counter\n",
    );
    for (method, path, status, count) in series {
        let status = status.to_string();
        let l = labels(&[("method", method), ("path", path), ("status_code", &status)]);
        out.push_str(&format!("fastapi_requests_total{l} {count}.0\n"));
    }
    out
}

/// `fastapi_request_duration_seconds` as a histogram with `buckets`; every observation is 4 ms.
pub fn duration_histogram(buckets: &[f64], series: &[Series]) -> String {
    let name = "fastapi_request_duration_seconds";
    let mut out =
        format!("# HELP {name} HTTP request duration in seconds\n# TYPE {name} histogram\n");
    for (method, path, status, count) in series {
        let status = status.to_string();
        let base = [
            ("method", *method),
            ("path", *path),
            ("status_code", &status),
        ];
        let bounds = buckets
            .iter()
            .map(|b| format!("{b:?}"))
            .chain(std::iter::once("+Inf".to_owned()));
        for le in bounds {
            let mut with_le = base.to_vec();
            with_le.push(("le", &le));
            out.push_str(&format!("{name}_bucket{} {count}.0\n", labels(&with_le)));
        }
        let l = labels(&base);
        out.push_str(&format!("{name}_sum{l} {}\n", *count as f64 * 0.004));
        out.push_str(&format!("{name}_count{l} {count}.0\n"));
    }
    out
}

/// `fastapi_request_duration_seconds` as a summary (prometheus_client's `Summary`, which exposes
/// only `_sum` and `_count`).
pub fn duration_summary(series: &[Series]) -> String {
    let name = "fastapi_request_duration_seconds";
    let mut out =
        format!("# HELP {name} HTTP request duration in seconds\n# TYPE {name} summary\n");
    for (method, path, status, count) in series {
        let status = status.to_string();
        let l = labels(&[("method", method), ("path", path), ("status_code", &status)]);
        out.push_str(&format!("{name}_count{l} {count}.0\n"));
        out.push_str(&format!("{name}_sum{l} {}\n", *count as f64 * 0.004));
    }
    out
}

/// The standard process collector's CPU and memory families
/// (<https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics>).
pub fn process_metrics() -> String {
    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
     # TYPE process_cpu_seconds_total counter\n\
     process_cpu_seconds_total 0.42\n\
     # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
     # TYPE process_resident_memory_bytes gauge\n\
     process_resident_memory_bytes 2.4576e+07\n\
     # HELP process_open_fds Number of open file descriptors.\n\
     # TYPE process_open_fds gauge\n\
     process_open_fds 12.0\n"
        .to_owned()
}

/// What prometheus_client (Python) 0.2x's `generate_latest()` writes for a FastAPI service that
/// follows the contract, served as `CONTENT_TYPE_LATEST`: the `python_*` and `process_*`
/// collectors, and a `_created` gauge beside each counter and histogram
/// (<https://prometheus.github.io/client_python/instrumenting/counter/>, text format 0.0.4).
pub fn python_client_body() -> String {
    let labels = r#"method="GET",path="/api/users/{user_id}",status_code="200""#;
    let mut out = String::from(
        "# HELP python_gc_objects_collected_total Objects collected during gc\n\
         # TYPE python_gc_objects_collected_total counter\n\
         python_gc_objects_collected_total{generation=\"0\"} 307.0\n\
         python_gc_objects_collected_total{generation=\"1\"} 8.0\n\
         # HELP python_info Python platform information\n\
         # TYPE python_info gauge\n\
         python_info{implementation=\"CPython\",major=\"3\",minor=\"11\",patchlevel=\"4\",version=\"3.11.4\"} 1.0\n\
         # HELP process_virtual_memory_bytes Virtual memory size in bytes.\n\
         # TYPE process_virtual_memory_bytes gauge\n\
         process_virtual_memory_bytes 2.31407616e+08\n\
         # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
         # TYPE process_resident_memory_bytes gauge\n\
         process_resident_memory_bytes 5.1298304e+07\n\
         # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
         # TYPE process_start_time_seconds gauge\n\
         process_start_time_seconds 1.76406300012e+09\n\
         # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\n\
         process_cpu_seconds_total 1.23\n",
    );
    out.push_str(&format!(
        "# HELP fastapi_requests_total Total HTTP requests\n\
         # TYPE fastapi_requests_total counter\n\
         fastapi_requests_total{{{labels}}} 3.0\n\
         # HELP fastapi_requests_created Total HTTP requests\n\
         # TYPE fastapi_requests_created gauge\n\
         fastapi_requests_created{{{labels}}} 1.7640630041e+09\n\
         # HELP fastapi_request_duration_seconds HTTP request duration in seconds\n\
         # TYPE fastapi_request_duration_seconds histogram\n"
    ));
    for le in CONTRACT_BUCKETS
        .iter()
        .map(|b| format!("{b:?}"))
        .chain(std::iter::once("+Inf".to_owned()))
    {
        out.push_str(&format!(
            "fastapi_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} 3.0\n"
        ));
    }
    out.push_str(&format!(
        "fastapi_request_duration_seconds_count{{{labels}}} 3.0\n\
         fastapi_request_duration_seconds_sum{{{labels}}} 0.0123\n\
         # HELP fastapi_request_duration_seconds_created HTTP request duration in seconds\n\
         # TYPE fastapi_request_duration_seconds_created gauge\n\
         fastapi_request_duration_seconds_created{{{labels}}} 1.7640630041e+09\n"
    ));
    out
}

/// The counter, the histogram (every observation 4 ms) and the process metrics for `series`.
pub fn exposition_of(series: &[Series]) -> String {
    [
        requests_counter(series),
        duration_histogram(&CONTRACT_BUCKETS, series),
        process_metrics(),
    ]
    .concat()
}
