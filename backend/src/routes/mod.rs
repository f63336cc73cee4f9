//! The routes of the contract and the service that serves them.

pub mod error;
pub mod faults;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod observe;
pub mod users;

use salvo::catcher::Catcher;
use salvo::prelude::*;

use crate::store::Store;
use crate::telemetry::metrics::HttpMetrics;
use faults::Faults;
use limits::Limits;

/// What the service is built from.
pub struct Parts {
    /// The user store.
    pub store: Store,
    /// The request metrics.
    pub metrics: HttpMetrics,
    /// Fault injection on `/api/*`.
    pub faults: Faults,
    /// Concurrency cap, body and per-request time limits of the API.
    pub limits: Limits,
    /// Bearer token protecting `/metrics`, if any.
    pub metrics_token: Option<String>,
}

/// Builds the service: routes, the observing hoop around everything (so 404s, 405s, 413s,
/// limits and panics are measured too), the size limits inside it, the API's concurrency cap
/// and time limits on `/api` only (scrapes and probes answer while the API is saturated), and
/// the JSON error catcher.
pub fn service(parts: Parts) -> Service {
    let Parts {
        store,
        metrics,
        faults,
        limits,
        metrics_token,
    } = parts;
    let mut api = Router::with_path("api").hoop(limits);
    if !faults.is_off() {
        api = api.hoop(faults);
    }
    let api = api.push(
        Router::with_path("users")
            .post(users::CreateUser {
                store: store.clone(),
            })
            .push(Router::with_path("{user_id}").get(users::GetUser {
                store: store.clone(),
            })),
    );
    let router = Router::new()
        .push(api)
        .push(Router::with_path("health").get(health::Health { store }))
        .push(Router::with_path("metrics").get(metrics::MetricsEndpoint {
            metrics: metrics.clone(),
            token: metrics_token,
        }));
    Service::new(router)
        .hoop(observe::Observe::new(metrics))
        .hoop(limits::Oversized)
        .catcher(Catcher::new(error::JsonCatcher))
}
