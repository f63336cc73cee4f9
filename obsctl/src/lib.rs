//! obsctl: replay traffic against a service and prove that its Prometheus metrics, JSON logs and
//! OpenTelemetry traces work, as the instrumentation contract in DESIGN.md defines them.

pub mod check;
pub mod cli;
pub mod load;
pub mod report;
pub mod scenario;
pub mod sources;
pub mod verify;
