//! Sources: adapters that fetch and parse what a check needs to see (the target's /metrics,
//! Prometheus, Loki, Tempo, the embedded OTLP receiver, backend log lines). Each module speaks one
//! API, returns typed data plus evidence a check can show, and fails with a typed error.
//! Checks call these adapters and never speak HTTP themselves.

pub mod exposition;
pub mod http;
pub mod otlp;
pub mod prometheus;
pub mod span;
pub mod target;
