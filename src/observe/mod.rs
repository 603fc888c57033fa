//! What the server tells operators about itself: Prometheus metrics (the
//! `metrics` facade, one process-wide recorder) and a window of recent request
//! latencies per route for the diagnostics API. Never records a secret: labels
//! are route templates, methods, statuses and channels.

pub mod latency;

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use latency::LatencyLog;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` only if
/// another recorder was installed first (then metrics go there).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            PrometheusBuilder::new()
                .set_buckets(&buckets)
                .ok()
                .and_then(|builder| builder.install_recorder().ok())
        })
        .as_ref()
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
