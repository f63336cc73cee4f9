//! Run report v2: counts per path template (the report does not grow with the concrete paths a
//! run renders, nor with its length beyond the timeline), the serialized histograms merge
//! exactly, and the timeline accounts for every request second by second.

use crate::helpers::{Behaviour, config, run, scenario, simple, spawn_server};
use obsctl::load::sample::{Outcome, Sample};
use obsctl::load::stats::Aggregator;
use obsctl::report::{MAX_EXAMPLES, histogram};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RANDOM_IDS: &str = r#"
[[requests]]
name = "user"
path = "/api/users/{{random:1..1000000000}}?n={{seq}}"
[[requests]]
name = "health"
path = "/health"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_path_run_keeps_one_entry_per_template_however_long_it_runs() {
    let server = spawn_server(Behaviour::default()).await;
    let mut sizes = Vec::new();
    for duration in ["1s", "3s"] {
        let report = run(
            config(
                scenario(&simple(150.0, duration, RANDOM_IDS, "")),
                &server.url,
            ),
            Duration::from_secs(15),
        )
        .await;
        assert!(report.requests_sent >= 100, "{}", report.requests_sent);
        let paths: Vec<&str> = report.requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/health", "/api/users/{{random:1..1000000000}}"],
            "one entry per request template, whatever the ids sent"
        );
        let user = &report.requests[1];
        assert_eq!(user.examples.len(), MAX_EXAMPLES);
        assert!(user.examples.iter().all(|p| p.starts_with("/api/users/")));
        let json = report.to_json().expect("encodes");
        // Everything but the timeline, whose entries are one a second.
        let timeline = serde_json::to_string_pretty(&report.timeline).expect("encodes");
        sizes.push((report.requests_sent, json.len() - timeline.len()));
    }
    let ((short_sent, short), (long_sent, long)) = (sizes[0], sizes[1]);
    assert!(long_sent > 2 * short_sent, "{sizes:?}");
    // The histograms grow with the distinct latencies seen, a few bytes each: a small margin.
    assert!(long < short + 2_048, "{short} bytes then {long}: {sizes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_accounts_for_every_request_second_by_second() {
    let server = spawn_server(Behaviour::default()).await;
    let report = run(
        config(
            scenario(&simple(50.0, "2500ms", RANDOM_IDS, "")),
            &server.url,
        ),
        Duration::from_secs(15),
    )
    .await;
    let seconds: Vec<u64> = report.timeline.iter().map(|s| s.t).collect();
    assert_eq!(seconds, [0, 1, 2]);
    let sum = |f: fn(&obsctl::report::Second) -> u64| report.timeline.iter().map(f).sum::<u64>();
    assert_eq!(sum(|s| s.due), report.requests_due());
    assert_eq!(sum(|s| s.sent), report.requests_sent);
    assert_eq!(sum(|s| s.answered), report.overall.latency_ms.samples);
    for second in &report.timeline {
        assert_eq!(second.planned_rate, Some(50.0), "{second:?}");
        assert!(
            second.p50_ms.is_some() && second.p99_ms <= second.max_ms,
            "{second:?}"
        );
    }
    // The last half second: 25 requests over 0.5 s is 50 req/s, not 25.
    let last = &report.timeline[2];
    assert!((last.achieved_rate - 50.0).abs() <= 6.0, "{last:?}");
}

/// A sample answered `latency_us` after it was due.
fn sample(start: Instant, latency_us: u64) -> Sample {
    Sample {
        request: 0,
        path: None,
        scheduled: start,
        sent: Some(start),
        end: start + Duration::from_micros(latency_us),
        outcome: Outcome {
            status: Some(200),
            error: None,
        },
    }
}

fn aggregate(start: Instant, latencies: impl IntoIterator<Item = u64>) -> Aggregator {
    let mut aggregator = Aggregator::new(vec![Arc::from("/")], start, Duration::from_secs(1));
    for latency in latencies {
        aggregator.record(sample(start, latency));
    }
    aggregator
}

#[test]
fn two_reports_histograms_merge_into_the_histogram_of_one_run_over_both() {
    let start = Instant::now();
    let spec = scenario(&simple(
        1.0,
        "1s",
        "[[requests]]\nname = \"r\"\npath = \"/\"\n",
        "",
    ));
    let specs = &spec.requests;
    let first: Vec<u64> = (0..5_000u64).map(|i| 200 + (i * 7_919) % 90_000).collect();
    let second: Vec<u64> = (0..3_000u64)
        .map(|i| 50_000 + (i * 104_729) % 2_000_000)
        .collect();
    let decode = |aggregator: &Aggregator| {
        let encoded = aggregator.histograms(specs).expect("histograms encode");
        assert_eq!(encoded.encoding, histogram::ENCODING);
        histogram::decode(&encoded.overall).expect("decodes")
    };
    let (a, b) = (
        decode(&aggregate(start, first.clone())),
        decode(&aggregate(start, second.clone())),
    );
    let merged = histogram::merge([&a, &b])
        .expect("same bounds")
        .expect("two histograms");
    let whole = decode(&aggregate(start, first.into_iter().chain(second)));
    assert_eq!(merged.len(), 8_000);
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(
            merged.value_at_quantile(q),
            whole.value_at_quantile(q),
            "q {q}"
        );
    }
    assert_eq!(merged, whole);
}
