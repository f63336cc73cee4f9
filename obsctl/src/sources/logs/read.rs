//! Reading log lines into a [`LogBuffer`]: from a file, stdin or a process's output stream, a
//! line at a time and at most [`LogLimits::max_line_bytes`] of each, so that reading never
//! holds more than one line besides what the buffer keeps.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

use super::{LogBuffer, LogError, LogLimits, LogLine};

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
