//! Backend log lines from a file, stdin, or the captured stdout (or stderr) of a spawned process.
//! Each line keeps its 1-based number and is parsed as a JSON object, or records why it is not
//! one, so a check can point at the exact line.
//!
//! Memory is bounded by bytes, whatever the input's length: a line is truncated before it is
//! stored, stored compactly ([`line`]: only what the checks read), and the buffer keeps the
//! newest lines within a byte budget (and a line cap), counting what it dropped. What a check
//! needs of the dropped lines is aggregated as they arrive: the request lines of a load run,
//! per method, path and status ([`LogBuffer::run_request_lines`]).

mod line;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use line::{
    ALIASES, EXCERPT_CHARS, FIELDS, LineIssue, LogLine, MAX_VALUE_BYTES, RequestKey, excerpt,
};

/// Lines kept by default (the byte budget usually binds first).
pub const DEFAULT_MAX_LINES: usize = 200_000;

/// Bytes the kept lines of one buffer may hold by default ([`LogLine::stored_bytes`]): about
/// 56,000 request lines of the reference backend (28 s of `obsctl verify --rps 2000`). Past
/// that, a longer run costs no more memory: the checks judge the newest lines, and accounting
/// uses the run's lines counted on arrival. (64 MiB would keep a 60 s run whole, and cost 30 MB
/// more at its end.)
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

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

/// Limits of a [`LogBuffer`]: what bounds its memory, however long the input.
#[derive(Debug, Clone)]
pub struct LogLimits {
    /// Lines kept; older lines are dropped (and counted) beyond this.
    pub max_lines: usize,
    /// Bytes the kept lines may hold ([`LogLine::stored_bytes`]); older lines are dropped (and
    /// counted) beyond this.
    pub max_bytes: usize,
    /// Bytes kept of one line, before it is parsed; the rest of a longer line is discarded.
    pub max_line_bytes: usize,
    /// The trace-id prefix of a load run whose request lines are counted as they arrive, so
    /// that they can be accounted for however many lines the limits drop
    /// ([`LogBuffer::run_request_lines`]; [`LogBuffer::count_run`] sets it later).
    pub count_run: Option<String>,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_lines: DEFAULT_MAX_LINES,
            max_bytes: DEFAULT_MAX_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            count_run: None,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    lines: VecDeque<LogLine>,
    /// What `lines` hold, by [`LogLine::stored_bytes`].
    bytes: usize,
    total: u64,
    dropped: u64,
    /// The trace-id prefix of the run whose request lines are counted on arrival.
    count_run: Option<String>,
    /// Request lines of the `count_run` run, per key, kept or dropped.
    run_requests: BTreeMap<RequestKey, u64>,
    /// The sum of `run_requests`.
    run_total: u64,
    /// Whether any line carried a `trace_id` since `count_run` was set: without them no line
    /// can be tied to a run.
    saw_trace_ids: bool,
    /// Set when the reader reached the end (or failed).
    finished: bool,
    error: Option<String>,
}

impl Inner {
    /// Counts `line` if it is a request line of the counted run.
    fn count(&mut self, line: &LogLine) {
        let Some(prefix) = &self.count_run else {
            return;
        };
        let Some(trace_id) = line.str_field("trace_id") else {
            return;
        };
        self.saw_trace_ids = true;
        if trace_id.starts_with(prefix.as_str())
            && let Some(key) = line.request_key()
        {
            *self.run_requests.entry(key).or_default() += 1;
            self.run_total += 1;
        }
    }

    /// Drops the oldest lines until the rest fit `limits`.
    fn shed(&mut self, limits: &LogLimits) {
        while self.bytes > limits.max_bytes || self.lines.len() > limits.max_lines {
            let Some(oldest) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= oldest.stored_bytes();
            self.dropped += 1;
        }
    }
}

