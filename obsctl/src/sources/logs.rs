//! Backend log lines from a file, stdin, or the captured stdout (or stderr) of a spawned process.
//! Each line keeps its 1-based number and is parsed as a JSON object, or records why it is not
//! one, so a check can point at the exact line.
//!
//! Memory is bounded by bytes, whatever the input's length: a line is truncated before it is
//! stored ([`read`]), stored compactly ([`line`]: only what the checks read), and the buffer
//! keeps the newest lines within a byte budget (and a line cap), counting what it dropped. What
//! a check needs of the dropped lines is aggregated as they arrive: the request lines of a load
//! run, per method, path and status ([`LogBuffer::run_request_lines`]).

mod line;
mod read;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::report::fold::PathFolder;

pub use line::{
    ALIASES, EXCERPT_CHARS, FIELDS, LineIssue, LogLine, MAX_VALUE_BYTES, RequestKey, excerpt,
};
pub use read::{LogCapture, capture, read_file, read_into, read_stdin};

/// Lines kept by default (the byte budget usually binds first).
pub const DEFAULT_MAX_LINES: usize = 200_000;

/// Bytes the kept lines of one buffer may hold by default ([`LogLine::stored_bytes`]): about
/// 28,000 request lines of the reference backend, 14 s of `obsctl verify --rps 2000`. A longer
/// run costs no more memory: the log checks judge the newest lines (saying so), and accounting
/// uses the run's lines counted on arrival. A larger budget only makes memory grow for longer
/// (64 MiB would keep a 60 s run whole, at about 34 MB more than a 20 s one).
pub const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Bytes kept of one line by default; the rest of an overlong line is discarded.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// Distinct (method, path, status) keys counted for a run: paths its templates rendered are
/// folded into the template, so only a service that logs paths the run never sent gets near.
/// Past the cap the counts are incomplete, and [`LogBuffer::run_request_lines`] says so.
pub const MAX_RUN_KEYS: usize = 10_000;

/// The load run whose request lines a buffer counts as they arrive.
#[derive(Debug, Clone)]
pub struct CountedRun {
    /// Its trace-id prefix (the run id).
    pub prefix: String,
    /// Its path templates, under which the concrete paths they rendered are counted.
    pub paths: PathFolder,
}

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
    /// The load run whose request lines are counted as they arrive, so that they can be
    /// accounted for however many lines the limits drop ([`LogBuffer::run_request_lines`];
    /// [`LogBuffer::count_run`] sets it later).
    pub count_run: Option<CountedRun>,
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
    /// The run whose request lines are counted on arrival.
    count_run: Option<CountedRun>,
    /// Request lines of the `count_run` run, per key, kept or dropped.
    run_requests: BTreeMap<RequestKey, u64>,
    /// Request lines of the run not counted per key: [`MAX_RUN_KEYS`] was reached.
    run_uncounted: u64,
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
        let Some(run) = &self.count_run else {
            return;
        };
        let Some(trace_id) = line.str_field("trace_id") else {
            return;
        };
        self.saw_trace_ids = true;
        if !trace_id.starts_with(run.prefix.as_str()) {
            return;
        }
        let Some((method, path, status)) = line.request_key() else {
            return;
        };
        self.run_total += 1;
        let path = match run.paths.fold(&method, &path) {
            Some(template) => template.to_owned(),
            None => path,
        };
        let key = (method, path, status);
        let room = self.run_requests.len() < MAX_RUN_KEYS;
        match self.run_requests.get_mut(&key) {
            Some(count) => *count += 1,
            None if room => {
                self.run_requests.insert(key, 1);
            }
            None => self.run_uncounted += 1,
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

    /// Counts the request lines of `run` from now on ([`LogBuffer::run_request_lines`]): call
    /// it before the run sends its first request. `obsctl verify` learns the run only after the
    /// service it captures has started.
    pub fn count_run(&self, run: CountedRun) {
        let mut inner = self.lock();
        if inner.count_run.as_ref().map(|r| r.prefix.as_str()) != Some(run.prefix.as_str()) {
            inner.run_requests.clear();
            inner.run_total = 0;
            inner.run_uncounted = 0;
            inner.saw_trace_ids = false;
        }
        inner.count_run = Some(run);
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
    /// ([`LogLimits::count_run`], [`LogBuffer::count_run`]), saw lines with trace ids, and
    /// could count every one of them per key ([`MAX_RUN_KEYS`]).
    pub fn run_request_lines(&self, prefix: &str) -> Option<BTreeMap<RequestKey, u64>> {
        let inner = self.lock();
        let counted = inner.count_run.as_ref().map(|r| r.prefix.as_str()) == Some(prefix);
        (counted && inner.saw_trace_ids && inner.run_uncounted == 0)
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
