//! What the server tells operators about itself: Prometheus metrics (the
//! `metrics` facade, one process-wide recorder) and a window of recent request
//! latencies per route for the diagnostics API. Never records a secret: labels
//! are route templates, methods, statuses and channels.

pub mod latency;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use latency::LatencyLog;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the recorder's histograms are folded into their buckets.
/// Until then the recorder keeps every sample (8 bytes each, for every
/// request): without this, a server nobody scraped grew by about 80 kB a
/// second under a flood of 10,000 requests a second, without limit
/// (BENCHMARKS.md, 2026-12-06, seventh sitting).
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Upkeeps run so far.
static UPKEEPS: AtomicU64 = AtomicU64::new(0);

/// The process's Prometheus recorder, installed on first use with a thread
/// that keeps it (the recorder is process-wide, so is its upkeep). `None`
/// only if another recorder was installed first (then metrics go there).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .ok()
                .and_then(|builder| builder.install_recorder().ok())?;
            let kept = handle.clone();
            let upkeep = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        kept.run_upkeep();
                        UPKEEPS.fetch_add(1, Ordering::Relaxed);
                    }
                });
            if let Err(e) = upkeep {
                tracing::error!(error = %e, "cannot start the metrics upkeep thread; histograms grow until /metrics is read");
            }
            Some(handle)
        })
        .as_ref()
}

/// Upkeeps of the recorder run so far.
pub fn upkeeps() -> u64 {
    UPKEEPS.load(Ordering::Relaxed)
}

/// Counts and times every request by route template, for `/metrics` and the
/// latency API.
pub async fn track(State(log): State<LatencyLog>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let began = Instant::now();
    let response = next.run(request).await;
    let elapsed = began.elapsed();
    let status = response.status().as_u16().to_string();
    metrics::counter!("latchkey_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("latchkey_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(elapsed.as_secs_f64());
    log.record(format!("{method} {route}"), elapsed);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Histogram samples are folded into buckets without anyone reading
    /// `/metrics`, so an unscraped server does not keep them all.
    #[test]
    fn the_recorder_is_kept_without_a_scrape() {
        assert!(prometheus().is_some(), "the recorder is installed");
        let before = upkeeps();
        let deadline = Instant::now() + UPKEEP_EVERY * 5;
        while upkeeps() <= before {
            assert!(Instant::now() < deadline, "no upkeep within {:?}", UPKEEP_EVERY * 5);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
