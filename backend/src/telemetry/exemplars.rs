//! The newest exemplar of every histogram bucket of the request metrics: the ids of a sampled
//! request's SERVER span, its duration and when it ended, for the OpenMetrics exposition.
//!
//! Storing one is on every request's path, so it is cheap: a look-up without allocation in a
//! table read under a shared lock (a series is added once, on its first exemplar), then a
//! fixed-size slot per bucket written under a `try_lock` that never waits. A slot written less
//! than [`MIN_INTERVAL_MS`] ago is left alone, so a hot bucket's slot is written at most a
//! hundred times a second however many requests land in it. Nothing a client sends is stored:
//! the ids come from the span context (W3C-validated hex when a caller's trace is continued).

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::metrics::DURATION_BUCKETS;

/// A request's SERVER span, as an exemplar names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exemplar {
    /// The trace id (16 bytes, 32 hex digits).
    pub trace_id: [u8; 16],
    /// The span id (8 bytes, 16 hex digits).
    pub span_id: [u8; 8],
}

/// An exemplar as stored and exposed: the span's ids, the observed duration in seconds and the
/// Unix time (milliseconds) it was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stored {
    /// Whose request it was.
    pub ids: Exemplar,
    /// The duration observed, in seconds.
    pub value: f64,
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

/// A slot is not rewritten within this many milliseconds of its last write.
pub const MIN_INTERVAL_MS: u64 = 10;

/// Buckets per series: the contract's ten and `+Inf`.
pub const SLOTS: usize = DURATION_BUCKETS.len() + 1;

/// The newest exemplar per bucket of one series (`method`, `path`, `status_code`).
struct Series {
    method: Box<str>,
    path: Box<str>,
    status: u16,
    /// When each slot was last written (ms since the epoch), read before trying its lock.
    written: [AtomicU64; SLOTS],
    slots: [Mutex<Option<Stored>>; SLOTS],
}

/// The exemplars of every series; see the module docs.
#[derive(Default)]
pub struct ExemplarStore {
    table: RwLock<HashTable<Arc<Series>>>,
    hasher: DefaultHashBuilder,
}

impl ExemplarStore {
    /// Keeps `ids` as the exemplar of the bucket `elapsed` falls in, unless that slot was written
    /// within [`MIN_INTERVAL_MS`] or is being written right now.
    pub fn record(&self, method: &str, path: &str, status: u16, elapsed: Duration, ids: Exemplar) {
        let value = elapsed.as_secs_f64();
        let bucket = bucket_of(value);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let stored = Stored {
            ids,
            value,
            unix_ms,
        };
        // Under the shared lock, without taking a reference to the series: a reference count
        // would be one more cache line every request writes.
        let hash = self.hash(method, path, status);
        {
            let table = match self.table.read() {
                Ok(table) => table,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(series) = table.find(hash, |s| s.is(method, path, status)) {
                series.keep(bucket, stored);
                return;
            }
        }
        self.series(method, path, status).keep(bucket, stored);
    }

    /// The exemplars of series (`method`, `path`, `status`), one per bucket in bucket order
    /// (`+Inf` last); all `None` for a series that has none.
    pub fn buckets(&self, method: &str, path: &str, status: u16) -> [Option<Stored>; SLOTS] {
        let Some(series) = self.find(method, path, status) else {
            return [None; SLOTS];
        };
        std::array::from_fn(|i| match series.slots[i].lock() {
            Ok(slot) => *slot,
            Err(poisoned) => *poisoned.into_inner(),
        })
    }

    /// The series, added on its first exemplar.
    fn series(&self, method: &str, path: &str, status: u16) -> Arc<Series> {
        if let Some(found) = self.find(method, path, status) {
            return found;
        }
        let hash = self.hash(method, path, status);
        let mut table = match self.table.write() {
            Ok(table) => table,
            Err(poisoned) => poisoned.into_inner(),
        };
        let same = |s: &Arc<Series>| s.is(method, path, status);
        if let Some(found) = table.find(hash, same) {
            return Arc::clone(found);
        }
        let series = Arc::new(Series {
            method: method.into(),
            path: path.into(),
            status,
            written: std::array::from_fn(|_| AtomicU64::new(0)),
            slots: std::array::from_fn(|_| Mutex::new(None)),
        });
        let hasher = &self.hasher;
        table.insert_unique(hash, Arc::clone(&series), |s| {
            hash_of(hasher, &s.method, &s.path, s.status)
        });
        series
    }

    fn find(&self, method: &str, path: &str, status: u16) -> Option<Arc<Series>> {
        let hash = self.hash(method, path, status);
        let table = match self.table.read() {
            Ok(table) => table,
            Err(poisoned) => poisoned.into_inner(),
        };
        table
            .find(hash, |s| s.is(method, path, status))
            .map(Arc::clone)
    }

    fn hash(&self, method: &str, path: &str, status: u16) -> u64 {
        hash_of(&self.hasher, method, path, status)
    }
}

impl Series {
    /// Keeps `stored` in slot `bucket` unless that slot was written within
    /// [`MIN_INTERVAL_MS`] or is being written right now.
    fn keep(&self, bucket: usize, stored: Stored) {
        let last = self.written[bucket].load(Ordering::Relaxed);
        if last != 0 && stored.unix_ms.saturating_sub(last) < MIN_INTERVAL_MS {
            return;
        }
        // A concurrent writer holds it: its exemplar is as good as ours.
        let Ok(mut slot) = self.slots[bucket].try_lock() else {
            return;
        };
        *slot = Some(stored);
        self.written[bucket].store(stored.unix_ms, Ordering::Relaxed);
    }

