//! The renderers on a real report with every status in it: text for people, JSON and JUnit XML
//! for machines.

use obsctl::check::model::Status;
use obsctl::check::policy::Policy;
use obsctl::check::registry::CHECKS as CATALOG;
use obsctl::check::render::{json, junit, text};
use obsctl::check::report::CheckReport;
use serde_json::Value;

use obsctl::sources::prometheus::Prometheus;

use crate::helpers::{FakeServer, Reply, bounded, client, log_input, refused_url, target_context};

/// A report with passes (logs), failures whose evidence holds markup (an HTML /metrics page),
/// errors (an unreachable Prometheus) and skips (every other source).
async fn mixed_report(strict: bool) -> CheckReport {
    let page = "<!DOCTYPE html><html><body>Tom & Jerry's \"page\"</body></html>";
    let target = FakeServer::metrics(Reply::ok("text/html", page)).await;
    let mut ctx = target_context(&target.url());
    let line = serde_json::json!({
        "timestamp": "2026-11-25T09:30:00.123Z", "level": "INFO", "service": "fastapi-backend",
        "message": "Request completed", "endpoint": "/health", "method": "GET",
        "status_code": 200, "duration_ms": 0.8,
    });
    ctx.logs = Some(log_input(&[line.to_string()]));
    ctx.prometheus = Some(Prometheus::new(client(), refused_url().await));
    let policy = if strict {
        Policy::strict()
    } else {
        Policy::defaults()
    };
    let report = bounded(obsctl::check::run(&ctx, &policy)).await;
    for status in [Status::Pass, Status::Fail, Status::Error, Status::Skip] {
        assert!(
            report.checks.iter().any(|c| c.status == status),
            "the fixture report has no {status:?}: {report:#?}"
        );
    }
    report
}

fn count(report: &CheckReport, status: Status) -> usize {
    report.checks.iter().filter(|c| c.status == status).count()
}

fn summary_line(report: &CheckReport) -> String {
    let failed = report.failing().count();
    let skipped = if report.strict {
        0
    } else {
        count(report, Status::Skip)
    };
    format!(
        "checks: {} passed, {failed} failed, {skipped} skipped",
        report.checks.len() - failed - skipped - count(report, Status::Allowed),
    )
}

#[tokio::test]
async fn text_lists_every_check_id_and_the_summary_counts() {
    let report = mixed_report(false).await;
    let out = text(&report, false);
    for spec in CATALOG {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(spec.id)),
            "{} not listed:\n{out}",
            spec.id
        );
    }
    let summary = summary_line(&report);
    assert!(
        out.lines().any(|l| l == summary),
        "no {summary:?} in:\n{out}"
    );
    assert!(!out.contains('\x1b'), "colour without a terminal:\n{out}");
}

#[tokio::test]
async fn text_ends_with_the_summary_line() {
    let report = mixed_report(false).await;
    let out = text(&report, false);
    let last = out.lines().rev().find(|l| !l.trim().is_empty());
    assert_eq!(last, Some(summary_line(&report).as_str()), "\n{out}");
}

#[tokio::test]
async fn json_has_a_checks_array_with_id_title_status_and_detail() {
    let report = mixed_report(false).await;
    let out: Value = serde_json::from_str(&json(&report)).expect("the JSON output parses");
    let checks = out["checks"].as_array().expect("a top-level checks array");
    assert_eq!(checks.len(), CATALOG.len());
    for (check, spec) in checks.iter().zip(CATALOG) {
        assert_eq!(check["id"], spec.id);
        assert_eq!(check["title"], spec.title);
        assert!(check["detail"].is_string(), "{check}");
        let status = check["status"].as_str().expect("status is a string");
        assert!(
            ["pass", "warn", "fail", "skip", "error", "allowed"].contains(&status),
            "{check}"
        );
    }
    assert_eq!(out["summary"]["passed"], count(&report, Status::Pass));
    assert_eq!(out["summary"]["skipped"], count(&report, Status::Skip));
    let back: CheckReport = serde_json::from_value(out).expect("the JSON reads back");
    assert_eq!(back, report);
}

