//! What the server tells operators about itself: Prometheus metrics (the
//! `metrics` facade, one process-wide recorder) and a window of recent request
//! latencies per route for the diagnostics API. Never records a secret: labels
//! are route templates, methods, statuses and channels.

pub mod latency;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use latency::LatencyLog;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the recorder's histograms are folded into their buckets.
/// Until then the recorder keeps every sample, one for every request:
/// without this, a server nobody scraped grew by about 24 bytes a request,
/// 1.5 MB a second under a flood of 63,000 `/health/alive` a second, without
/// limit (BENCHMARKS.md, 2026-12-06, seventh sitting).
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

/// The methods metrics and the latency log name; any other is `OTHER`, so
/// a client cannot add label values (each would be a series kept for the
/// life of the process).
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// How one route (a method and a route template) is measured: its name in
/// the latency log, its histogram and its counters by status. Made on the
/// route's first request and kept, so a request allocates no labels and
/// looks up no series.
struct Meter {
    name: Arc<str>,
    duration: Histogram,
    by_status: RwLock<Vec<(u16, Counter)>>,
    route: Arc<str>,
    method: &'static str,
}

impl Meter {
    fn new(method: &'static str, route: &str) -> Self {
        let route: Arc<str> = route.into();
        Self {
            name: format!("{method} {route}").into(),
            duration: metrics::histogram!("latchkey_http_request_duration_seconds",
                "route" => route.to_string(), "method" => method),
            by_status: RwLock::new(Vec::new()),
            route,
            method,
        }
    }

    fn count(&self, status: u16) {
        let known = self.by_status.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, counter)) = known.iter().find(|(s, _)| *s == status) {
            counter.increment(1);
            return;
        }
        drop(known);
        let mut known = self.by_status.write().unwrap_or_else(|e| e.into_inner());
        let at = match known.iter().position(|(s, _)| *s == status) {
            Some(at) => at,
            None => {
                let counter = metrics::counter!("latchkey_http_requests_total",
                    "route" => self.route.to_string(), "method" => self.method, "status" => status.to_string());
                known.push((status, counter));
                known.len() - 1
            }
        };
        known[at].1.increment(1);
    }
}

/// Meters by route template, then by method. Bounded: templates come from
/// the router (and `<unmatched>`), methods from [`METHODS`].
type Meters = HashMap<Box<str>, [Option<Arc<Meter>>; METHODS.len()]>;

static METERS: LazyLock<RwLock<Meters>> = LazyLock::new(Default::default);

fn meter(method: &Method, route: &str) -> Arc<Meter> {
    let index = method_index(method);
    let meters = METERS.read().unwrap_or_else(|e| e.into_inner());
    if let Some(meter) = meters.get(route).and_then(|m| m[index].as_ref()) {
        return meter.clone();
    }
    drop(meters);
    let mut meters = METERS.write().unwrap_or_else(|e| e.into_inner());
    meters.entry(route.into()).or_default()[index]
        .get_or_insert_with(|| Arc::new(Meter::new(METHODS[index], route)))
        .clone()
}

/// Counts and times every request by route template, for `/metrics` and the
/// latency API.
pub async fn track(State(log): State<LatencyLog>, request: Request, next: Next) -> Response {
    let meter = meter(
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or("<unmatched>", |p| p.as_str()),
    );
    let began = Instant::now();
    let response = next.run(request).await;
    let elapsed = began.elapsed();
    meter.count(response.status().as_u16());
    meter.duration.record(elapsed.as_secs_f64());
    log.record(meter.name.clone(), elapsed);
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
