//! `obsctl verify` end to end against the real backend: with a real Prometheus when one is
//! installed, and without.

use std::time::Duration;

use obsctl::check::context::StackUrls;
use obsctl::check::model::Status;
use obsctl::load::Overrides;
use obsctl::verify::{self, PrometheusMode, Target, VerifyOptions};

fn options(prometheus: PrometheusMode) -> VerifyOptions {
    VerifyOptions {
        scenario: None,
        target: Target::Spawn(format!(
            "{} --database :memory:",
            env!("CARGO_BIN_EXE_backend")
        )),
        prometheus,
        stack: StackUrls::default(),
        service: "fastapi-backend".to_owned(),
        timeout: Duration::from_secs(10),
        startup_timeout: Duration::from_secs(15),
        metrics_token: None,
        overrides: Overrides {
            duration: Some(Duration::from_secs(2)),
            ..Overrides::default()
        },
        policy: obsctl::check::policy::Policy::defaults(),
        progress: false,
        receiver_budget_bytes: obsctl::sources::otlp::DEFAULT_BUDGET_BYTES,
    }
}

/// Whether a real Prometheus can be started; a test that needs one says SKIPPED without it,
/// except under CI, which must have it (.ci/run installs it).
fn prometheus_installed() -> bool {
    if obsctl::sources::prometheus_server::find_binary().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have prometheus installed (.ci/run installs it)"
    );
    eprintln!("SKIPPED: no `prometheus` on the PATH (apt-get install prometheus)");
    false
}

fn status_of(report: &obsctl::check::report::CheckReport, id: &str) -> Status {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.status)
        .expect(id)
}

fn assert_all_pass_except(report: &obsctl::check::report::CheckReport, skipped: &[&str]) {
    for check in &report.checks {
        let expected = if skipped.contains(&check.id.as_str()) {
            Status::Skip
        } else {
            Status::Pass
        };
        assert_eq!(
            check.status, expected,
            "{}: {} {:?}",
            check.id, check.detail, check.evidence
        );
    }
}

#[tokio::test]
async fn verify_passes_every_check_of_the_real_backend_without_prometheus() {
    let verification = verify::run(options(PrometheusMode::Off), verify::never())
        .await
        .expect("verify runs");
    assert!(verification.run.requests_sent > 0);
    assert_all_pass_except(
        verification.report.as_ref().expect("not interrupted"),
        &[
            "traces-tempo",
            "logs-loki",
            "prometheus-scrape",
            "process-metrics-prometheus",
            "accounting-prometheus",
            "accounting-loki",
            "accounting-tempo",
            "grafana",
            "dashboard-panels",
        ],
    );
    assert!(
        verification
            .report
            .as_ref()
            .expect("not interrupted")
            .succeeded()
    );
}

#[tokio::test]
async fn verify_passes_every_check_of_the_real_backend_with_a_real_prometheus() {
    if !prometheus_installed() {
        return;
    }
    let verification = verify::run(options(PrometheusMode::Auto), verify::never())
        .await
        .expect("verify runs");
    assert_eq!(
        status_of(
            verification.report.as_ref().expect("not interrupted"),
            "prometheus-scrape"
        ),
        Status::Pass
    );
    // Exemplars lead to the receiver's SERVER spans, and that Prometheus returns them.
    let exemplars = verification
        .report
        .as_ref()
        .expect("not interrupted")
        .checks
        .iter()
        .find(|c| c.id == "exemplars")
        .expect("exemplars is in the report");
    assert!(
        exemplars
            .evidence
            .iter()
            .any(|line| line.contains("from /api/v1/query_exemplars")),
        "{:?}",
        exemplars.evidence
    );
    // The built-in dashboard's panels are evaluated against that Prometheus.
    assert_all_pass_except(
        verification.report.as_ref().expect("not interrupted"),
        // Accounting through Prometheus passes too: it scrapes the backend as job fastapi-backend.
        &[
            "traces-tempo",
            "logs-loki",
            "accounting-loki",
            "accounting-tempo",
            "grafana",
        ],
    );
}

#[tokio::test]
async fn verify_evaluates_every_dashboard_panel_against_the_real_prometheus() {
    if !prometheus_installed() {
        return;
    }
    let mut options = options(PrometheusMode::Auto);
    options.stack.dashboard = Some(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana/dashboards/fastapi-dashboard.json"
        )
        .into(),
    );
    let verification = verify::run(options, verify::never())
        .await
        .expect("verify runs");
    let panels = verification
        .report
        .as_ref()
        .expect("not interrupted")
        .checks
        .iter()
        .find(|c| c.id == "dashboard-panels")
        .expect("dashboard-panels is in the report");
    assert_eq!(
        panels.status,
        Status::Pass,
        "{}\n{}",
        panels.detail,
        panels.evidence.join("\n")
    );
    // 7 PromQL panels evaluated; the Loki panel is skipped without --loki, and says so.
    assert_eq!(panels.evidence.len(), 8, "{:?}", panels.evidence);
    assert!(panels.detail.contains("Logger Stream"), "{}", panels.detail);
}

#[tokio::test]
async fn verify_reports_a_service_that_never_listens_as_an_error_not_a_hang() {
    let mut options = options(PrometheusMode::Off);
    options.target = Target::Spawn("echo 'not a server' >&2; sleep 60".to_owned());
    options.startup_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        verify::run(options, verify::never()),
    )
    .await
    .expect("bounded")
    .expect_err("a service that never listens cannot be verified");
    let message = error.to_string();
    assert!(message.contains("did not listen"), "{message}");
    assert!(
        message.contains("not a server"),
        "stderr is quoted: {message}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn verify_reports_a_service_that_exits_at_once_with_its_exit_status() {
    let mut options = options(PrometheusMode::Off);
    options.target = Target::Spawn("echo 'boom: config missing' >&2; exit 3".to_owned());
    let error = verify::run(options, verify::never())
        .await
        .expect_err("nothing to verify");
    let message = error.to_string();
    assert!(message.contains("exited with"), "{message}");
    assert!(message.contains("boom: config missing"), "{message}");
}

#[tokio::test]
async fn an_interrupt_during_the_load_returns_the_partial_run_and_stops_the_service() {
    let mut options = options(PrometheusMode::Off);
    options.overrides.duration = Some(Duration::from_secs(20));
    let (interrupt, interrupted) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = interrupt.send(true);
    });
    let started = std::time::Instant::now();
    let verification = verify::run(options, interrupted)
        .await
        .expect("an interrupt is not an error during the load");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped early: {:?}",
        started.elapsed()
    );
    assert!(
        verification.report.is_none(),
        "no checks after an interrupt"
    );
    assert!(verification.run.interrupted);
    assert!(
        verification.run.requests_sent > 0,
        "the partial run is reported"
    );
    let base = verification
        .run
        .target
        .trim_start_matches("http://")
        .to_owned();
    assert!(
        tokio::net::TcpStream::connect(base.as_str()).await.is_err(),
        "the service it started is gone"
    );
}

#[tokio::test]
async fn verify_scrapes_a_token_protected_metrics_endpoint_with_the_token() {
    if !prometheus_installed() {
        return;
    }
    let mut options = options(PrometheusMode::Auto);
    options.metrics_token = Some("verify-s3cret".to_owned());
    let verification = verify::run(options, verify::never())
        .await
        .expect("verify runs");
    let report = verification.report.as_ref().expect("not interrupted");
    for id in [
        "metrics-endpoint",
        "prometheus-scrape",
        "accounting-metrics",
    ] {
        assert_eq!(status_of(report, id), Status::Pass, "{id}");
    }
}
