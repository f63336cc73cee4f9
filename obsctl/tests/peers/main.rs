//! Peers from other ecosystems (examples/: Express, Fastify, FastAPI, Flask, Django, aiohttp),
//! verified end to end: the real obsctl starts each one with `verify --spawn`, replays the
//! built-in scenario against it with a real Prometheus when one is installed, and its verdict
//! must be the one the peer was written to earn. Slow (a run takes tens of seconds) and
//! serialised: one peer at a time.
//! A peer whose runtime is not installed is skipped, with the command that installs it, except
//! under CI (the `CI` environment variable), where it fails.

mod helpers;

use helpers::{aiohttp, describe, django, express, fastapi, fastify, flask, serial, text, verify};

/// The FastAPI reference service, one uvicorn worker.
const UVICORN_MAIN: &str =
    "exec ../.venv/bin/uvicorn main:app --host $HOST --port $PORT --no-access-log";

/// The same service under two uvicorn workers, each with its own prometheus_client registry.
const UVICORN_MAIN_TWO_WORKERS: &str =
    "exec ../.venv/bin/uvicorn main:app --host $HOST --port $PORT --workers 2 --no-access-log";

/// The spec's code verbatim.
const UVICORN_SPEC_LITERAL: &str =
    "exec ../.venv/bin/uvicorn spec_literal:app --host $HOST --port $PORT --no-access-log";

/// The spec's code with its outright bugs fixed, its questionable choices kept.
const UVICORN_SPEC_FIXED: &str =
    "exec ../.venv/bin/uvicorn spec_fixed:app --host $HOST --port $PORT --no-access-log";

/// The advice the fixed spec still ignores: reported as warnings, failed only under --strict.
const SPEC_FIXED_ADVICE: [&str; 3] = [
    "metrics-cardinality",
    "logs-level-by-status",
    "logs-trace-correlation",
];

#[test]
fn an_express_service_with_colon_route_templates_passes() {
    let Some(dir) = express() else { return };
    let _serial = serial();
    verify(&dir, "exec node server.js", &[]).assert_passes();
}

/// Node's `cluster` module with 2 worker processes sharing the port: each worker has its own
/// prom-client registry and OpenTelemetry SDK, and `/metrics` answers the sum of all workers,
/// which the primary aggregates with prom-client's `AggregatorRegistry`.
#[test]
fn an_express_service_under_node_cluster_with_aggregated_metrics_passes() {
    let Some(dir) = express() else { return };
    let _serial = serial();
    verify(&dir, "exec node cluster.js", &[]).assert_passes();
}

/// The same cluster with the mistake teams ship: each worker serves its own registry.
#[test]
fn node_cluster_workers_with_separate_registries_are_named() {
    let Some(dir) = express() else { return };
    let _serial = serial();
    let verdict = verify(&dir, "PER_WORKER_METRICS=1 exec node cluster.js", &[]);
    verdict.assert_exit(1);
    assert_several_processes_named(&verdict);
}

/// Fastify 5, one process: its own pino logger reshaped for the contract with Fastify's request
/// logging off, route templates from `request.routeOptions.url` (`/api/users/:user_id`), and
/// the JSON parse, body limit and schema errors of Fastify's error handler answered as JSON.
#[test]
fn a_fastify_service_passes() {
    let Some(dir) = fastify() else { return };
    let _serial = serial();
    verify(&dir, "exec node server.js", &[]).assert_passes();
}

#[test]
fn the_fastapi_reference_service_under_one_uvicorn_worker_passes() {
    let Some(dir) = fastapi() else { return };
    let _serial = serial();
    verify(&dir, UVICORN_MAIN, &[]).assert_passes();
}

#[test]
fn two_uvicorn_workers_sharing_prometheus_multiprocess_mode_pass() {
    let Some(dir) = fastapi() else { return };
    let _serial = serial();
    verify(&dir, "exec ./run_multiprocess.sh", &[]).assert_passes();
}

#[test]
fn a_flask_service_under_gunicorn_passes() {
    let Some(dir) = flask() else { return };
    let _serial = serial();
    verify(&dir, "exec ../.venv/bin/gunicorn app:app", &[]).assert_passes();
}

