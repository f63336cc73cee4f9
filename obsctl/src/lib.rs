//! obsctl: replay traffic against a service and prove that its Prometheus metrics, JSON logs and
//! OpenTelemetry traces work, as the instrumentation contract (docs/contract.md) defines them.

pub mod check;
pub mod cli;
pub mod config_file;
pub mod load;
pub mod markup;
pub mod process;
pub mod report;
pub mod scenario;
pub mod sources;
pub mod tls;
pub mod verify;
