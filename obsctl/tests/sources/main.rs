//! Integration tests for obsctl's sources: each adapter against a real server where one runs
//! here (the embedded OTLP receiver, Prometheus) and against local HTTP servers replaying the
//! documented response bodies of Loki, Tempo and Prometheus; TLS and credentials against HTTPS
//! servers made in the test (rcgen certificates, hyper over tokio-rustls).

mod credentials;
mod exposition;
mod helpers;
mod http;
mod large_bodies;
mod log_budget;
mod logs;
mod loki;
mod openmetrics;
mod otlp;
mod otlp_hostile;
mod prometheus;
mod real_prometheus;
mod target;
mod tempo;
mod tls;
mod tls_support;
