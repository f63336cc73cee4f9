//! The standard process metrics, with `process_cpu_seconds_total` in fractional seconds.
//!
//! The prometheus crate's process collector keeps CPU time in an integer counter (whole seconds),
//! so a lightly loaded service reports 0 and the CPU panel moves in 1/60 = 1.67 % steps. This
//! collector forwards every other process metric and replaces that one with a float counter.

use prometheus::core::{Collector, Desc};
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Opts};

/// Name of the CPU counter this collector replaces.
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";

/// Process metrics of this process (Linux `/proc`; elsewhere the inner collector's behaviour).
pub struct ProcessMetrics {
    inner: ProcessCollector,
    cpu: Counter,
}

impl ProcessMetrics {
    /// Metrics of the calling process.
    pub fn for_self() -> Result<Self, prometheus::Error> {
        let cpu = Counter::with_opts(Opts::new(
            CPU_SECONDS,
            "Total user and system CPU time spent in seconds.",
        ))?;
        Ok(Self {
            inner: ProcessCollector::for_self(),
            cpu,
        })
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        // The inner collector's descriptors already name process_cpu_seconds_total as a counter.
        self.inner.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = self.inner.collect();
        let Some(seconds) = cpu_seconds() else {
            return families;
        };
        families.retain(|family| family.name() != CPU_SECONDS);
        // Concurrent scrapes may both add; the counter only ever moves up to the true value.
        let delta = seconds - self.cpu.get();
        if delta > 0.0 {
            self.cpu.inc_by(delta);
        }
        families.extend(self.cpu.collect());
        families
    }
}

#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    let ticks = procfs::ticks_per_second();
    (ticks > 0).then(|| (stat.utime + stat.stime) as f64 / ticks as f64)
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_are_fractional_and_grow_with_work() {
        let collector = ProcessMetrics::for_self().unwrap();
        let read = || {
            collector
                .collect()
                .into_iter()
                .find(|f| f.name() == CPU_SECONDS)
                .map(|f| f.get_metric()[0].get_counter().get_value())
                .expect("cpu family")
        };
        let before = read();
        // Burn CPU until the counter moves (bounded): an integer counter would jump by a whole
        // second at the earliest, a fractional one moves by one clock tick.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after <= before && started.elapsed() < std::time::Duration::from_secs(5) {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            after = read();
        }
        std::hint::black_box(x);
        assert!(after > before, "CPU time did not grow: {before} -> {after}");
        assert!(
            after - before < 0.9,
            "moved by whole seconds: {before} -> {after}"
        );
    }
}
