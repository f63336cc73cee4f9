//! Integration tests for the Grafana side of obsctl (issue 5): the Grafana adapter and the
//! `grafana` check against a local server replaying Grafana's documented API answers (no
//! Grafana runs here), the `dashboard-panels` check evaluating the deployed dashboard against
//! fake Prometheus and Loki servers, and the `obsctl check` flags.

mod adapter;
mod check;
mod cli;
mod fixtures;
mod helpers;
mod panels;