/// Two gunicorn worker processes with threads, prometheus_client multiprocess mode, a tracer
/// provider per worker (post_fork), and Django's route templates without a leading slash
/// (`api/users/<int:user_id>`, `metrics`) as the `path` label.
#[test]
fn a_django_service_under_gunicorn_with_two_workers_and_multiprocess_metrics_passes() {
    let Some(dir) = django() else { return };
    let _serial = serial();
    verify(&dir, "exec ./run.sh", &[]).assert_passes();
}

/// aiohttp's own server and middlewares, which see 404s, 405s and 413s as raised
/// `HTTPException`s, and its canonical resource templates (`/api/users/{user_id}`, from the
/// route `/api/users/{user_id:[0-9]+}`) as the `path` label.
#[test]
fn an_aiohttp_service_passes() {
    let Some(dir) = aiohttp() else { return };
    let _serial = serial();
    verify(&dir, "exec ../.venv/bin/python app.py", &[]).assert_passes();
}

#[test]
fn the_spec_with_its_outright_bugs_fixed_passes_with_warnings_and_fails_under_strict() {
    let Some(dir) = fastapi() else { return };
    let _serial = serial();

    let verdict = verify(&dir, UVICORN_SPEC_FIXED, &[]);
    verdict.assert_passes();
    let warned = verdict.ids_with_status("warn");
    for id in SPEC_FIXED_ADVICE {
        let check = verdict.check(id);
        assert!(
            warned.contains(&id) && check["level"] == "warn",
            "{id} should warn at level warn (warned: {warned:?}):\n{}",
            describe(check)
        );
    }

    let strict = verify(&dir, UVICORN_SPEC_FIXED, &["--strict"]);
    strict.assert_exit(1);
    for id in SPEC_FIXED_ADVICE {
        let check = strict.check(id);
        assert!(
            check["status"] == "fail",
            "under --strict, {id} should fail:\n{}",
            describe(check)
        );
    }
}

#[test]
fn the_spec_taken_literally_fails_on_contract_breaks_only() {
    let Some(dir) = fastapi() else { return };
    let _serial = serial();

    let verdict = verify(&dir, UVICORN_SPEC_LITERAL, &[]);
    verdict.assert_exit(1);
    let advice_failed: Vec<String> = verdict
        .checks()
        .iter()
        .filter(|check| check["status"] == "fail" && check["default_level"] != "deny")
        .map(describe)
        .collect();
    assert!(
        advice_failed.is_empty(),
        "only checks that deny by default may fail, but these failed:\n{}",
        advice_failed.join("")
    );

    let endpoint = verdict.check("metrics-endpoint");
    assert!(
        endpoint["status"] == "fail" && text(endpoint, "detail").contains("JSON string"),
        "metrics-endpoint should fail on the JSON-encoded /metrics body:\n{}",
        describe(endpoint)
    );
    let stdout_logs = verdict.check("logs-json-stdout");
    assert!(
        stdout_logs["status"] == "fail" && text(stdout_logs, "detail").contains("stderr"),
        "logs-json-stdout should fail, naming the JSON lines on stderr:\n{}",
        describe(stdout_logs)
    );
    let cardinality = verdict.check("metrics-cardinality");
    assert!(
        cardinality["status"] != "fail",
        "metrics-cardinality is advice: it must not fail without --strict:\n{}",
        describe(cardinality)
    );
}

#[test]
fn two_uvicorn_workers_with_separate_registries_are_named() {
    let Some(dir) = fastapi() else { return };
    let _serial = serial();

    let verdict = verify(&dir, UVICORN_MAIN_TWO_WORKERS, &[]);
    verdict.assert_exit(1);
    assert_several_processes_named(&verdict);
}

/// `accounting-metrics` fails, naming several processes with separate registries as the cause.
fn assert_several_processes_named(verdict: &helpers::Verdict) {
    let accounting = verdict.check("accounting-metrics");
    let named = accounting["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|finding| text(finding, "what").starts_with("several processes answer /metrics"));
    assert!(
        accounting["status"] == "fail" && named,
        "accounting-metrics should fail, naming the processes with separate registries:\n{}",
        describe(accounting)
    );
}