#[tokio::test]
async fn json_output_matches_the_committed_schema() {
    // STYLE.md 4: a JSON Schema per machine output, validated against real output; the render
    // module names obsctl/schema/check-report.schema.json.
    let report = mixed_report(true).await;
    let instance: Value = serde_json::from_str(&json(&report)).expect("the JSON output parses");
    let errors = crate::helpers::schema_violations("check-report.schema.json", &instance);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
}

#[tokio::test]
async fn junit_is_well_formed_with_one_testcase_per_check() {
    let report = mixed_report(false).await;
    let xml = junit(&report);
    assert_well_formed(&xml);
    assert_eq!(xml.matches("<testcase ").count(), CATALOG.len(), "{xml}");
    assert_eq!(
        xml.matches("<failure ").count(),
        count(&report, Status::Fail),
        "{xml}"
    );
    assert_eq!(
        xml.matches("<skipped ").count(),
        count(&report, Status::Skip),
        "{xml}"
    );
    assert_eq!(
        xml.matches("<error ").count(),
        count(&report, Status::Error),
        "{xml}"
    );
    assert!(
        xml.contains("&lt;!DOCTYPE html&gt;"),
        "markup escaped:\n{xml}"
    );
    assert!(xml.contains("Tom &amp; Jerry"), "ampersand escaped:\n{xml}");
    assert!(
        xml.contains(&format!("tests=\"{}\"", CATALOG.len())),
        "{xml}"
    );
}

#[tokio::test]
async fn junit_under_strict_reports_skips_as_failures() {
    let report = mixed_report(true).await;
    let xml = junit(&report);
    assert_well_formed(&xml);
    assert_eq!(xml.matches("<skipped").count(), 0, "{xml}");
    assert_eq!(
        xml.matches("<failure ").count(),
        count(&report, Status::Fail) + count(&report, Status::Skip),
        "{xml}"
    );
}

/// A small well-formedness check: one root element, tags balanced and properly nested, no raw
/// `<` in text or attribute values, quoted attributes, and only the predefined or numeric
/// entities.
fn assert_well_formed(xml: &str) {
    let body = match xml.strip_prefix("<?xml") {
        Some(rest) => {
            let end = rest.find("?>").expect("the XML declaration closes");
            &rest[end + 2..]
        }
        None => xml,
    };
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        assert_entities(&rest[..open]);
        if stack.is_empty() {
            assert!(rest[..open].trim().is_empty(), "text outside the root");
        }
        let after = &rest[open + 1..];
        let close = after.find('>').expect("every tag closes");
        let tag = &after[..close];
        assert!(!tag.contains('<'), "raw < inside a tag: <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
        } else {
            let self_closing = tag.ends_with('/');
            let inner = tag.trim_end_matches('/');
            let name = inner.split_whitespace().next().expect("a tag has a name");
            assert_attributes(&inner[name.len()..]);
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        rest = &after[close + 1..];
    }
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert_eq!(roots, 1, "one root element");
}

fn assert_attributes(mut attrs: &str) {
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return;
        }
        let eq = attrs.find('=').expect("an attribute has a value");
        let value = attrs[eq + 1..]
            .strip_prefix('"')
            .expect("attribute values are quoted");
        let end = value.find('"').expect("an attribute value closes");
        assert_entities(&value[..end]);
        attrs = &value[end + 1..];
    }
}

fn assert_entities(text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let after = &rest[amp + 1..];
        let end = after.find(';').expect("an entity ends with ;");
        let name = &after[..end];
        let known = ["amp", "lt", "gt", "quot", "apos"].contains(&name)
            || name
                .strip_prefix('#')
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(known, "unknown entity &{name};");
        rest = &after[end + 1..];
    }
}

