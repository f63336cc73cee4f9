//! Integration tests of `obsctl load`: scenario validation, the engine against a local server,
//! thresholds, the report's schema, and the binary's exit codes. Everything talks to 127.0.0.1
//! on ephemeral ports and bounds its own time.

mod cli;
mod engine;
mod helpers;
mod report_schema;
mod scenario_errors;
mod thresholds;
