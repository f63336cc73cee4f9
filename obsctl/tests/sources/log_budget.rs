//! A log buffer's memory is bounded by bytes, whatever the input's length: it keeps the newest
//! lines within its budget, counts the ones it drops, still counts a run's request lines
//! exactly, and keeps what the checks read of each line it holds.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use obsctl::report::fold::PathFolder;
use obsctl::sources::logs::{CountedRun, LogBuffer, LogLimits, read_into};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, ReadBuf};

use crate::helpers::bounded;

/// The run's trace-id prefix (16 hex digits, as `obsctl load` makes it).
const RUN: &str = "00000000000000ab";

/// Request line `n` as the reference backend writes it: one of the run's requests on even
/// `n`, another client's on odd `n`; statuses 200, 404 and 500 by turn.
fn request_line(n: u64) -> String {
    let trace = if n.is_multiple_of(2) {
        format!("{RUN}{n:016x}")
    } else {
        format!("{:032x}", n + 1)
    };
    let (status, level) = [(200, "INFO"), (404, "WARNING"), (500, "ERROR")][(n % 3) as usize];
    format!(
        r#"{{"timestamp":"2026-01-01T00:00:00.000Z","level":"{level}","service":"fastapi-backend","message":"Request completed","endpoint":"/api/users/{}","method":"GET","status_code":{status},"duration_ms":0.25,"trace_id":"{trace}","span_id":"{:016x}"}}"#,
        n % 4,
        n + 1
    )
}

/// The run's request lines among `request_line(0..n)`, per (method, endpoint, status).
fn run_lines_among(n: u64) -> std::collections::BTreeMap<(String, String, u16), u64> {
    let mut expected = std::collections::BTreeMap::new();
    for i in (0..n).filter(|i| i.is_multiple_of(2)) {
        let status = [200, 404, 500][(i % 3) as usize];
        *expected
            .entry(("GET".to_owned(), format!("/api/users/{}", i % 4), status))
            .or_default() += 1;
    }
    expected
}

fn budget(max_bytes: usize, count_run: bool) -> LogLimits {
    LogLimits {
        max_bytes,
        max_lines: usize::MAX,
        count_run: count_run.then(|| CountedRun {
            prefix: RUN.to_owned(),
            paths: PathFolder::default(),
        }),
        ..LogLimits::default()
    }
}

#[test]
fn the_stored_bytes_stay_within_the_budget_for_an_input_many_times_larger() {
    let max_bytes = 256 * 1024;
    let buffer = LogBuffer::new(budget(max_bytes, false));
    let n = 20_000;
    let mut offered = 0;
    for i in 0..n {
        let line = request_line(i);
        offered += line.len();
        buffer.push(line);
        assert!(buffer.stored_bytes() <= max_bytes, "after line {i}");
    }
    assert!(offered > 10 * max_bytes, "the input is {offered} bytes");
    let kept = buffer.lines();
    assert!(kept.len() > 100, "{} lines kept", kept.len());
    assert_eq!(buffer.total_lines(), n);
    assert_eq!(
        buffer.dropped_lines() + kept.len() as u64,
        n,
        "drops counted"
    );
    // The newest lines are the ones kept, in order.
    let numbers: Vec<u64> = kept.iter().map(|l| l.number).collect();
    let first = n - kept.len() as u64 + 1;
    assert_eq!(numbers, (first..=n).collect::<Vec<_>>());
    let stored: usize = kept.iter().map(|l| l.stored_bytes()).sum();
    assert_eq!(stored, buffer.stored_bytes());
}

#[test]
fn a_request_line_is_stored_in_a_tenth_of_the_space_of_its_text_and_map() {
    let line = request_line(2);
    let buffer = LogBuffer::default();
    buffer.push(&line);
    let stored = buffer.stored_bytes();
    // Its text alone is 270 bytes; a parsed serde_json map of it held about 3 KB.
    assert!(stored < 400, "a request line holds {stored} bytes");
}

