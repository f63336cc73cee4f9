//! Shards of one run (`--segment I/N --run-id`), merged back (`obsctl report merge`): the merged
//! report counts what one process running the same plan counts, its sequence numbers are those
//! the server received, its percentiles are those of every shard's samples together; merging
//! refuses mixed runs and overlapping segments, and names missing ones.

use crate::helpers::{Behaviour, config_with, obsctl, run, scenario, simple, spawn_server, text};
use obsctl::load::{Overrides, RunId};
use obsctl::report::merge::{MergeError, merge};
use obsctl::report::{RunReport, Segment, histogram};
use std::collections::BTreeSet;
use std::time::Duration;

const MIX: &str = r#"
[[requests]]
name = "ok"
path = "/status/200"
weight = 3
[[requests]]
name = "user"
path = "/api/users/{{seq}}"
thresholds = { p99_ms = 5000 }
"#;

const RUN: &str = "00000000000a11ce";

/// Runs `segment` (or the whole plan) of 120 req/s for 1 s against `url`.
async fn shard(url: &str, segment: Option<Segment>) -> RunReport {
    let overrides = Overrides {
        segment,
        run_id: RunId::parse(RUN),
        ..Overrides::default()
    };
    let source = simple(120.0, "1s", MIX, "error_rate = 0");
    run(
        config_with(scenario(&source), url, overrides),
        Duration::from_secs(10),
    )
    .await
}

fn segment(index: u32, count: u32) -> Option<Segment> {
    Some(Segment { index, count })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_merge_into_the_run_one_process_sends() {
    let server = spawn_server(Behaviour::default()).await;
    let shards = tokio::join!(
        shard(&server.url, segment(1, 3)),
        shard(&server.url, segment(2, 3)),
        shard(&server.url, segment(3, 3)),
    );
    let shards = [shards.0, shards.1, shards.2];
    assert_eq!(
        shards.iter().map(|s| s.requests_sent).collect::<Vec<_>>(),
        [40, 40, 40],
        "each shard sends 1 in 3 of the 120 requests"
    );
    let merged = merge(
        shards
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("shard-{i}.json"), s.clone()))
            .collect(),
    )
    .expect("shards of one run merge");
    let single = {
        let other = spawn_server(Behaviour::default()).await;
        shard(&other.url, None).await
    };

    assert_eq!(merged.requests_sent, single.requests_sent);
    assert_eq!(merged.plan.planned_requests, single.plan.planned_requests);
    let counts = |r: &RunReport| -> Vec<(String, String, u64)> {
        r.requests
            .iter()
            .map(|c| (c.name.clone(), c.path.clone(), c.count))
            .collect()
    };
    assert_eq!(
        counts(&merged),
        counts(&single),
        "the same mix, request for request"
    );
    // Every sequence number the server saw, and no other, is in the merged report.
    let received: BTreeSet<u64> = server.received().iter().filter_map(|r| r.seq()).collect();
    let numbered: BTreeSet<u64> = merged
        .trace_ids()
        .filter_map(|id| u64::from_str_radix(&id[16..], 16).ok())
        .collect();
    assert_eq!(numbered, received);
    assert_eq!(received, (0..120).collect::<BTreeSet<u64>>());
    // Percentiles of the merged histogram are those of every shard's samples together.
    let decode = |r: &RunReport| {
        let h = r
            .histograms
            .as_ref()
            .expect("version 2 reports carry histograms");
        histogram::decode(&h.overall).expect("decodes")
    };
    let mut together = decode(&shards[0]);
    together.add(decode(&shards[1])).expect("same bounds");
    together.add(decode(&shards[2])).expect("same bounds");
    assert_eq!(decode(&merged), together);
    assert_eq!(merged.overall.latency_ms.samples, 120);
    assert_eq!(merged.timeline.iter().map(|s| s.sent).sum::<u64>(), 120);
    let thresholds: Vec<(Option<&str>, bool)> = merged
        .thresholds
        .iter()
        .map(|t| (t.request.as_deref(), t.passed))
        .collect();
    assert_eq!(thresholds, [(None, true), (Some("user"), true)]);
    assert!(merged.passed);
    let m = merged.merged.as_ref().expect("marked as merged");
    assert_eq!(
        (m.count, m.present.clone(), m.missing.clone()),
        (3, vec![1, 2, 3], vec![])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_refuses_mixed_runs_and_overlaps_and_names_missing_segments() {
    let server = spawn_server(Behaviour::default()).await;
    let (one, two) = tokio::join!(
        shard(&server.url, segment(1, 3)),
        shard(&server.url, segment(2, 3)),
    );
    let named = |pairs: &[(&str, &RunReport)]| -> Vec<(String, RunReport)> {
        pairs
            .iter()
            .map(|(n, r)| ((*n).to_owned(), (*r).clone()))
            .collect()
    };

    let mut other = two.clone();
    other.run_id = "00000000000b0b00".to_owned();
    let mixed = merge(named(&[("one.json", &one), ("other.json", &other)]));
    assert!(
        matches!(&mixed, Err(MergeError::OtherRun { what: "run id", .. })),
        "{mixed:?}"
    );
    let twice = merge(named(&[("one.json", &one), ("again.json", &one)]));
    assert!(
        matches!(&twice, Err(MergeError::Overlap { .. })),
        "{twice:?}"
    );
    let mut whole = one.clone();
    whole.segment = None;
    let not_shard = merge(named(&[("whole.json", &whole)]));
    assert!(matches!(not_shard, Err(MergeError::NotShard { .. })));

    // Through the command line: 2 of 3 shards merge, the report names 3/3 and exits 1.
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, report) in [("one.json", &one), ("two.json", &two)] {
        let json = report.to_json().expect("encodes");
        std::fs::write(dir.path().join(name), json).expect("writes");
    }
    let args = [
        "report", "merge", "one.json", "two.json", "--output", "run.json",
    ];
    let out = obsctl(dir.path(), &args).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("segments missing: 3/3"),
        "{}",
        text(&out.stderr)
    );
    let merged: RunReport = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run.json")).expect("written"),
    )
    .expect("a run report");
    assert_eq!(merged.requests_sent, 80);
    assert_eq!(merged.merged.map(|m| m.missing), Some(vec![3]));
    let mixed = obsctl(
        dir.path(),
        &["report", "merge", "one.json", "one.json", "-o", "x.json"],
    )
    .await;
    assert_eq!(mixed.status.code(), Some(2));
    assert!(
        text(&mixed.stderr).contains("given twice"),
        "{}",
        text(&mixed.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_needs_a_run_id_and_a_valid_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let no_id = obsctl(
        dir.path(),
        &["load", "--target", "http://127.0.0.1:1", "--segment", "1/2"],
    )
    .await;
    assert_eq!(no_id.status.code(), Some(2));
    assert!(
        text(&no_id.stderr).contains("--run-id"),
        "{}",
        text(&no_id.stderr)
    );
    for bad in ["0/2", "3/2", "x/2", "1"] {
        let args = [
            "load",
            "--target",
            "http://127.0.0.1:1",
            "--segment",
            bad,
            "--run-id",
            RUN,
        ];
        let out = obsctl(dir.path(), &args).await;
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            text(&out.stderr).contains("is not a segment"),
            "{bad}: {}",
            text(&out.stderr)
        );
    }
}
