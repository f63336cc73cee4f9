//! Errors people understand, word for word: the field's path and what it expects in plain
//! words (not serde's), a file without requests, durations that say what a duration looks like
//! and refuse the unreasonable, and a target without a scheme.

use crate::helpers::{obsctl, text};
use obsctl::scenario::Scenario;
use std::path::Path;

const STAGE: &str = "[[stages]]\nduration = \"1s\"\nrate = 10\n";
const REQUEST: &str = "[[requests]]\nname = \"a\"\npath = \"/a\"\n";

/// The full message `source` (as `s.toml`) is refused with.
fn error_of(source: &str) -> String {
    match Scenario::parse(source, Path::new("s.toml")) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_rate_in_quotes_names_the_field_and_the_expected_number() {
    let source = "name = \"x\"\n[[stages]]\nduration = \"1s\"\nrate = \"20\"\n[[requests]]\nname = \"a\"\npath = \"/\"\n";
    assert_eq!(
        error_of(source),
        "s.toml:4:8: stages[0].rate: expected a number of requests per second (e.g. 20), found \
         the string \"20\"\n  4 | rate = \"20\""
    );
}

#[test]
fn a_wrong_type_deep_in_the_request_list_names_its_index() {
    let source = format!(
        "name = \"x\"\n{STAGE}{REQUEST}[[requests]]\nname = \"b\"\npath = \"/b\"\n[[requests]]\nname = \"c\"\npath = \"/c\"\nweight = \"3\"\n"
    );
    assert_eq!(
        error_of(&source),
        "s.toml:14:10: requests[2].weight: expected a whole number from 1 to 1000 (e.g. 3), found \
         the string \"3\"\n  14 | weight = \"3\""
    );
}

#[test]
fn a_file_without_requests_says_exactly_that() {
    assert_eq!(
        error_of(&format!("name = \"x\"\n{STAGE}")),
        "s.toml: the file has no [[requests]]: add at least one, e.g. [[requests]] with name = \
         \"home\" and path = \"/\""
    );
    assert_eq!(
        error_of(&format!("name = \"x\"\n{REQUEST}")),
        "s.toml: the file has no [[stages]]: add at least one, e.g. [[stages]] with duration = \
         \"10s\" and rate = 20"
    );
}

#[test]
fn a_missing_field_says_what_to_add() {
    let source = format!("name = \"x\"\n{STAGE}[[requests]]\nname = \"a\"\n");
    assert_eq!(
        error_of(&source),
        "s.toml:5:1: requests[0].path: missing; expected a path in quotes (e.g. path = \
         \"/api/users/{{seq}}\")\n  5 | [[requests]]"
    );
    assert_eq!(
        error_of(&format!("{STAGE}{REQUEST}")),
        "s.toml: name: missing; expected the scenario's name in quotes (e.g. name = \"smoke\")"
    );
}

#[test]
fn other_wrong_types_and_values_in_plain_words() {
    let cases = [
        (
            format!("name = \"x\"\nmax_in_flight = -1\n{STAGE}{REQUEST}"),
            "s.toml:2:17: max_in_flight: expected a whole number of requests, 1 or more (e.g. \
             256), found the integer -1",
        ),
        (
            format!("name = \"x\"\n[[stages]]\nduration = 5\nrate = 1\n{REQUEST}"),
            "s.toml:3:12: stages[0].duration: expected a duration in quotes (e.g. \"10s\"), found \
             the integer 5",
        ),
        (
            format!("name = \"x\"\n{STAGE}{REQUEST}expect = [200, \"404\"]\n"),
            "s.toml:8:16: requests[0].expect[1]: expected an HTTP status (e.g. 200), found the \
             string \"404\"",
        ),
        (
            format!("name = \"x\"\n{STAGE}{REQUEST}[thresholds]\np99_ms = \"fast\"\n"),
            "s.toml:9:10: thresholds.p99_ms: expected a latency in milliseconds (e.g. 250), found \
             the string \"fast\"",
        ),
        (
            format!("name = \"x\"\n{STAGE}{REQUEST}[thresholds]\nerror_rate = 5\n"),
            "s.toml:9:14: thresholds.error_rate: expected a fraction from 0 to 1 (e.g. 0.01 for \
             1%), found 5",
        ),
        (
            format!("name = \"x\"\n{STAGE}{REQUEST}weight = 0\n"),
            "s.toml:8:10: requests[0].weight: expected a whole number from 1 to 1000 (e.g. 3), \
             found 0",
        ),
        (
            format!("name = \"x\"\n[[stages]]\nduration = \"1s\"\nrate = -3\n{REQUEST}"),
            "s.toml:4:8: stages[0].rate: expected a number of requests per second, 0 or more, \
             found -3",
        ),
        (
            format!("name = \"x\"\n[[stages]]\nduration = \"1s\"\nrate = 1\nrps = 3\n{REQUEST}"),
            "s.toml:5:1: stages[0].rps: unknown field; expected `duration` or `rate`",
        ),
    ];
    for (source, want) in cases {
        let got = error_of(&source);
        assert_eq!(got.lines().next(), Some(want), "\n{source}");
    }
}

#[test]
fn unreasonable_durations_in_a_file_say_the_limit() {
    let long_stage =
        format!("name = \"x\"\n[[stages]]\nduration = \"10000h\"\nrate = 1\n{REQUEST}");
    assert_eq!(
        error_of(&long_stage),
        "s.toml:3:12: stages[0].duration: `10000h` is too long: a run lasts at most 24h\n  3 | \
         duration = \"10000h\""
    );
    let stages = "[[stages]]\nduration = \"20h\"\nrate = 1\n".repeat(2);
    assert_eq!(
        error_of(&format!("name = \"x\"\n{stages}{REQUEST}"))
            .lines()
            .next(),
        Some("s.toml:2:1: stages: the stages last 1day 16h in all: a run lasts at most 24h")
    );
    let timeout = format!("name = \"x\"\ntimeout = \"2h\"\n{STAGE}{REQUEST}");
    assert_eq!(
        error_of(&timeout).lines().next(),
        Some("s.toml:2:11: timeout: `2h` is too long: a request timeout is at most 1h")
    );
    let forever = format!("name = \"x\"\n[[stages]]\nduration = \"forever\"\nrate = 1\n{REQUEST}");
    assert_eq!(
        error_of(&forever).lines().next(),
        Some(
            "s.toml:3:12: stages[0].duration: `forever` is not a duration: write a number and a \
             unit, e.g. 500ms, 10s, 1m30s or 2h"
        )
    );
}

#[test]
fn a_target_in_the_file_without_a_scheme_gets_a_suggestion() {
    let source = format!("name = \"x\"\ntarget = \"localhost:8000\"\n{STAGE}{REQUEST}");
    assert_eq!(
        error_of(&source).lines().next(),
        Some(
            "s.toml:2:10: target: `localhost:8000` has no scheme: did you mean http://localhost:8000?"
        )
    );
}

/// The first line of stderr of `obsctl load ARGS` in a fresh directory, which must exit 2.
async fn load_error(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all = vec!["load", "--quiet"];
    all.extend_from_slice(args);
    let out = obsctl(dir.path(), &all).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_say_what_a_duration_looks_like_and_the_limits() {
    let target = ["--target", "http://127.0.0.1:1"];
    let cases: [(&[&str], &str); 5] = [
        (
            &["--timeout", "forever"],
            "error: invalid value 'forever' for '--timeout <D>': `forever` is not a duration: \
             write a number and a unit, e.g. 500ms, 10s, 1m30s or 2h",
        ),
        (
            &["--duration", "10000h"],
            "error: invalid value '10000h' for '--duration <D>': `10000h` is too long: a run \
             lasts at most 24h",
        ),
        (
            &["--timeout", "2h"],
            "error: invalid value '2h' for '--timeout <D>': `2h` is too long: a request timeout \
             is at most 1h",
        ),
        (
            &["--duration", "0s"],
            "error: invalid value '0s' for '--duration <D>': a duration must be more than zero",
        ),
        (
            &["-d", "soon"],
            "error: invalid value 'soon' for '--duration <D>': `soon` is not a duration: write a \
             number and a unit, e.g. 500ms, 10s, 1m30s or 2h",
        ),
    ];
    for (flags, want) in cases {
        let mut args = target.to_vec();
        args.extend_from_slice(flags);
        assert_eq!(load_error(&args).await, want, "{flags:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_a_scheme_asks_did_you_mean() {
    assert_eq!(
        load_error(&["--target", "localhost:8000", "-d", "1s"]).await,
        "error: --target: `localhost:8000` has no scheme: did you mean http://localhost:8000?"
    );
    assert_eq!(
        load_error(&["--target", "127.0.0.1:8000", "-d", "1s"]).await,
        "error: --target: `127.0.0.1:8000` has no scheme: did you mean http://127.0.0.1:8000?"
    );
}
