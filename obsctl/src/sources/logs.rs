//! Backend log lines from a file, stdin, or the captured stdout (or stderr) of a spawned process.
//! Each line keeps its 1-based number and is parsed as a JSON object, or records why it is not
//! one, so a check can point at the exact line. Memory is bounded: the buffer keeps the newest
//! lines up to a cap (counting what it dropped) and truncates overlong lines.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Lines kept by default.
pub const DEFAULT_MAX_LINES: usize = 200_000;

/// Bytes kept of one line by default; the rest of an overlong line is discarded.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Why log lines could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file could not be opened.
    #[error("cannot open log file {path}: {error}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// Reading failed part-way (the lines read before are kept in the buffer).
    #[error("reading {origin} failed after {lines} lines: {detail}")]
    Read {
        /// What was read (a path, `stdin`, `child stdout`).
        origin: String,
        /// Lines read before the failure.
        lines: u64,
        /// The error.
        detail: String,
    },
}

/// Why a line is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineIssue {
    /// The line is empty or whitespace.
    Empty,
    /// The line is not JSON at all.
    NotJson {
        /// The JSON parser's complaint.
        error: String,
    },
    /// The line is JSON, but not an object.
    NotAnObject {
        /// What it is instead: `string`, `number`, `array`, `bool`, `null`.
        found: &'static str,
    },
    /// The line exceeded the per-line limit and was truncated before parsing.
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
}

impl std::fmt::Display for LineIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "empty line"),
            Self::NotJson { error } => write!(f, "not JSON: {error}"),
            Self::NotAnObject { found } => write!(f, "JSON {found}, not an object"),
            Self::TooLong { limit } => write!(f, "longer than {limit} bytes"),
        }
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// 1-based line number in its source.
    pub number: u64,
    /// The line's text (lossy UTF-8, without the line ending).
    pub text: String,
    /// The line as a JSON object, or why it is not one.
    pub parsed: Result<Map<String, Value>, LineIssue>,
}

impl LogLine {
    /// Parse `text` as line `number`.
    pub fn parse(number: u64, text: String) -> Self {
        let parsed = parse_object(&text);
        Self {
            number,
            text,
            parsed,
        }
    }

    /// The JSON field `key`, when the line is an object that has it.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.parsed.as_ref().ok()?.get(key)
    }

    /// The JSON field `key` as a string.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.field(key)?.as_str()
    }

    /// Whether the line describes a request: its request fields hold request values
    /// (`status_code` a status, as a number or a numeric string, or `endpoint` a path together
    /// with a `method`). `null`s, which a formatter prints for the fields other lines lack, are
    /// not a request.
    pub fn is_request_line(&self) -> bool {
        let endpoint = self
            .str_field("endpoint")
            .is_some_and(|e| e.starts_with('/'));
        let method = self.str_field("method").is_some_and(|m| !m.is_empty());
        self.status_code().is_some() || (endpoint && method)
    }

    /// The `status_code` field as a status, whether written as a number (as the contract says)
    /// or as a numeric string (`"200"`, a type error the checks report).
    pub fn status_code(&self) -> Option<u16> {
        let status = match self.field("status_code")? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        u16::try_from(status)
            .ok()
            .filter(|s| (100..600).contains(s))
    }

    /// `(method, endpoint, status_code)` of a request line, when the line has all three (a
    /// status written as a string counts: its type is a finding, the request still happened).
    pub fn request_key(&self) -> Option<RequestKey> {
        Some((
            self.str_field("method")?.to_owned(),
            self.str_field("endpoint")?.to_owned(),
            self.status_code()?,
        ))
    }
}

/// What a request line names: method, raw path (`endpoint`) and status code.
pub type RequestKey = (String, String, u16);

