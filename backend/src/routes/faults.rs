//! Optional fault injection on `/api/*`, off by default: an error fraction and an added latency,
//! so that error and latency panels can be exercised on purpose.

use std::time::Duration;

use salvo::prelude::*;

use super::error::ApiError;

/// Answers a fraction of requests with 500 and delays every request, before the handler runs.
pub struct Faults {
    /// Fraction of requests (0 to 1) that answer 500.
    pub error_rate: f64,
    /// Added to every request.
    pub latency: Duration,
}

impl Faults {
    /// True when the hoop changes nothing and need not be mounted.
    pub fn is_off(&self) -> bool {
        self.error_rate <= 0.0 && self.latency.is_zero()
    }
}

#[async_trait]
impl Handler for Faults {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if self.error_rate > 0.0 && rand::random::<f64>() < self.error_rate {
            res.render(ApiError::internal("injected fault"));
            ctrl.skip_rest();
            return;
        }
        ctrl.call_next(req, depot, res).await;
    }
}
