//! Every kind of broken scenario is refused with a message naming the file, the line and column,
//! and the field; and every shipped scenario loads.

use obsctl::scenario::{Scenario, ScenarioError};
use std::path::Path;

const STAGE: &str = "[[stages]]\nduration = \"1s\"\nrate = 10\n";
const REQUEST: &str = "[[requests]]\nname = \"a\"\npath = \"/a\"\n";

/// Parses `source` as `broken.toml` and returns the error message.
fn error_of(source: &str) -> String {
    match Scenario::parse(source, Path::new("scenarios/broken.toml")) {
        Ok(s) => panic!("accepted a broken scenario: {s:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that the message names the file, `line`, and `field`.
fn assert_names(message: &str, line: usize, field: &str) {
    assert!(
        message.starts_with(&format!("scenarios/broken.toml:{line}:")),
        "file and line {line} not named first in:\n{message}"
    );
    assert!(
        message.contains(field),
        "field `{field}` not named in:\n{message}"
    );
}

#[test]
fn toml_syntax_error() {
    let msg = error_of(&format!("name = \"x\"\nrate = = 3\n{STAGE}{REQUEST}"));
    assert_names(&msg, 2, "rate");
}

#[test]
fn unclosed_string() {
    let msg = error_of(&format!("name = \"x\n{STAGE}{REQUEST}"));
    assert_names(&msg, 1, "name");
}

#[test]
fn unknown_top_level_field() {
    let msg = error_of(&format!("name = \"x\"\nrps = 5\n{STAGE}{REQUEST}"));
    assert_names(&msg, 2, "rps");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn unknown_field_in_a_request() {
    let msg = error_of(&format!("name = \"x\"\n{STAGE}{REQUEST}headers = \"x\"\n"));
    assert_names(&msg, 8, "headers");
}

#[test]
fn bad_duration() {
    let msg = error_of(&format!(
        "name = \"x\"\n[[stages]]\nduration = \"5 parsecs\"\nrate = 1\n{REQUEST}"
    ));
    assert_names(&msg, 3, "stages[0].duration");
    assert!(msg.contains("5 parsecs"), "{msg}");
}

#[test]
fn zero_duration() {
    let msg = error_of(&format!(
        "name = \"x\"\n[[stages]]\nduration = \"0s\"\nrate = 1\n{REQUEST}"
    ));
    assert_names(&msg, 3, "stages[0].duration");
}

#[test]
fn wrong_type_names_the_key() {
    let msg = error_of(&format!(
        "name = \"x\"\n[[stages]]\nduration = \"1s\"\nrate = \"fast\"\n{REQUEST}"
    ));
    assert_names(&msg, 4, "rate");
}

#[test]
fn negative_rate() {
    let msg = error_of(&format!(
        "name = \"x\"\n[[stages]]\nduration = \"1s\"\nrate = -3\n{REQUEST}"
    ));
    assert_names(&msg, 4, "stages[0].rate");
}

#[test]
fn empty_request_list() {
    let msg = error_of(&format!("name = \"x\"\nrequests = []\n{STAGE}"));
    assert_names(&msg, 2, "requests");
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn missing_request_list() {
    let msg = error_of(&format!("name = \"x\"\n{STAGE}"));
    assert!(msg.starts_with("scenarios/broken.toml"), "{msg}");
    assert!(msg.contains("requests"), "{msg}");
}

#[test]
fn weight_zero() {
    let msg = error_of(&format!("name = \"x\"\n{STAGE}{REQUEST}weight = 0\n"));
    assert_names(&msg, 8, "requests[0].weight");
}

#[test]
fn bad_method() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}{REQUEST}method = \"FETCH\"\n"
    ));
    assert_names(&msg, 8, "requests[0].method");
    assert!(msg.contains("FETCH") && msg.contains("GET"), "{msg}");
}

#[test]
fn unclosed_template() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}[[requests]]\nname = \"a\"\npath = \"/u/{{{{random:1..3\"\n"
    ));
    assert_names(&msg, 7, "requests[0].path");
    assert!(msg.contains("unclosed"), "{msg}");
}

#[test]
fn unknown_placeholder_in_a_body() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}{REQUEST}body = '{{{{uuid}}}}'\n"
    ));
    assert_names(&msg, 8, "requests[0].body");
}

#[test]
fn path_without_leading_slash() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}[[requests]]\nname = \"a\"\npath = \"api\"\n"
    ));
    assert_names(&msg, 7, "requests[0].path");
}

#[test]
fn content_type_that_is_not_a_header_value() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}{REQUEST}content_type = \"a\\nb\"\n"
    ));
    assert_names(&msg, 8, "requests[0].content_type");
}

#[test]
fn status_out_of_range() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}{REQUEST}expect = [200, 999]\n"
    ));
    assert_names(&msg, 8, "requests[0].expect");
}

#[test]
fn duplicate_request_names() {
    let msg = error_of(&format!("name = \"x\"\n{STAGE}{REQUEST}{REQUEST}"));
    assert_names(&msg, 9, "requests[1].name");
}

#[test]
fn target_with_credentials_is_refused() {
    let msg = error_of(&format!(
        "name = \"x\"\ntarget = \"https://u:hunter2@example.test\"\n{STAGE}{REQUEST}"
    ));
    assert_names(&msg, 2, "target");
    // The reason hides the password (the snippet below it quotes the file's line as written).
    let reason = msg.lines().next().unwrap_or_default();
    assert!(reason.contains("user:password@"), "{msg}");
    assert!(!reason.contains("hunter2"), "{msg}");
}

#[test]
fn empty_stage_list_and_silent_plan() {
    assert_names(
        &error_of(&format!("name = \"x\"\nstages = []\n{REQUEST}")),
        2,
        "stages",
    );
    let silent = format!("name = \"x\"\n[[stages]]\nduration = \"1s\"\nrate = 0\n{REQUEST}");
    assert_names(&error_of(&silent), 2, "stages");
}

#[test]
fn error_rate_threshold_out_of_range() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}{REQUEST}[thresholds]\nerror_rate = 5\n"
    ));
    assert_names(&msg, 9, "thresholds.error_rate");
}

#[test]
fn a_request_threshold_is_checked_and_named_with_its_request() {
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}{REQUEST}thresholds = {{ p99_ms = -1 }}\n"
    ));
    assert_names(&msg, 8, "requests[0].thresholds.p99_ms");
    let msg = error_of(&format!(
        "name = \"x\"\n{STAGE}{REQUEST}thresholds = {{ abort_on_fail = true }}\n"
    ));
    assert_names(&msg, 8, "requests[0].thresholds.abort_on_fail");
    assert!(msg.contains("top-level [thresholds]"), "{msg}");
}

#[test]
fn the_message_quotes_the_offending_line() {
    let msg = error_of(&format!("name = \"x\"\n{STAGE}{REQUEST}weight = 0\n"));
    assert!(msg.contains("8 | weight = 0"), "{msg}");
}

#[test]
fn a_missing_file_is_named() {
    let err = Scenario::from_file(Path::new("scenarios/does-not-exist.toml"));
    assert!(matches!(err, Err(ScenarioError::Read { .. })));
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("scenarios/does-not-exist.toml"), "{msg}");
}

#[test]
fn every_shipped_scenario_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for name in ["smoke", "steady", "ramp", "spike", "errors"] {
        let path = dir.join(format!("{name}.toml"));
        let scenario = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scenario.name, name);
    }
}
