//! Integration tests: the real backend binary, on loopback, with real OTLP/gRPC and SQLite.

mod bad_input;
mod collector;
mod exemplars;
mod helpers;
mod hostile;
mod limits;
mod logs;
mod metrics;
mod server;
mod shutdown;
mod traces;
mod verify;