fn parse_object(text: &str) -> Result<Map<String, Value>, LineIssue> {
    if text.trim().is_empty() {
        return Err(LineIssue::Empty);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(LineIssue::NotAnObject {
            found: json_kind(&other),
        }),
        Err(e) => Err(LineIssue::NotJson {
            error: e.to_string(),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Limits of a [`LogBuffer`].
#[derive(Debug, Clone)]
pub struct LogLimits {
    /// Lines kept; older lines are dropped (and counted) beyond this.
    pub max_lines: usize,
    /// Bytes kept of one line.
    pub max_line_bytes: usize,
    /// The trace-id prefix of a load run whose request lines are counted as they arrive, so
    /// that they can be accounted for however many lines the cap drops
    /// ([`LogBuffer::run_request_lines`]).
    pub count_run: Option<String>,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_lines: DEFAULT_MAX_LINES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            count_run: None,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    lines: VecDeque<LogLine>,
    total: u64,
    dropped: u64,
    /// Request lines of the `count_run` run, per key, kept or dropped.
    run_requests: BTreeMap<RequestKey, u64>,
    /// Whether any line carried a `trace_id`: without them no line can be tied to a run.
    saw_trace_ids: bool,
    /// Set when the reader reached the end (or failed).
    finished: bool,
    error: Option<String>,
}

/// A shared, bounded buffer of log lines, fed by a reader task and read by checks.
/// Clones share the same buffer.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    inner: Arc<Mutex<Inner>>,
    /// Woken on every new line and at the end of input.
    changed: Arc<Notify>,
    limits: LogLimits,
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self::new(LogLimits::default())
    }
}

impl LogBuffer {
    /// An empty buffer with `limits`.
    pub fn new(limits: LogLimits) -> Self {
        Self {
            inner: Arc::default(),
            changed: Arc::default(),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Pushing a line cannot leave the buffer inconsistent: survive a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append a line (numbered after the previous one), dropping the oldest beyond the cap.
    pub fn push(&self, text: String) {
        self.push_parsed(|number| LogLine::parse(number, text));
    }

    fn push_parsed(&self, make: impl FnOnce(u64) -> LogLine) {
        {
            let mut inner = self.lock();
            inner.total += 1;
            let line = make(inner.total);
            if let Some(prefix) = &self.limits.count_run
                && let Some(trace_id) = line.str_field("trace_id")
            {
                inner.saw_trace_ids = true;
                if trace_id.starts_with(prefix.as_str())
                    && let Some(key) = line.request_key()
                {
                    *inner.run_requests.entry(key).or_default() += 1;
                }
            }
            inner.lines.push_back(line);
            while inner.lines.len() > self.limits.max_lines {
                inner.lines.pop_front();
                inner.dropped += 1;
            }
        }
        self.changed.notify_waiters();
    }

    /// The lines kept, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lock().lines.iter().cloned().collect()
    }

    /// Lines seen in total (kept and dropped).
    pub fn total_lines(&self) -> u64 {
        self.lock().total
    }

    /// The request lines of the run whose trace ids start with `prefix`, counted as they
    /// arrived (kept or dropped since): `None` unless the buffer was told to count that run
    /// ([`LogLimits::count_run`]) and saw lines with trace ids.
    pub fn run_request_lines(&self, prefix: &str) -> Option<BTreeMap<RequestKey, u64>> {
        if self.limits.count_run.as_deref() != Some(prefix) {
            return None;
        }
        let inner = self.lock();
        inner.saw_trace_ids.then(|| inner.run_requests.clone())
    }

    /// Lines dropped because the cap was reached.
    pub fn dropped_lines(&self) -> u64 {
        self.lock().dropped
    }

    /// Whether the input ended (EOF or a read error).
    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// The read error that ended the input, if any.
    pub fn read_error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    fn finish(&self, error: Option<String>) {
        {
            let mut inner = self.lock();
            inner.finished = true;
            inner.error = error;
        }
        self.changed.notify_waiters();
    }

    /// Wait until `pred` holds for the kept lines, the input ends, or `timeout` passes; return
    /// the lines kept at that moment.
    pub async fn wait_for_lines(
        &self,
        pred: impl Fn(&[LogLine]) -> bool,
        timeout: Duration,
    ) -> Vec<LogLine> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                let finished = inner.finished;
                let slice = inner.lines.make_contiguous();
                if pred(slice) || finished {
                    return slice.to_vec();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.lines();
            }
        }
    }
}

/// Read `reader` line by line into `buffer` until EOF or an error, in a background task.
/// `origin` names the input in errors (e.g. `child stdout`).
pub fn capture<R>(
    reader: R,
    buffer: LogBuffer,
    origin: impl Into<String>,
) -> JoinHandle<Result<(), LogError>>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let origin = origin.into();
    tokio::spawn(async move { read_into(reader, &buffer, &origin).await })
}

