//! The `exemplars` check (and what `metrics-endpoint` says of OpenMetrics) against fake targets
//! that negotiate OpenMetrics (<https://prometheus.io/docs/specs/om/open_metrics_spec/>) or
//! not, with exemplars that lead to the run's SERVER spans, to spans that never arrived, to a
//! child span, or to nothing well formed; Tempo and Prometheus answer their documented bodies.

use obsctl::check::context::CheckContext;
use obsctl::check::model::Status;
use obsctl::check::policy::{Overrides, Policy};
use obsctl::check::report::CheckReport;
use obsctl::sources::prometheus::Prometheus;
use obsctl::sources::tempo::Tempo;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::accounting::{RUN_ID, SENT, run_report};
use crate::exposition::contract_body;
use crate::helpers::{
    Asked, FakeServer, PROMETHEUS_TEXT, Reply, SERVICE, assert_check, bounded, client, run_checks,
    target_context,
};
use crate::stack::TRACE_V2;
use crate::traces::{attribute, export, receiver, send, span};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const BUCKETS: [&str; 10] = [
    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
];

/// The trace id of request `seq` of the fixture run.
fn run_trace(seq: u64) -> String {
    format!("{RUN_ID}{seq:016x}")
}

/// An OpenMetrics body of the contract's two families, one series per exemplar, whose first
/// bucket carries `exemplar` (the label set, as written between the braces) when given.
fn openmetrics_body(exemplars: &[Option<String>]) -> String {
    let mut counter = String::from(
        "# TYPE fastapi_requests counter\n# HELP fastapi_requests Total HTTP requests\n",
    );
    let mut histogram = String::from(
        "# TYPE fastapi_request_duration_seconds histogram\n# HELP fastapi_request_duration_seconds HTTP request duration in seconds\n",
    );
    for (i, exemplar) in exemplars.iter().enumerate() {
        let labels = format!(
            r#"method="GET",path="/api/users/{{user_id}}",status_code="{}""#,
            200 + i
        );
        counter.push_str(&format!("fastapi_requests_total{{{labels}}} 1\n"));
        for (b, le) in BUCKETS.iter().enumerate() {
            histogram.push_str(&format!(
                "fastapi_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} 1"
            ));
            if let (0, Some(set)) = (b, exemplar) {
                histogram.push_str(&format!(" # {{{set}}} 0.004 1764063001.005"));
            }
            histogram.push('\n');
        }
        histogram.push_str(&format!(
            "fastapi_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 1\n\
             fastapi_request_duration_seconds_sum{{{labels}}} 0.004\n\
             fastapi_request_duration_seconds_count{{{labels}}} 1\n"
        ));
    }
    format!("{counter}{histogram}# EOF\n")
}

/// `trace_id="..",span_id=".."`.
fn ids(trace_id: &str, span_id: &str) -> Option<String> {
    Some(format!(r#"trace_id="{trace_id}",span_id="{span_id}""#))
}

/// A target answering `openmetrics` when the scraper prefers OpenMetrics, the contract's text
/// otherwise, as prometheus_client's `choose_encoder` does.
async fn negotiating_target(openmetrics: String) -> FakeServer {
    let text = contract_body();
    FakeServer::start(move |asked: &Asked| {
        if asked.path != "/metrics" {
            return Reply::not_found();
        }
        let wants = asked.accept.as_deref().unwrap_or_default();
        if wants.starts_with("application/openmetrics-text") {
            Reply::ok(OPENMETRICS, openmetrics.clone())
        } else {
            Reply::ok(PROMETHEUS_TEXT, text.clone())
        }
    })
    .await
}

/// The fixture run, its SERVER spans (span id `0xab` repeated) for requests `0..arrived`.
async fn run_context(target: &FakeServer, arrived: u64) -> CheckContext {
    let receiver = receiver().await;
    let spans = (0..arrived)
        .map(|seq| {
            let mut id = [0u8; 16];
            for (i, byte) in id.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&run_trace(seq)[2 * i..2 * i + 2], 16).unwrap();
            }
            span(id, 0xab, SpanKind::Server, "GET /api/users/{user_id}")
        })
        .collect();
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(SENT));
    ctx.otlp = Some(receiver);
    ctx
}