#[test]
fn the_well_formedness_check_rejects_broken_xml() {
    for broken in [
        "<a><b></a></b>",
        "<a>1 < 2</a>",
        "<a x=\"1\">",
        "<a>&nbsp;</a>",
        "<a/><b/>",
    ] {
        let outcome = std::panic::catch_unwind(|| assert_well_formed(broken));
        assert!(outcome.is_err(), "accepted {broken:?}");
    }
    assert_well_formed("<?xml version=\"1.0\"?>\n<a x=\"&lt;\"><b/>t &amp; u</a>\n");
}

/// A report with one check in each status, fixed in every field, for exact renderings.
fn fixed_report() -> CheckReport {
    use obsctl::check::model::{CheckResult, Finding, Level, Signal};
    use obsctl::check::report::Summary;
    let check = |id: &str, level: Level, status: Status, detail: &str| CheckResult {
        id: id.to_owned(),
        title: format!("The {id} item"),
        signal: Signal::Metrics,
        level,
        default_level: level,
        status,
        detail: detail.to_owned(),
        evidence: Vec::new(),
        hint: None,
        findings: Vec::new(),
        duration_ms: 1234,
    };
    let mut failed = check(
        "metrics-endpoint",
        Level::Deny,
        Status::Fail,
        "/metrics returned a JSON string, not Prometheus text",
    );
    failed.evidence = vec!["GET http://127.0.0.1:8000/metrics -> HTTP 200".to_owned()];
    failed.findings = vec![
        Finding::new(
            "/metrics returned a JSON string, not Prometheus text",
            1,
            "return the exposition bytes themselves",
        )
        .example("body starts: \"# HELP <x> & 'y'"),
    ];
    let mut warned = check(
        "metrics-cardinality",
        Level::Warn,
        Status::Warn,
        "the path label carries raw URLs",
    );
    warned.findings = vec![
        Finding::new(
            "the path label carries raw URLs",
            2,
            "label the route template",
        )
        .examples(["/api/users/1", "/api/users/2"]),
    ];
    let mut skipped = check("logs-loki", Level::Deny, Status::Skip, "no Loki given");
    skipped.hint = Some("pass --loki URL".to_owned());
    let checks = vec![
        check(
            "requests-counter",
            Level::Deny,
            Status::Pass,
            "counter with 3 series",
        ),
        failed,
        warned,
        skipped,
        check(
            "prometheus-scrape",
            Level::Deny,
            Status::Error,
            "Prometheus at http://127.0.0.1:9 is not ready: connection refused\nsecond line",
        ),
        check(
            "grafana",
            Level::Allow,
            Status::Allowed,
            "not run: the policy allows it",
        ),
    ];
    CheckReport {
        schema_version: obsctl::check::report::SCHEMA_VERSION,
        obsctl_version: "0.0.0-fixture".to_owned(),
        target: Some("http://127.0.0.1:41234".to_owned()),
        service: "fastapi-backend".to_owned(),
        strict: false,
        policy_file: None,
        started_at: "2026-12-05T07:00:00Z".to_owned(),
        finished_at: "2026-12-05T07:00:02Z".to_owned(),
        summary: Summary::of(&checks),
        checks,
    }
}

/// Compares `actual` with the committed fixture `name` (OBSCTL_BLESS=1 rewrites it).
fn assert_fixture(name: &str, actual: &str) {
    let path = format!("{}/tests/check/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("OBSCTL_BLESS").is_some() {
        std::fs::write(&path, actual).expect("the fixture is writable");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (OBSCTL_BLESS=1 writes it)"));
    assert_eq!(
        actual, expected,
        "{name} differs from the fixture (OBSCTL_BLESS=1 cargo test rewrites it after a deliberate change)"
    );
}

#[test]
fn junit_is_exactly_the_fixture_stable_names_one_line_messages_real_durations() {
    let xml = junit(&fixed_report());
    assert_well_formed(&xml);
    // The suite is named after the service, never after the ephemeral target address.
    assert!(!xml.contains("41234"), "{xml}");
    assert_fixture("report.junit.xml", &xml);
}

#[test]
fn text_is_exactly_the_fixture() {
    assert_fixture("report.txt", &text(&fixed_report(), false));
}