    fn is(&self, method: &str, path: &str, status: u16) -> bool {
        self.status == status && *self.method == *method && *self.path == *path
    }
}

fn hash_of(hasher: &DefaultHashBuilder, method: &str, path: &str, status: u16) -> u64 {
    let mut state = hasher.build_hasher();
    method.hash(&mut state);
    path.hash(&mut state);
    status.hash(&mut state);
    state.finish()
}

/// The index of the first bucket whose upper bound holds `seconds` (`+Inf` last).
pub fn bucket_of(seconds: f64) -> usize {
    DURATION_BUCKETS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(DURATION_BUCKETS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: Exemplar = Exemplar {
        trace_id: [0xab; 16],
        span_id: [0xcd; 8],
    };

    #[test]
    fn a_duration_lands_in_the_first_bucket_that_holds_it() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(0.01), 0);
        assert_eq!(bucket_of(0.010_001), 1);
        assert_eq!(bucket_of(10.0), 9);
        assert_eq!(bucket_of(10.5), 10);
    }

    #[test]
    fn the_exemplar_is_kept_in_its_bucket_of_its_series_only() {
        let store = ExemplarStore::default();
        store.record("GET", "/health", 200, Duration::from_millis(30), IDS);
        let buckets = store.buckets("GET", "/health", 200);
        let kept: Vec<usize> = (0..SLOTS).filter(|i| buckets[*i].is_some()).collect();
        assert_eq!(kept, vec![2], "0.03 s is in the 0.05 bucket");
        let stored = buckets[2].expect("kept");
        assert_eq!(stored.ids, IDS);
        assert!((stored.value - 0.03).abs() < 1e-9);
        assert!(stored.unix_ms > 1_600_000_000_000);
        assert!(
            store
                .buckets("GET", "/health", 500)
                .iter()
                .all(Option::is_none)
        );
        assert!(
            store
                .buckets("POST", "/health", 200)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn a_slot_is_not_rewritten_within_the_interval() {
        let store = ExemplarStore::default();
        store.record("GET", "/", 200, Duration::from_millis(1), IDS);
        let other = Exemplar {
            trace_id: [1; 16],
            span_id: [2; 8],
        };
        store.record("GET", "/", 200, Duration::from_millis(2), other);
        assert_eq!(store.buckets("GET", "/", 200)[0].map(|s| s.ids), Some(IDS));
        std::thread::sleep(Duration::from_millis(MIN_INTERVAL_MS + 5));
        store.record("GET", "/", 200, Duration::from_millis(2), other);
        assert_eq!(
            store.buckets("GET", "/", 200)[0].map(|s| s.ids),
            Some(other)
        );
    }
}