/// Read `reader` line by line into `buffer` until EOF or an error.
pub async fn read_into<R>(reader: R, buffer: &LogBuffer, origin: &str) -> Result<(), LogError>
where
    R: AsyncRead + Unpin,
{
    let mut reader = BufReader::new(reader);
    let limit = buffer.limits.max_line_bytes;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let result = read_line_bounded(&mut reader, &mut raw, limit).await;
        match result {
            Ok(None) => break,
            Ok(Some(truncated)) => push_raw(buffer, &raw, truncated, limit),
            Err(e) => {
                let detail = e.to_string();
                buffer.finish(Some(detail.clone()));
                return Err(LogError::Read {
                    origin: origin.to_owned(),
                    lines: buffer.total_lines(),
                    detail,
                });
            }
        }
    }
    buffer.finish(None);
    Ok(())
}

fn push_raw(buffer: &LogBuffer, raw: &[u8], truncated: bool, limit: usize) {
    let mut end = raw.len();
    while end > 0 && (raw[end - 1] == b'\n' || raw[end - 1] == b'\r') {
        end -= 1;
    }
    let text = String::from_utf8_lossy(&raw[..end]).into_owned();
    if truncated {
        buffer.push_parsed(|number| LogLine {
            number,
            text,
            parsed: Err(LineIssue::TooLong { limit }),
        });
    } else {
        buffer.push(text);
    }
}

/// Read one line into `out`, keeping at most `limit` bytes; `None` at EOF, else whether the
/// line was truncated.
async fn read_line_bounded<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Option<bool>> {
    let mut truncated = false;
    let mut read_any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(read_any.then_some(truncated));
        }
        read_any = true;
        let (piece, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..=i], true),
            None => (chunk, false),
        };
        let room = limit.saturating_sub(out.len());
        if piece.len() > room {
            truncated = true;
        }
        out.extend_from_slice(&piece[..piece.len().min(room)]);
        let used = piece.len();
        reader.consume(used);
        if done {
            return Ok(Some(truncated));
        }
    }
}

/// Read a whole log file.
pub async fn read_file(path: &Path, limits: LogLimits) -> Result<LogBuffer, LogError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|error| LogError::Open {
            path: path.to_owned(),
            error,
        })?;
    let buffer = LogBuffer::new(limits);
    read_into(file, &buffer, &path.display().to_string()).await?;
    Ok(buffer)
}

/// Read standard input to its end (the caller bounds the time, e.g. with a timeout, when
/// stdin may stay open).
pub async fn read_stdin(limits: LogLimits) -> Result<LogBuffer, LogError> {
    let buffer = LogBuffer::new(limits);
    read_into(tokio::io::stdin(), &buffer, "stdin").await?;
    Ok(buffer)
}

/// The captured output of a spawned process: a buffer fed by a background reader task, which
/// ends at EOF (when the process exits or closes the stream) and is aborted on drop.
#[derive(Debug)]
pub struct LogCapture {
    /// The lines, shared with the reader task.
    pub buffer: LogBuffer,
    task: Option<JoinHandle<Result<(), LogError>>>,
}

impl LogCapture {
    /// Start capturing `stream` (a `tokio::process::ChildStdout` or `ChildStderr`).
    pub fn start<R>(stream: R, limits: LogLimits, origin: impl Into<String>) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let buffer = LogBuffer::new(limits);
        let task = capture(stream, buffer.clone(), origin);
        Self {
            buffer,
            task: Some(task),
        }
    }

    /// Wait (at most `timeout`) for the stream to end, e.g. after the process exited, and
    /// report a read error if one ended it.
    /// When the stream does not end in time, reading stops and the lines so far are returned.
    pub async fn finish(mut self, timeout: Duration) -> Result<LogBuffer, LogError> {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            match tokio::time::timeout(timeout, task).await {
                Ok(Ok(result)) => result?,
                Ok(Err(_)) => {}
                Err(_) => abort.abort(),
            }
        }
        Ok(self.buffer.clone())
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
