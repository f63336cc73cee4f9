//! The routes of the contract and the service that serves them.

pub mod error;
pub mod faults;
pub mod health;
pub mod metrics;
pub mod observe;
pub mod users;

use salvo::catcher::Catcher;
use salvo::prelude::*;

use crate::store::Store;
use crate::telemetry::metrics::HttpMetrics;
use faults::Faults;

/// Builds the service: routes, the observing hoop around everything (so 404s, 405s, 413s and
/// panics are measured too) and the JSON error catcher.
pub fn service(store: Store, metrics: HttpMetrics, faults: Faults) -> Service {
    let mut api = Router::with_path("api");
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
        }));
    Service::new(router)
        .hoop(observe::Observe::new(metrics))
        .catcher(Catcher::new(error::JsonCatcher))
}
