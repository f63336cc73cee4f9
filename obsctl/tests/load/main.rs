//! Integration tests of `obsctl load`: scenario validation and its messages, the engine against
//! a local server, extra headers, thresholds, the report's schema, the binary's exit codes and
//! outputs. Everything talks to 127.0.0.1 on ephemeral ports and bounds its own time.

mod cli;
mod engine;
mod headers;
mod helpers;
mod messages;
mod report_cli;
mod report_schema;
mod report_v2;
mod scenario_errors;
mod shards;
mod stdout;
mod thresholds;
mod verdict;
