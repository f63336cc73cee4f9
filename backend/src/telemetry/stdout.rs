//! Stdout for log lines without a write system call per request: lines are appended to a
//! buffer that a flusher thread writes every few milliseconds, in order, and that is written
//! at once when it grows large (back-pressure, never loss). The guard flushes at shutdown.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::logs::LineSink;

/// How long a line may wait in the buffer.
const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// A buffer this large is written by the thread that fills it instead of waiting.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// Capacity of each of the two buffers: about 5 ms of lines at 40,000 requests a second.
const SPARE_CAPACITY: usize = 1024 * 1024;

struct Shared {
    pending: Mutex<Vec<u8>>,
    /// Held while a chunk is taken and written, so chunks reach stdout in the order taken. It
    /// keeps the buffer written last, emptied, to swap in for the next chunk: the pending
    /// buffer keeps its capacity instead of growing from nothing after every flush.
    io: Mutex<Vec<u8>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while appending bytes leaves them valid: keep using the buffer.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn flush(&self) {
        let mut chunk = self
            .io
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        chunk.clear();
        std::mem::swap(&mut *chunk, &mut *self.lock());
        if !chunk.is_empty() {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout must not take the service down: the lines are lost, not requests.
            let _ = stdout.write_all(&chunk).and_then(|()| stdout.flush());
        }
        // A burst's buffer is not kept: memory stays at the usual chunk size.
        if chunk.capacity() > SPARE_CAPACITY {
            *chunk = Vec::with_capacity(SPARE_CAPACITY);
        }
    }
}

/// The sink half: cheap to call from any request.
#[derive(Clone)]
pub struct BufferedStdout {
    shared: Arc<Shared>,
}

impl LineSink for BufferedStdout {
    fn write_line(&self, line: &[u8]) {
        let full = {
            let mut pending = self.shared.lock();
            pending.extend_from_slice(line);
            pending.len() >= MAX_PENDING
        };
        if full {
            self.shared.flush();
        }
    }
}

/// The flusher thread; [`Flusher::stop`] writes what is left and ends it.
pub struct Flusher {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Writes everything buffered so far.
    pub fn flush(&self) {
        self.shared.flush();
    }

    /// Stops the thread and writes what is left.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.shared.flush();
    }
}

/// A buffered stdout sink and the thread that flushes it.
pub fn buffered() -> std::io::Result<(BufferedStdout, Flusher)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::with_capacity(SPARE_CAPACITY)),
        io: Mutex::new(Vec::with_capacity(SPARE_CAPACITY)),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(FLUSH_INTERVAL);
                    shared.flush();
                }
            })?
    };
    Ok((
        BufferedStdout {
            shared: Arc::clone(&shared),
        },
        Flusher {
            shared,
            stop,
            thread: Some(thread),
        },
    ))
}
