//! TLS end to end, no mocks: a CA and certificates made here (rcgen), real HTTPS servers
//! (hyper over tokio-rustls on 127.0.0.1:0), and obsctl's own clients: `obsctl load`'s hyper
//! connections and the reqwest client every source adapter shares.

use std::time::Duration;

use obsctl::sources::grafana::Grafana;
use obsctl::sources::http::{HttpClient, HttpOptions, SourceError};
use obsctl::sources::loki::Loki;
use obsctl::sources::prometheus::{Prometheus, PrometheusError};
use obsctl::sources::target::MetricsEndpoint;
use obsctl::sources::tempo::{SearchFilter, Tempo, TraceSearch};
use obsctl::tls::{PemFile, TlsConfig, TlsOptions};

use crate::helpers::{Reply, bounded};
use crate::tls_support::{HttpsServer, Pki, obsctl, said};

/// A client trusting `pki`'s CA (as `--cacert`), with `pki`'s client certificate when `mtls`.
fn client(pki: &Pki, mtls: bool) -> HttpClient {
    let pem = |path: &std::path::Path, flag: &str| Some(PemFile::new(path, flag));
    let options = TlsOptions {
        cacert: pem(&pki.ca, "--cacert"),
        cert: if mtls {
            pem(&pki.client_cert, "--cert")
        } else {
            None
        },
        key: if mtls {
            pem(&pki.client_key, "--key")
        } else {
            None
        },
        insecure: false,
    };
    let tls = TlsConfig::load(&options).expect("the test PKI loads");
    HttpClient::with_tls(
        HttpOptions {
            timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            ..HttpOptions::default()
        },
        &tls,
    )
    .expect("the client builds")
}

