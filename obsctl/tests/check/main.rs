//! Integration tests for `obsctl check`: every diagnosis is triggered by a deliberately broken
//! target built here (a tiny server, a log buffer or an OTLP export with exactly that defect)
//! and must produce the failing check, with its message; a target that honours the contract
//! passes. Fake Prometheus answers use the documented bodies of its HTTP API.

mod accounting;
mod cli;
mod exemplars;
mod exposition;
mod findings;
mod helpers;
mod logs;
mod metrics;
mod prometheus;
mod render;
mod replicas;
mod stack;
mod stack_accounting;
mod traces;
