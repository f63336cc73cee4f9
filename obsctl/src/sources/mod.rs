//! Sources: adapters that fetch and parse what a check needs to see (the target's /metrics,
//! Prometheus, Loki, Tempo, the embedded OTLP receiver, backend log lines). Each module speaks one
//! API, returns typed data plus evidence a check can show, and fails with a typed error.
//! Checks call these adapters and never speak HTTP themselves.
//!
//! - [`target`]: the service's `/metrics`, parsed by [`exposition`].
//! - [`prometheus`], [`loki`], [`tempo`], [`grafana`]: the stack's HTTP APIs, over the shared
//!   [`http`] client.
//! - [`prometheus_server`]: a real Prometheus started from the PATH, scraping given targets.
//! - [`otlp`]: an OTLP/gRPC trace receiver embedded in obsctl, reading requests on the wire
//!   ([`otlp_wire`]) into a bounded [`span_store`]; [`tempo`] maps its traces into the same
//!   [`span::ReceivedSpan`] (via [`otlp_json`]).
//! - [`logs`]: backend log lines from a file, stdin or a child process's captured output.
//! - [`window`]: a run's time window in each API's units.
//! - [`auth`]: credentials and tenants a source's requests carry.

pub mod auth;
pub mod exposition;
pub mod grafana;
pub mod http;
pub mod logs;
pub mod loki;
pub mod otlp;
pub mod otlp_json;
pub(crate) mod otlp_wire;
pub mod prometheus;
pub mod prometheus_server;
pub mod span;
pub mod span_store;
pub mod target;
pub mod tempo;
pub mod window;
