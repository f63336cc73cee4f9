//! Backend log lines from files and from a spawned process's stdout.

use std::process::Stdio;
use std::time::{Duration, Instant};

use obsctl::sources::logs::{
    ALIASES, FIELDS, LineIssue, LogCapture, LogError, LogLimits, LogLine, excerpt, read_file,
};
use proptest::prelude::*;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::helpers::bounded;

const LINES: &str = concat!(
    r#"{"timestamp":"2025-01-01T00:00:00.000Z","level":"INFO","service":"fastapi-backend","message":"Request completed","status_code":200}"#,
    "\n",
    "INFO:     127.0.0.1:5000 - \"GET /health HTTP/1.1\" 200 OK\n",
    "\"a JSON string\"\n",
    "\n",
    "[1,2]\r\n",
    r#"{"message":"last line without newline"}"#,
);

fn limits(max_lines: usize, max_line_bytes: usize) -> LogLimits {
    LogLimits {
        max_lines,
        max_line_bytes,
        ..LogLimits::default()
    }
}

#[tokio::test]
async fn a_file_is_read_with_line_numbers_and_reasons() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("backend.log");
        std::fs::write(&path, LINES).expect("write");
        let buffer = read_file(&path, LogLimits::default()).await.expect("read");
        let lines = buffer.lines();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0].number, 1);
        assert_eq!(lines[0].str_field("level"), Some("INFO"));
        assert_eq!(
            lines[0].field("status_code").and_then(|v| v.as_i64()),
            Some(200)
        );
        assert!(matches!(lines[1].issue(), Some(LineIssue::NotJson { .. })));
        assert_eq!(
            lines[2].issue(),
            Some(&LineIssue::NotAnObject { found: "string" })
        );
        assert_eq!(lines[3].issue(), Some(&LineIssue::Empty));
        assert_eq!(lines[4].text(), "[1,2]", "CRLF stripped");
        assert_eq!(
            lines[4].issue(),
            Some(&LineIssue::NotAnObject { found: "array" })
        );
        assert_eq!(lines[5].number, 6);
        assert!(lines[5].is_object());
        assert!(buffer.is_finished());
        assert_eq!(buffer.read_error(), None);
    })
    .await;
}

#[tokio::test]
async fn the_buffer_keeps_the_newest_lines_and_counts_the_rest() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("many.log");
        let body: String = (1..=5).map(|i| format!("{{\"i\":{i}}}\n")).collect();
        std::fs::write(&path, body).expect("write");
        let buffer = read_file(&path, limits(3, 1024)).await.expect("read");
        let numbers: Vec<u64> = buffer.lines().iter().map(|l| l.number).collect();
        assert_eq!(numbers, [3, 4, 5]);
        assert_eq!(buffer.total_lines(), 5);
        assert_eq!(buffer.dropped_lines(), 2);
    })
    .await;
}

#[tokio::test]
async fn overlong_lines_are_truncated_and_flagged() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("long.log");
        let long = format!("{{\"pad\":\"{}\"}}\n{{\"ok\":true}}\n", "x".repeat(10_000));
        std::fs::write(&path, long).expect("write");
        let lines = read_file(&path, limits(10, 100))
            .await
            .expect("read")
            .lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text().len(), 100);
        assert_eq!(lines[0].issue(), Some(&LineIssue::TooLong { limit: 100 }));
        assert_eq!(lines[1].number, 2);
        assert!(lines[1].is_object());
    })
    .await;
}

