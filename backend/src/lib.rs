//! The reference service of the obsctl instrumentation contract (see docs/contract.md): a salvo app
//! whose every request yields one Prometheus observation, one JSON log line on stdout and one
//! OpenTelemetry SERVER span exported over OTLP/gRPC.

pub mod config;
pub mod routes;
pub mod server;
pub mod startup;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use startup::{Application, run};