#[test]
fn the_runs_request_lines_are_counted_exactly_past_the_budget() {
    let n = 5_000;
    let buffer = LogBuffer::new(budget(64 * 1024, true));
    for i in 0..n {
        buffer.push(request_line(i));
    }
    assert!(buffer.dropped_lines() > n / 2, "most lines dropped");
    assert_eq!(buffer.run_request_lines(RUN), Some(run_lines_among(n)));
    assert_eq!(
        buffer.run_request_lines("00000000000000cd"),
        None,
        "another run"
    );

    // Told the run later (as `obsctl verify` does, once the run id exists): counted from then.
    let later = LogBuffer::new(budget(64 * 1024, false));
    later.push(r#"{"message":"started","trace_id":null}"#);
    assert_eq!(later.run_request_lines(RUN), None);
    later.count_run(CountedRun {
        prefix: RUN.to_owned(),
        paths: PathFolder::default(),
    });
    for i in 0..n {
        later.push(request_line(i));
    }
    assert_eq!(later.run_request_lines(RUN), Some(run_lines_among(n)));
}

#[tokio::test]
async fn a_wait_for_the_run_ends_on_the_lines_counted_though_they_were_dropped() {
    bounded(async {
        let buffer = LogBuffer::new(budget(16 * 1024, true));
        for i in 0..2_000 {
            buffer.push(request_line(i));
        }
        let kept = buffer
            .wait_until(
                |seen| seen.run_request_lines >= Some(1_000),
                std::time::Duration::from_secs(20),
            )
            .await;
        assert!(kept.len() < 1_000, "{} lines kept", kept.len());
        assert!(
            !buffer.is_finished(),
            "ended by the count, not by the end of input"
        );
    })
    .await;
}

#[test]
fn kept_lines_read_as_the_service_wrote_them() {
    let buffer = LogBuffer::default();
    let lines = [
        r#"{"extra":{"big":[1,2,3]},"timestamp":"2026-01-01T00:00:00Z","level":"INFO","service":"s","message":"m","endpoint":null,"status_code":"404","duration_ms":1.5}"#,
        r#"{"msg":"pino","time":1700000000000,"req":{"method":"GET","url":"/x"},"res":{"statusCode":200},"responseTime":3}"#,
        r#"{"level":"INFO","status_code":200.0,"span_id":"00f067aa0ba902b7","method":"GET","endpoint":"/a"}"#,
    ];
    for line in lines {
        buffer.push(line);
    }
    let kept = buffer.lines();

    // Null is not absent; a status written as a string reads as one, and still as a status.
    assert_eq!(kept[0].field("endpoint"), Some(Value::Null));
    assert_eq!(kept[0].field("method"), None);
    assert_eq!(kept[0].field("status_code"), Some(json!("404")));
    assert_eq!(kept[0].status_code(), Some(404));
    assert_eq!(kept[0].field("duration_ms"), Some(json!(1.5)));
    assert_eq!(kept[0].str_field("level"), Some("INFO"));
    assert!(kept[0].is_request_line());
    // Keys no check reads are not kept, but the text shows them.
    assert_eq!(kept[0].field("extra"), None);
    assert!(kept[0].text().contains(r#""extra":{"big":[1,2,3]}"#));

    // Other loggers' names are kept with their types, for the checks' hints.
    assert_eq!(kept[1].field("time"), Some(json!(1700000000000u64)));
    assert_eq!(
        kept[1].field("req"),
        Some(json!({"method": "GET", "url": "/x"}))
    );
    assert!(kept[1].field("res").is_some_and(|v| v.is_object()));
    assert_eq!(kept[1].field("responseTime"), Some(json!(3)));
    assert!(!kept[1].is_request_line());

    // A float status is a number, not a status; the request is still named by its fields.
    assert_eq!(kept[2].field("status_code"), Some(json!(200.0)));
    assert_eq!(kept[2].status_code(), None);
    assert!(kept[2].is_request_line());
    assert_eq!(kept[2].request_key(), None);
    assert_eq!(kept[2].text(), lines[2], "rebuilt exactly from its fields");
}

/// A reader that generates `lines` request lines without ever holding them.
struct Generated {
    next: u64,
    lines: u64,
    chunk: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(lines: u64) -> Self {
        Self {
            next: 0,
            lines,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at == self.chunk.len() {
            self.chunk.clear();
            self.at = 0;
            while self.chunk.len() < 32 * 1024 && self.next < self.lines {
                let line = request_line(self.next);
                self.chunk.extend_from_slice(line.as_bytes());
                self.chunk.push(b'\n');
                self.next += 1;
            }
        }
        let n = buf.remaining().min(self.chunk.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.chunk[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// This process's resident memory, from /proc/self/status.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("VmRSS in kB")
        * 1024
}

/// Reading an input of 400,000 request lines (110 MB; a few seconds in a debug build) through
/// an 8 MiB budget: the process grows by about the budget, not by the input.
#[tokio::test]
async fn reading_a_large_input_holds_no_more_than_the_budget() {
    bounded(async {
        let max_bytes = 8 * 1024 * 1024;
        let lines = 400_000;
        let buffer = LogBuffer::new(budget(max_bytes, true));
        let before = rss_bytes();
        read_into(Generated::new(lines), &buffer, "generated")
            .await
            .expect("read to the end");
        let grown = rss_bytes().saturating_sub(before);
        assert_eq!(buffer.total_lines(), lines);
        assert!(buffer.stored_bytes() <= max_bytes);
        assert!(buffer.dropped_lines() > lines / 2);
        assert_eq!(buffer.run_request_lines(RUN), Some(run_lines_among(lines)));
        // Kept whole, even compactly, the lines would take about 120 MB (as text and parsed
        // maps, 1.3 GB). The margin covers the allocator and the tests running alongside.
        assert!(
            grown < max_bytes + 32 * 1024 * 1024,
            "resident memory grew by {} MiB",
            grown >> 20
        );
    })
    .await;
}
