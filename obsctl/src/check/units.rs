//! `duration-units`: the duration histogram (seconds) and the request log lines' `duration_ms`
//! (milliseconds) measure the same requests on the same side, so their means agree within a
//! small factor. A factor near 1000 is a unit error: `observe(duration_ms)` into a seconds
//! histogram, or seconds written as `duration_ms`. Each signal looks plausible alone.

use super::context::CheckContext;
use super::model::Outcome;
use crate::sources::exposition::Exposition;

/// The histogram of the contract.
const HISTOGRAM: &str = "fastapi_request_duration_seconds";

/// Means further apart than this factor cannot both be right.
const FACTOR: f64 = 100.0;

/// `duration-units`; see the module docs.
pub async fn durations_agree(ctx: &CheckContext) -> Outcome {
    const NEEDS: &str = "pass --target and --logs, or use `obsctl verify`, which has both";
    let Some(input) = &ctx.logs else {
        return Outcome::skip("needs /metrics and the service's logs", NEEDS);
    };
    let parsed = match ctx.scrape().await {
        Some(Ok(scrape)) => match &scrape.parsed {
            Ok(parsed) => parsed,
            Err(_) => {
                return Outcome::skip(
                    "not judged: /metrics is not Prometheus text",
                    "the metrics-endpoint check says why",
                );
            }
        },
        Some(Err(_)) => return Outcome::skip("/metrics could not be read", "see metrics-endpoint"),
        None => return Outcome::skip("needs /metrics and the service's logs", NEEDS),
    };
    let (mut sum, mut count) = totals(parsed);
    if let Some(before) = &ctx.baseline {
        let (sum_before, count_before) = totals(before);
        if count - count_before > 0.0 {
            sum -= sum_before;
            count -= count_before;
        }
    }
    if count <= 0.0 {
        return Outcome::skip(
            format!("{HISTOGRAM} has no observations"),
            "see the duration-histogram check",
        );
    }
    let durations = || -> Vec<f64> {
        input
            .buffer
            .lines()
            .iter()
            .filter_map(|line| line.field("duration_ms")?.as_f64())
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .collect()
    };
    let logged = ctx
        .poll(|| async {
            let found = durations();
            (!found.is_empty()).then_some(found)
        })
        .await
        .unwrap_or_else(durations);
    if logged.is_empty() {
        return Outcome::skip(
            "no request log line with a numeric duration_ms",
            "see the logs-fields check",
        );
    }
    judge(sum / count * 1e3, &logged)
}

/// `_sum` and `_count` of the histogram over all its series.
fn totals(exposition: &Exposition) -> (f64, f64) {
    exposition.family(HISTOGRAM).map_or((0.0, 0.0), |family| {
        (
            family.sum_matching(&format!("{HISTOGRAM}_sum"), &[]),
            family.sum_matching(&format!("{HISTOGRAM}_count"), &[]),
        )
    })
}

/// Compares the histogram's mean (in ms) with the logged durations. Whole-millisecond logs of
/// sub-millisecond requests read 0 or 1: their mean is only known to half a millisecond.
fn judge(histogram_ms: f64, logged: &[f64]) -> Outcome {
    let log_ms = logged.iter().sum::<f64>() / logged.len() as f64;
    let whole = logged.iter().all(|ms| ms.fract() == 0.0);
    let (low, high) = if whole {
        ((log_ms - 0.5).max(0.0), log_ms + 0.5)
    } else {
        (log_ms, log_ms)
    };
    let seen = format!(
        "mean request: {histogram_ms:.3} ms by {HISTOGRAM} (_sum / _count), {log_ms:.3} ms by \
         {} log lines' duration_ms",
        logged.len()
    );
    if histogram_ms > FACTOR * high {
        return Outcome::fail(
            format!(
                "the histogram says requests take {:.0}x longer than the log lines do",
                histogram_ms / high.max(f64::MIN_POSITIVE)
            ),
            "observe seconds in fastapi_request_duration_seconds (time.time() differences, not \
             milliseconds), and write milliseconds as duration_ms (seconds x 1000)",
        )
        .evidence(seen);
    }
    if histogram_ms * FACTOR < low {
        return Outcome::fail(
            format!(
                "the log lines say requests take {:.0}x longer than the histogram does",
                low / histogram_ms.max(f64::MIN_POSITIVE)
            ),
            "write duration_ms in milliseconds (seconds x 1000), and observe seconds (not whole \
             seconds, which round to 0) in fastapi_request_duration_seconds",
        )
        .evidence(seen);
    }
    Outcome::pass(format!(
        "mean request {histogram_ms:.3} ms by the histogram, {log_ms:.3} ms by the log lines"
    ))
    .evidence(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::model::Status;

    #[test]
    fn agreeing_means_pass_and_unit_errors_fail_both_ways() {
        assert_eq!(judge(2.1, &[1.9, 2.2]).status, Status::Pass);
        // observe(duration_ms) into the seconds histogram: 2 ms becomes 2 s.
        assert_eq!(judge(2_000.0, &[1.9, 2.2]).status, Status::Fail);
        // duration_ms written in seconds.
        assert_eq!(judge(2.0, &[0.0019, 0.0022]).status, Status::Fail);
        // observe(int(seconds)): every observation 0.
        assert_eq!(judge(0.0, &[1.9, 2.2]).status, Status::Fail);
    }

    #[test]
    fn whole_millisecond_logs_of_fast_requests_are_not_a_unit_error() {
        // 0.3 ms requests logged as 0 (rounded): the mean is known to half a millisecond.
        assert_eq!(judge(0.3, &[0.0, 0.0, 1.0, 0.0]).status, Status::Pass);
        assert_eq!(judge(0.004, &[0.0, 0.0]).status, Status::Pass);
        // ... but a seconds histogram fed milliseconds still shows.
        assert_eq!(judge(300.0, &[0.0, 0.0, 1.0, 0.0]).status, Status::Fail);
    }
}