/// What a wait sees of a buffer, at one moment.
#[derive(Debug)]
pub struct Seen<'a> {
    /// The kept lines, oldest first.
    pub lines: &'a [LogLine],
    /// The counted run's request lines so far, kept or dropped ([`LogLimits::count_run`]);
    /// `None` when no run is counted or no line carried a trace id.
    pub run_request_lines: Option<u64>,
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
        let inner = Inner {
            count_run: limits.count_run.clone(),
            ..Inner::default()
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
            changed: Arc::default(),
            limits,
        }
    }

    /// The limits the buffer was made with.
    pub fn limits(&self) -> &LogLimits {
        &self.limits
    }

    /// Counts the request lines of the run whose trace ids start with `prefix` from now on
    /// ([`LogBuffer::run_request_lines`]): call it before the run sends its first request.
    /// `obsctl verify` learns the prefix only after the service it captures has started.
    pub fn count_run(&self, prefix: impl Into<String>) {
        let prefix = prefix.into();
        let mut inner = self.lock();
        if inner.count_run.as_deref() != Some(prefix.as_str()) {
            inner.count_run = Some(prefix);
            inner.run_requests.clear();
            inner.run_total = 0;
            inner.saw_trace_ids = false;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Pushing a line cannot leave the buffer inconsistent: survive a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append a line (numbered after the previous one), dropping the oldest beyond the limits.
    /// The line is truncated to [`LogLimits::max_line_bytes`] first.
    pub fn push(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        let limit = self.limits.max_line_bytes;
        if text.len() > limit {
            let mut end = limit;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            self.push_parsed(|number| LogLine::too_long(number, &text[..end], limit));
        } else {
            self.push_parsed(|number| LogLine::parse(number, text));
        }
    }

    fn push_parsed(&self, make: impl FnOnce(u64) -> LogLine) {
        {
            let mut inner = self.lock();
            inner.total += 1;
            let line = make(inner.total);
            inner.count(&line);
            inner.bytes += line.stored_bytes();
            inner.lines.push_back(line);
            inner.shed(&self.limits);
        }
        self.changed.notify_waiters();
    }

    /// The lines kept, oldest first (shared with the buffer, not copied).
    pub fn lines(&self) -> Vec<LogLine> {
        self.lock().lines.iter().cloned().collect()
    }

    /// Lines seen in total (kept and dropped).
    pub fn total_lines(&self) -> u64 {
        self.lock().total
    }

    /// The bytes the kept lines hold ([`LogLine::stored_bytes`]): at most
    /// [`LogLimits::max_bytes`].
    pub fn stored_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The request lines of the run whose trace ids start with `prefix`, counted as they
    /// arrived (kept or dropped since): `None` unless the buffer was told to count that run
    /// ([`LogLimits::count_run`], [`LogBuffer::count_run`]) and saw lines with trace ids.
    pub fn run_request_lines(&self, prefix: &str) -> Option<BTreeMap<RequestKey, u64>> {
        let inner = self.lock();
        (inner.count_run.as_deref() == Some(prefix) && inner.saw_trace_ids)
            .then(|| inner.run_requests.clone())
    }

    /// Lines dropped because the limits were reached.
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
        self.wait_until(|seen| pred(seen.lines), timeout).await
    }

    /// Wait until `pred` holds for what the buffer has seen (the kept lines and the counted
    /// run's lines), the input ends, or `timeout` passes; return the lines kept at that moment
    /// (shared with the buffer, not copied).
    pub async fn wait_until(
        &self,
        pred: impl Fn(&Seen<'_>) -> bool,
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
                let run_request_lines = inner.saw_trace_ids.then_some(inner.run_total);
                let lines = inner.lines.make_contiguous();
                let seen = Seen {
                    lines,
                    run_request_lines,
                };
                if pred(&seen) || finished {
                    return lines.to_vec();
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
    let text = String::from_utf8_lossy(&raw[..end]);
    if truncated {
        buffer.push_parsed(|number| LogLine::too_long(number, &text, limit));
    } else {
        buffer.push_parsed(|number| LogLine::parse(number, &text));
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
