//! A time window (a run's start and end) expressed in the units each API wants: Loki takes
//! Unix nanoseconds, Tempo Unix seconds, Prometheus fractional Unix seconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A closed time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Start of the window.
    pub start: SystemTime,
    /// End of the window.
    pub end: SystemTime,
}

impl TimeWindow {
    /// The window from `start` to `end`.
    pub fn new(start: SystemTime, end: SystemTime) -> Self {
        Self { start, end }
    }

    /// The window ending now and lasting `length`.
    pub fn last(length: Duration) -> Self {
        let end = SystemTime::now();
        Self {
            start: end.checked_sub(length).unwrap_or(UNIX_EPOCH),
            end,
        }
    }

    /// The same window widened by `margin` on both sides (ingestion timestamps drift a little).
    pub fn widened(self, margin: Duration) -> Self {
        Self {
            start: self.start.checked_sub(margin).unwrap_or(UNIX_EPOCH),
            end: self.end + margin,
        }
    }

    /// Start in Unix nanoseconds.
    pub fn start_nanos(&self) -> u128 {
        unix(self.start).as_nanos()
    }

    /// End in Unix nanoseconds.
    pub fn end_nanos(&self) -> u128 {
        unix(self.end).as_nanos()
    }

    /// Start in whole Unix seconds, rounded down.
    pub fn start_secs(&self) -> u64 {
        unix(self.start).as_secs()
    }

    /// End in whole Unix seconds, rounded up.
    pub fn end_secs(&self) -> u64 {
        let d = unix(self.end);
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }
}

/// Time since the Unix epoch (zero for earlier times).
fn unix(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        let w = TimeWindow::new(
            UNIX_EPOCH + Duration::from_millis(1_500),
            UNIX_EPOCH + Duration::from_millis(2_500),
        );
        assert_eq!(w.start_nanos(), 1_500_000_000);
        assert_eq!(w.start_secs(), 1);
        assert_eq!(w.end_secs(), 3);
        assert_eq!(w.widened(Duration::from_secs(1)).start_secs(), 0);
    }
}