fn denying(id: &str) -> Policy {
    let dir = tempfile::tempdir().expect("a temp dir");
    let overrides = Overrides {
        deny: vec![id.to_owned()],
        ..Overrides::default()
    };
    Policy::load(&overrides, dir.path()).expect("a valid policy")
}

#[tokio::test]
async fn a_service_that_only_speaks_the_text_format_warns() {
    let target = FakeServer::exposition(&contract_body()).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "exemplars",
        Status::Warn,
        &["does not offer OpenMetrics", "choose_encoder"],
    );
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Pass,
        &["the text format (no exemplars)"],
    );
}

#[tokio::test]
async fn openmetrics_without_exemplars_warns() {
    let target = negotiating_target(openmetrics_body(&[None, None])).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "exemplars",
        Status::Warn,
        &["none of the 22 buckets of fastapi_request_duration_seconds carries an exemplar"],
    );
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Pass,
        &["valid OpenMetrics", "0 with an exemplar"],
    );
}

#[tokio::test]
async fn exemplars_leading_to_the_runs_server_spans_pass() {
    let body = openmetrics_body(&[
        ids(&run_trace(3), "abababababababab"),
        ids(&run_trace(7), "abababababababab"),
        // A scrape's own request: not a trace of the run, not judged.
        ids("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
    ]);
    let target = negotiating_target(body).await;
    let ctx = run_context(&target, 11).await;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "exemplars",
        Status::Pass,
        &[
            "3 buckets carry exemplars; 2 lead to their request's SERVER span (obsctl's OTLP receiver)",
            "1 exemplars not followed to spans",
        ],
    );
}

#[tokio::test]
async fn exemplars_whose_traces_never_arrived_fail_when_denied() {
    // The service put the caller's trace ids in its exemplars but exported none of those spans
    // (an unsampled span, or spans dropped before export).
    let body = openmetrics_body(&[
        ids(&run_trace(9), "abababababababab"),
        ids(&run_trace(10), "abababababababab"),
    ]);
    let target = negotiating_target(body).await;
    let ctx = run_context(&target, 9).await;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "exemplars",
        Status::Warn,
        &["2 exemplars name traces whose SERVER span never arrived"],
    );
    let denied = bounded(obsctl::check::run(&ctx, &denying("exemplars"))).await;
    let result = assert_check(
        &denied,
        "exemplars",
        Status::Fail,
        &[&format!("trace_id {}", run_trace(9))],
    );
    assert!(result.fails_run(false));
}

#[tokio::test]
async fn an_exemplar_naming_a_child_span_warns() {
    let body = openmetrics_body(&[ids(&run_trace(1), "0101010101010101")]);
    let target = negotiating_target(body).await;
    let report = run_checks(&run_context(&target, 11).await).await;
    assert_check(
        &report,
        "exemplars",
        Status::Warn,
        &["1 exemplars name a span other than their request's SERVER span"],
    );
}

#[tokio::test]
async fn malformed_or_oversized_exemplars_warn_with_their_lines() {
    let long = "x".repeat(120);
    let body = openmetrics_body(&[
        ids("4BF92F3577B34DA6A3CE929D0E0E4736", "00f067aa0ba902b7"),
        Some(r#"span_id="00f067aa0ba902b7""#.to_owned()),
        Some(format!(
            r#"trace_id="4bf92f3577b34da6a3ce929d0e0e4736",user="{long}""#
        )),
    ]);
    let target = negotiating_target(body).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "exemplars",
        Status::Warn,
        &[
            "1 exemplars have a trace_id or span_id that is not lowercase hex",
            "1 exemplars have no trace_id label",
            "over the 128 characters OpenMetrics allows",
            "line 8:",
        ],
    );
}

#[tokio::test]
async fn without_a_span_source_well_formed_exemplars_are_not_judged() {
    let body = openmetrics_body(&[ids("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")]);
    let target = negotiating_target(body).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "exemplars",
        Status::Skip,
        &["no span source", "--tempo"],
    );
}