#[tokio::test]
async fn a_missing_file_is_a_typed_error() {
    bounded(async {
        let err = read_file(
            std::path::Path::new("/nonexistent/obsctl.log"),
            LogLimits::default(),
        )
        .await
        .expect_err("missing");
        assert!(matches!(err, LogError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/obsctl.log"));
    })
    .await;
}

#[tokio::test]
async fn a_child_process_stdout_is_captured_as_it_arrives() {
    bounded(async {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#"echo '{"level":"INFO","n":1}'; echo plain text; sleep 0.2; echo '{"level":"ERROR","n":3}'; echo to-stderr >&2"#)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sh");
        let stdout = child.stdout.take().expect("piped stdout");
        let capture = LogCapture::start(stdout, LogLimits::default(), "child stdout");
        let lines = capture
            .buffer
            .wait_for_lines(|l| l.iter().any(|x| x.str_field("level") == Some("ERROR")), Duration::from_secs(10))
            .await;
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].number, 3);
        assert!(lines[1].issue().is_some());
        child.wait().await.expect("child exits");
        let buffer = capture.finish(Duration::from_secs(5)).await.expect("clean end");
        assert!(buffer.is_finished());
        assert_eq!(buffer.total_lines(), 3, "stderr is not stdout");
    })
    .await;
}

#[tokio::test]
async fn waiting_for_lines_that_never_come_stops_at_the_deadline() {
    bounded(async {
        let (mut writer, reader) = tokio::io::duplex(1024);
        let capture = LogCapture::start(reader, LogLimits::default(), "pipe");
        writer.write_all(b"{\"a\":1}\n").await.expect("write");
        let started = Instant::now();
        let lines = capture
            .buffer
            .wait_for_lines(|l| l.len() >= 2, Duration::from_millis(300))
            .await;
        assert_eq!(lines.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(290));
        assert!(!capture.buffer.is_finished());
        drop(writer);
    })
    .await;
}

#[tokio::test]
async fn whole_lines_show_while_the_next_one_is_still_being_written() {
    bounded(async {
        let (mut writer, reader) = tokio::io::duplex(1024);
        let capture = LogCapture::start(reader, LogLimits::default(), "pipe");
        writer
            .write_all(b"{\"level\":\"A\"}\n{\"level\":\"B\"}\n{\"level\":")
            .await
            .expect("write");
        let lines = capture
            .buffer
            .wait_for_lines(|l| l.len() >= 2, Duration::from_secs(5))
            .await;
        assert_eq!(lines.len(), 2, "not held back by the unfinished line");
        writer.write_all(b"\"C\"}\n").await.expect("write");
        drop(writer);
        let buffer = capture
            .finish(Duration::from_secs(5))
            .await
            .expect("clean end");
        let levels: Vec<Option<String>> = buffer
            .lines()
            .iter()
            .map(|l| l.str_field("level").map(str::to_owned))
            .collect();
        assert_eq!(
            levels,
            [Some("A".into()), Some("B".into()), Some("C".into())]
        );
    })
    .await;
}

/// A JSON object line with some of the contract's keys, an alias, repeats and keys no check
/// reads, holding values of every JSON type (strings with escapes, nested values).
fn object_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "timestamp",
        "level",
        "status_code",
        "endpoint",
        "trace_id",
        "duration_ms",
        "req",
        "msg",
        "other",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}|[\"\\\\\n/é]{0,4}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::vec((key, value), 0..8).prop_map(|fields| {
        let fields: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(*key)))
            .collect();
        format!("{{{}}}", fields.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The compact line reads exactly as the parsed map did: every kept key with its value
    /// (null, numbers, escaped strings, nested values), the last of repeated keys, and the text.
    #[test]
    fn a_stored_line_reads_as_serde_json_parses_it(text in object_line()) {
        let line = LogLine::parse(1, &text);
        let parsed: Map<String, Value> = serde_json::from_str(&text).expect("generated JSON");
        let kept = FIELDS.iter().chain(ALIASES.iter().flat_map(|(_, names)| names.iter()));
        for key in kept {
            prop_assert_eq!(line.field(key), parsed.get(*key).cloned(), "{}", key);
        }
        prop_assert_eq!(line.field("other"), None);
        prop_assert_eq!(line.text(), excerpt(&text));
    }
}
