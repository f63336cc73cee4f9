//! The engine against a real local server: rate accuracy, honest latency under a stall, exact
//! accounting, tagging, not-started requests, error kinds and cancellation.

use crate::helpers::{Behaviour, config, config_with, run, scenario, simple, spawn_server};
use obsctl::load::{ErrorKind, Overrides, Rate, RunId};
use obsctl::report::fold::PathFolder;
use obsctl::report::{Model, RequestCount};
use std::collections::BTreeSet;
use std::time::Duration;

const GET_A: &str = "[[requests]]\nname = \"a\"\npath = \"/a\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn achieved_rate_and_send_spacing_match_the_plan() {
    let server = spawn_server(Behaviour::default()).await;
    let cfg = config(scenario(&simple(200.0, "1500ms", GET_A, "")), &server.url);
    let report = run(cfg, Duration::from_secs(10)).await;

    assert_eq!(report.requests_sent, 300);
    assert_eq!(report.plan.planned_requests, Some(300));
    assert!(
        (report.overall.achieved_rate - 200.0).abs() < 4.0,
        "{}",
        report.overall.achieved_rate
    );

    let mut arrivals: Vec<_> = server.received().iter().map(|r| r.at).collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 300);
    let gaps: Vec<f64> = arrivals
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(
        (4.5..=5.5).contains(&median),
        "median gap {median} ms, planned 5 ms"
    );
    // Each send lands near its own slot (k * 5 ms after the first): the schedule neither drifts
    // nor bunches up. The margin absorbs a busy machine, where the server's timestamps jitter.
    let mut deviation: Vec<f64> = arrivals
        .iter()
        .enumerate()
        .map(|(k, t)| ((*t - arrivals[0]).as_secs_f64() * 1000.0 - k as f64 * 5.0).abs())
        .collect();
    deviation.sort_by(f64::total_cmp);
    let p90 = deviation[deviation.len() * 9 / 10];
    assert!(
        p90 <= 10.0,
        "90% of sends within {p90:.1} ms of their slot; expected 10 ms"
    );
    // No bursts: each quarter second holds its 50 requests, give or take a few.
    for window in 0..5 {
        let from = arrivals[0] + Duration::from_millis(250 * window);
        let to = from + Duration::from_millis(250);
        let n = arrivals.iter().filter(|t| **t >= from && **t < to).count();
        assert!(
            n.abs_diff(50) <= 6,
            "{n} sends in quarter-second {window}, planned 50"
        );
    }
    let span = (arrivals[299] - arrivals[0]).as_secs_f64();
    assert!(
        (span - 1.495).abs() < 0.05,
        "sends spread over {span} s instead of 1.495 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_open_model_latency_but_hides_in_a_closed_loop() {
    let stall = Behaviour {
        stall_once: Some((50, Duration::from_millis(500))),
        ..Behaviour::default()
    };
    let open_server = spawn_server(stall).await;
    let open = run(
        config(scenario(&simple(100.0, "2s", GET_A, "")), &open_server.url),
        Duration::from_secs(10),
    )
    .await;
    let closed_server = spawn_server(stall).await;
    let overrides = Overrides {
        rps: Some(Rate::Max),
        duration: Some(Duration::from_millis(1500)),
        max_in_flight: Some(1),
        ..Overrides::default()
    };
    let closed_cfg = config_with(
        scenario(&simple(1.0, "1s", GET_A, "")),
        &closed_server.url,
        overrides,
    );
    let closed = run(closed_cfg, Duration::from_secs(10)).await;

    assert_eq!(open.model, Model::Open);
    assert_eq!(closed.model, Model::Closed);
    let open_p99 = open.overall.latency_ms.p99.unwrap_or(0.0);
    let open_p90 = open.overall.latency_ms.p90.unwrap_or(0.0);
    // ~50 requests came due during the stall and waited for it: a quarter of the run.
    assert!(
        open_p99 >= 400.0,
        "open p99 {open_p99} ms hides the 500 ms stall"
    );
    assert!(
        open_p90 >= 150.0,
        "open p90 {open_p90} ms hides the queued requests"
    );
    let closed_p99 = closed.overall.latency_ms.p99.unwrap_or(f64::MAX);
    let closed_max = closed.overall.latency_ms.max.unwrap_or(0.0);
    assert!(
        closed_max >= 400.0,
        "the closed loop saw the stall once ({closed_max} ms)"
    );
    assert!(
        closed_p99 < 100.0,
        "closed-loop p99 {closed_p99} ms: omission expected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counts_equal_what_the_server_received() {
    let server = spawn_server(Behaviour::default()).await;
    let requests = r#"
[[requests]]
name = "ok"
path = "/status/200"
weight = 3
expect = [200]
[[requests]]
name = "missing"
path = "/status/404?x=1"
expect = [404]
[[requests]]
name = "create"
method = "POST"
path = "/status/201"
body = '{"name": "u-{{seq}}"}'
expect = [201]
[[requests]]
name = "user"
path = "/api/users/{{random:1..3}}"
weight = 2
"#;
    let report = run(
        config(scenario(&simple(100.0, "1s", requests, "")), &server.url),
        Duration::from_secs(10),
    )
    .await;

    assert_eq!(report.requests_sent, 100);
    assert_eq!(report.requests_not_started, 0);
    // The report counts per path template; the server saw concrete paths, which fold into it.
    let folder = PathFolder::of_report(&report);
    let mut received = std::collections::HashMap::new();
    for ((method, path, status), count) in server.counts() {
        let path = folder.fold(&method, &path).map_or(path, str::to_owned);
        *received.entry((method, path, status)).or_insert(0) += count;
    }
    let mut from_report = std::collections::HashMap::new();
    for r in &report.requests {
        assert_eq!(r.error, None, "{r:?}");
        let status = r.status.expect("every request got a response");
        *from_report
            .entry((r.method.clone(), r.path.clone(), status))
            .or_insert(0) += r.count;
    }
    assert_eq!(from_report, received);
    let user: Vec<&RequestCount> = report
        .requests
        .iter()
        .filter(|r| r.name == "user")
        .collect();
    assert!(
        user.iter().all(|r| r.path == "/api/users/{{random:1..3}}"),
        "{user:?}"
    );
    let examples: BTreeSet<&str> = user
        .iter()
        .flat_map(|r| r.examples.iter().map(String::as_str))
        .collect();
    assert!(!examples.is_empty());
    assert!(
        examples
            .iter()
            .all(|p| ["/api/users/1", "/api/users/2", "/api/users/3"].contains(p)),
        "{examples:?}"
    );
    assert_eq!(
        report.by_name.iter().map(|n| n.stats.count).sum::<u64>(),
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_its_run_id_and_derivable_trace_id() {
    let server = spawn_server(Behaviour::default()).await;
    let requests =
        "[[requests]]\nname = \"c\"\nmethod = \"POST\"\npath = \"/c\"\nbody = '{\"n\": {{seq}}}'\n";
    let report = run(
        config(scenario(&simple(100.0, "500ms", requests, "")), &server.url),
        Duration::from_secs(10),
    )
    .await;

    assert!(RunId::parse(&report.run_id).is_some(), "{}", report.run_id);
    assert_eq!(report.trace_id_prefix, report.run_id);
    let mut seqs = BTreeSet::new();
    for r in server.received() {
        assert_eq!(r.run_id.as_deref(), Some(report.run_id.as_str()));
        let tp = r.traceparent.expect("traceparent sent");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!((parts.len(), parts[0], parts[3]), (4, "00", "01"), "{tp}");
        let (prefix, seq_hex) = parts[1].split_at(16);
        assert_eq!(prefix, report.trace_id_prefix);
        let seq = u64::from_str_radix(seq_hex, 16).expect("hex seq");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            format!("{{\"n\": {seq}}}"),
            "{{{{seq}}}} = trace seq"
        );
        assert!(parts[2].len() == 16 && parts[2] != "0000000000000000");
        seqs.insert(seq);
    }
    assert_eq!(seqs, (0..report.seq_count).collect::<BTreeSet<u64>>());
    let sent: BTreeSet<String> = server
        .received()
        .iter()
        .filter_map(|r| r.traceparent.as_ref().map(|tp| tp[3..35].to_owned()))
        .collect();
    assert_eq!(sent, report.trace_ids().collect::<BTreeSet<String>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_start_in_time_are_counted_not_hidden() {
    let slow = Behaviour {
        delay: Duration::from_millis(300),
        ..Behaviour::default()
    };
    let server = spawn_server(slow).await;
    let overrides = Overrides {
        max_in_flight: Some(1),
        timeout: Some(Duration::from_millis(200)),
        ..Overrides::default()
    };
    let cfg = config_with(
        scenario(&simple(40.0, "500ms", GET_A, "")),
        &server.url,
        overrides,
    );
    let report = run(cfg, Duration::from_secs(10)).await;

    assert_eq!(report.requests_sent + report.requests_not_started, 20);
    assert_eq!(
        report.seq_count, report.requests_sent,
        "only sent requests get a trace id"
    );
    assert!(report.requests_not_started > 0, "{report:?}");
    let kinds = &report.overall.errors_by_kind;
    assert!(kinds.get("timeout").copied().unwrap_or(0) > 0, "{kinds:?}");
    assert_eq!(
        kinds.get("not_started").copied(),
        Some(report.requests_not_started)
    );
    assert_eq!(report.overall.error_rate, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_connect_errors() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let cfg = config(
        scenario(&simple(50.0, "200ms", GET_A, "")),
        &format!("http://127.0.0.1:{port}"),
    );
    let report = run(cfg, Duration::from_secs(10)).await;

    // Numbered (their trace ids are spent) but never sent: nothing reached the target.
    assert_eq!(report.requests_sent, 0);
    assert_eq!(report.seq_count, 10);
    assert_eq!(report.requests_due(), 10);
    assert_eq!(report.overall.achieved_rate, 0.0);
    assert_eq!(report.overall.error_rate, 1.0);
    assert!(!report.passed, "a run that reached nothing fails");
    assert_eq!(
        report.overall.errors_by_kind.get("connect").copied(),
        Some(10)
    );
    assert!(
        report
            .requests
            .iter()
            .all(|r| r.status.is_none() && r.error == Some(ErrorKind::Connect))
    );
    assert_eq!(report.overall.latency_ms.samples, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_statuses_are_errors_with_their_status() {
    let server = spawn_server(Behaviour::default()).await;
    let requests = "[[requests]]\nname = \"boom\"\npath = \"/status/500\"\nexpect = [200]\n";
    let report = run(
        config(scenario(&simple(50.0, "200ms", requests, "")), &server.url),
        Duration::from_secs(10),
    )
    .await;

    assert_eq!(report.overall.errors, 10);
    assert_eq!(report.requests.len(), 1);
    assert_eq!(report.requests[0].status, Some(500));
    assert_eq!(report.requests[0].error, Some(ErrorKind::UnexpectedStatus));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_the_run_and_keeps_the_partial_report() {
    let server = spawn_server(Behaviour::default()).await;
    let cfg = config(scenario(&simple(100.0, "30s", GET_A, "")), &server.url);
    let shutdown = tokio::time::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(5), obsctl::load::run(cfg, shutdown))
        .await
        .expect("stops promptly")
        .expect("runs");

    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(report.interrupted);
    assert!(
        (20..=40).contains(&report.requests_sent),
        "{}",
        report.requests_sent
    );
    assert!(report.duration_s < 1.0, "{}", report.duration_s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_every_connection_costs_no_request() {
    let server = spawn_server(Behaviour {
        no_keep_alive: true,
        ..Behaviour::default()
    })
    .await;
    let overrides = Overrides {
        max_in_flight: Some(2),
        ..Overrides::default()
    };
    let cfg = config_with(
        scenario(&simple(200.0, "300ms", GET_A, "")),
        &server.url,
        overrides,
    );
    let report = run(cfg, Duration::from_secs(10)).await;

    assert_eq!(report.requests_sent, 60);
    assert_eq!(
        report.overall.errors, 0,
        "{:?}",
        report.overall.errors_by_kind
    );
    assert_eq!(server.received().len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_path_prefixes_every_request_and_the_report_says_so() {
    let server = spawn_server(Behaviour::default()).await;
    let target = format!("{}/base/", server.url);
    let report = run(
        config(scenario(&simple(50.0, "200ms", GET_A, "")), &target),
        Duration::from_secs(10),
    )
    .await;

    assert_eq!(
        server.counts().get(&("GET".into(), "/base/a".into(), 200)),
        Some(&10)
    );
    assert_eq!(report.requests[0].path, "/base/a");
}