/// `obsctl load` sending a plain GET to `url` for half a second, quietly, with `extra` flags.
async fn load(pki: &Pki, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "load",
        "--target",
        url,
        "--rps",
        "20",
        "--duration",
        "500ms",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    // The PKI's directory has no scenarios/smoke.toml: the built-in GET is sent.
    obsctl(pki.dir.path(), &args, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_reaches_an_https_target_signed_by_the_cacert() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki, false, |_| Reply::json("{}")).await;
    let ca = pki.ca.display().to_string();
    let out = load(&pki, &server.url(), &["--cacert", &ca]).await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let seen = server.seen();
    assert!(seen.len() >= 5, "{} requests: {}", seen.len(), said(&out));
    // The run's tags travel inside TLS like over plain HTTP.
    assert!(seen.iter().all(|s| s.headers.contains_key("traceparent")));
    assert!(said(&out).contains(" 200"), "{}", said(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_without_the_cacert_names_the_certificate_problem_and_sends_nothing() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki, false, |_| Reply::json("{}")).await;
    let out = load(&pki, &server.url(), &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );
    assert!(stderr.contains("pass --cacert FILE"), "{stderr}");
    assert!(server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_with_insecure_skips_verification_and_says_so_once() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki, false, |_| Reply::json("{}")).await;
    let out = load(&pki, &server.url(), &["--insecure"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!server.seen().is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("certificates are not verified").count(),
        1,
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_presents_the_client_certificate_a_server_requires() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki, true, |_| Reply::json("{}")).await;
    let (ca, cert, key) = (
        pki.ca.display().to_string(),
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
    );
    let out = load(
        &pki,
        &server.url(),
        &["--cacert", &ca, "--cert", &cert, "--key", &key],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(server.seen().len() >= 5, "{}", said(&out));

    let without = load(&pki, &server.url(), &["--cacert", &ca]).await;
    assert_eq!(without.status.code(), Some(2), "{}", said(&without));
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(stderr.contains("client certificate"), "{stderr}");
    assert!(stderr.contains("--cert FILE --key FILE"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_half_given_pem_is_a_usage_error_naming_flag_and_file() {
    let pki = Pki::new();
    let bad = pki.dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("written");
    let bad = bad.display().to_string();
    let cert = pki.client_cert.display().to_string();
    let missing = pki.dir.path().join("missing.pem").display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["load", "--target", "https://127.0.0.1:9", "--cacert", &bad],
            "--cacert",
        ),
        (
            &[
                "check",
                "--target",
                "https://127.0.0.1:9",
                "--cacert",
                &missing,
            ],
            "--cacert",
        ),
        (
            &["check", "--target", "https://127.0.0.1:9", "--cert", &cert],
            "--cert",
        ),
        (
            &[
                "verify",
                "--target",
                "https://127.0.0.1:9",
                "--prometheus",
                "off",
                "--key",
                &bad,
            ],
            "--key",
        ),
    ];
    for (args, flag) in cases {
        let out = obsctl(pki.dir.path(), args, &[]).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", said(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        let file = args.last().copied().unwrap_or_default();
        assert!(stderr.contains(file), "{args:?} names the file: {stderr}");
    }
}

// Documented answers, enough to prove each adapter reached its server over TLS:
// https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
const PROMETHEUS_VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"fastapi-backend"},"value":[1435781451.781,"1"]}]}}"#;
// https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-labels
const LOKI_LABELS: &str = r#"{"status":"success","data":["service","level"]}"#;
// https://grafana.com/docs/tempo/latest/api_docs/#search
const TEMPO_SEARCH: &str = r#"{"traces":[{"traceID":"4bf92f3577b34da6a3ce929d0e0e4736","rootServiceName":"fastapi-backend","rootTraceName":"GET /health","startTimeUnixNano":"1700000000000000000","durationMs":3}]}"#;
// https://grafana.com/docs/grafana/latest/developers/http_api/other/#health-api
const GRAFANA_HEALTH: &str = r#"{"commit":"abc1234","database":"ok","version":"11.2.0"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_adapter_reaches_its_https_server_with_the_cacert() {
    let pki = Pki::new();
    let prometheus = HttpsServer::start(&pki, false, |_| Reply::json(PROMETHEUS_VECTOR)).await;
    let loki = HttpsServer::start(&pki, false, |_| Reply::json(LOKI_LABELS)).await;
    let tempo = HttpsServer::start(&pki, false, |_| Reply::json(TEMPO_SEARCH)).await;
    let grafana = HttpsServer::start(&pki, false, |_| Reply::json(GRAFANA_HEALTH)).await;
    let client = client(&pki, false);
    bounded(async {
        let up = Prometheus::new(client.clone(), prometheus.url())
            .query("up", None)
            .await
            .expect("Prometheus answers over TLS");
        assert_eq!(up.data.first_value(), Some(1.0));
        let labels = Loki::new(client.clone(), loki.url())
            .labels(None)
            .await
            .expect("Loki answers over TLS");
        assert_eq!(labels.values, ["service", "level"]);
        let search = TraceSearch {
            filter: SearchFilter::Tags(vec![("service.name".into(), "fastapi-backend".into())]),
            limit: 5,
            window: None,
        };
        let traces = Tempo::new(client.clone(), tempo.url())
            .search(&search)
            .await
            .expect("Tempo answers over TLS");
        assert_eq!(traces.traces.len(), 1);
        let health = Grafana::new(client.clone(), grafana.url())
            .health()
            .await
            .expect("Grafana answers over TLS");
        assert!(health.database_ok());
        assert!(health.evidence.url.starts_with("https://127.0.0.1:"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_the_cacert_is_a_tls_error_naming_the_certificate() {
    let pki = Pki::new();
    let prometheus = HttpsServer::start(&pki, false, |_| Reply::json(PROMETHEUS_VECTOR)).await;
    let untrusting = HttpClient::new(HttpOptions {
        timeout: Duration::from_secs(3),
        ..HttpOptions::default()
    })
    .expect("client");
    let error = bounded(Prometheus::new(untrusting, prometheus.url()).query("up", None))
        .await
        .expect_err("the test CA is not trusted");
    match &error {
        PrometheusError::Source(SourceError::Tls { detail, .. }) => {
            assert!(detail.contains("UnknownIssuer"), "{detail}");
            assert!(detail.contains("--cacert"), "{detail}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(prometheus.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_endpoint_requiring_a_client_certificate_accepts_cert_and_key() {
    let pki = Pki::new();
    let exposition = "# TYPE up gauge\nup 1\n";
    let server = HttpsServer::start(&pki, true, move |_| {
        Reply::with(200, "text/plain; version=0.0.4; charset=utf-8", exposition)
    })
    .await;
    let scrape = bounded(MetricsEndpoint::for_target(client(&pki, true), &server.url()).scrape())
        .await
        .expect("the client certificate is accepted");
    assert!(scrape.family("up").is_some());
    let refused = bounded(MetricsEndpoint::for_target(client(&pki, false), &server.url()).scrape())
        .await
        .expect_err("no client certificate");
    let text = refused.to_string();
    assert!(matches!(refused, SourceError::Tls { .. }), "{text}");
    assert!(text.contains("client certificate"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_scrapes_an_https_target_with_the_cacert() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki, false, |_| {
        Reply::with(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            "# TYPE up gauge\nup 1\n",
        )
    })
    .await;
    let ca = pki.ca.display().to_string();
    let out = obsctl(
        pki.dir.path(),
        &[
            "check",
            "--target",
            &server.url(),
            "--cacert",
            &ca,
            "--format",
            "json",
            "--timeout",
            "0s",
        ],
        &[],
    )
    .await;
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", said(&out)));
    let endpoint = report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == "metrics-endpoint"))
        .map(|c| c["status"].clone());
    assert_eq!(endpoint, Some("pass".into()), "{}", said(&out));
    assert!(server.seen().iter().any(|s| s.path == "/metrics"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_loads_and_checks_an_https_target_with_the_cacert() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki, false, |seen| match seen.path.as_str() {
        "/metrics" => Reply::with(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            "# TYPE up gauge\nup 1\n",
        ),
        _ => Reply::json(r#"{"id":1,"name":"a"}"#),
    })
    .await;
    let ca = pki.ca.display().to_string();
    let out = obsctl(
        pki.dir.path(),
        &[
            "verify",
            "--target",
            &server.url(),
            "--prometheus",
            "off",
            "--cacert",
            &ca,
            "--duration",
            "1s",
            "--timeout",
            "0s",
            "--format",
            "json",
            "--quiet",
        ],
        &[],
    )
    .await;
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", said(&out)));
    let status = |id: &str| {
        report["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["id"] == id))
            .map(|c| c["status"].clone())
    };
    assert_eq!(
        status("metrics-endpoint"),
        Some("pass".into()),
        "{}",
        said(&out)
    );
    let seen = server.seen();
    assert!(seen.iter().any(|s| s.path == "/metrics"));
    assert!(
        seen.iter().filter(|s| s.path.starts_with("/api/")).count() >= 3,
        "the smoke scenario's requests went over TLS: {}",
        said(&out)
    );
}