/// A Tempo that has trace 4bf92f35... (SERVER span 00f067aa0ba902b7) and nothing else.
async fn fake_tempo() -> FakeServer {
    FakeServer::start(|asked: &Asked| match asked.path.as_str() {
        "/ready" => Reply::ok("text/plain; charset=utf-8", "ready\n"),
        "/api/v2/traces/4bf92f3577b34da6a3ce929d0e0e4736" => Reply::json(TRACE_V2),
        _ => Reply::with(404, "text/plain; charset=utf-8", "trace not found\n"),
    })
    .await
}

/// The checks' verdicts on a target whose one exemplar is `exemplar`, with [`fake_tempo`] as
/// the span source.
async fn judged_through_tempo(exemplar: Option<String>) -> CheckReport {
    let target = negotiating_target(openmetrics_body(&[exemplar])).await;
    let tempo = fake_tempo().await;
    let mut ctx = target_context(&target.url());
    ctx.tempo = Some(Tempo::new(client(), tempo.url()));
    run_checks(&ctx).await
}

#[tokio::test]
async fn tempo_finds_an_exemplars_trace_by_id() {
    let report =
        judged_through_tempo(ids("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")).await;
    assert_check(
        &report,
        "exemplars",
        Status::Pass,
        &["1 lead to their request's SERVER span (Tempo)"],
    );
}

#[tokio::test]
async fn an_exemplar_trace_tempo_never_gets_warns() {
    let report =
        judged_through_tempo(ids("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")).await;
    assert_check(
        &report,
        "exemplars",
        Status::Warn,
        &["1 exemplars name traces whose SERVER span never arrived"],
    );
}

/// A Prometheus answering `/api/v1/query_exemplars` with `data`, in the documented envelope
/// (<https://prometheus.io/docs/prometheus/latest/querying/api/#querying-exemplars>).
async fn fake_prometheus(data: &'static str) -> FakeServer {
    FakeServer::start(move |asked: &Asked| match asked.path.as_str() {
        "/api/v1/query_exemplars" => {
            assert_eq!(
                asked.param("query"),
                Some("fastapi_request_duration_seconds_bucket")
            );
            Reply::json(&format!(r#"{{"status":"success","data":{data}}}"#))
        }
        _ => Reply::not_found(),
    })
    .await
}

const STORED: &str = r#"[{
  "seriesLabels": {"__name__": "fastapi_request_duration_seconds_bucket", "job": "fastapi-backend",
                   "le": "0.01", "method": "GET", "path": "/api/users/{user_id}", "status_code": "200"},
  "exemplars": [{"labels": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
                 "value": "0.004", "timestamp": 1764063001.005}]
}]"#;

#[tokio::test]
async fn prometheus_returning_the_exemplars_is_evidence_and_storing_none_warns() {
    let body = openmetrics_body(&[ids("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")]);
    let target = negotiating_target(body).await;
    let tempo = fake_tempo().await;
    for (data, status, said) in [
        (
            STORED,
            Status::Pass,
            "Prometheus returns 1 exemplars of fastapi_request_duration_seconds_bucket from /api/v1/query_exemplars, 1 of them the ones /metrics shows",
        ),
        (
            "[]",
            Status::Warn,
            "returns no exemplar of fastapi_request_duration_seconds_bucket",
        ),
    ] {
        let prometheus = fake_prometheus(data).await;
        let mut ctx = target_context(&target.url());
        ctx.tempo = Some(Tempo::new(client(), tempo.url()));
        ctx.prometheus = Some(Prometheus::new(client(), prometheus.url()));
        let report = run_checks(&ctx).await;
        assert_check(&report, "exemplars", status, &[said]);
    }
}

#[tokio::test]
async fn an_openmetrics_answer_without_eof_fails_metrics_endpoint() {
    let body = openmetrics_body(&[None]).replace("# EOF\n", "");
    let target = negotiating_target(body).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &["invalid OpenMetrics", "does not end with `# EOF`"],
    );
    assert_check(&report, "exemplars", Status::Skip, &["does not parse"]);
}
