//! Diagnostics: Prometheus metrics (served on the admin listener only: queue
//! depths and delivery counters would tell a public observer which addresses
//! have accounts), and recent request latencies per route for identities
//! with the `admin` role (the seed's System & Diagnostics API).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ClientInfo;
use super::session::credential;
use crate::error::Error;
use crate::services::Services;
use crate::session;

pub fn router() -> Router<Services> {
    Router::new().route("/api/v1/util/latency/metrics", get(latency))
}

/// Prometheus metrics
///
/// Every name in the `latchkey_` namespace: request counts and latency histograms per route, recovery and courier counters, outbox depth. Served on the admin listener only.
#[utoipa::path(get, path = "/metrics", tag = "System",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong admin token", body = crate::http::error::AuthError)))]
pub async fn prometheus(State(services): State<Services>, client: ClientInfo) -> Result<impl IntoResponse, ApiError> {
    let stats = services.store.outbox_stats().await.map_err(|e| client.error(e))?;
    metrics::gauge!("latchkey_outbox_depth").set(stats.pending as f64);
    let oldest_age = stats
        .oldest_pending_created_at
        .map_or(0.0, |t| ((crate::time::now_ms() - t).max(0) as f64) / 1000.0);
    metrics::gauge!("latchkey_outbox_oldest_age_seconds").set(oldest_age);
    let body = crate::observe::prometheus().map(|h| h.render()).unwrap_or_default();
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Window {
    /// Start of the window, Unix nanoseconds (default: an hour before `to_ns`).
    #[param(minimum = 0)]
    from_ns: Option<i64>,
    /// End of the window, Unix nanoseconds (default: now).
    #[param(minimum = 0)]
    to_ns: Option<i64>,
    /// Width of one bucket of the series, nanoseconds (default: one minute).
    #[param(minimum = 1)]
    bucket_ns: Option<i64>,
}

const MAX_BUCKETS: u64 = 10_000;

/// Request latency metrics
///
/// Count, min, max, average, p50, p95, p99 and a time-bucketed series of this server's request latencies per route. Requires the admin role.
#[utoipa::path(get, path = "/api/v1/util/latency/metrics", tag = "System & Diagnostics", params(Window),
    responses((status = 200, description = "Latency statistics per route", body = Object),
        (status = 400, description = "Invalid window", body = crate::http::error::AuthError),
        (status = 401, description = "Missing, expired or revoked session", body = crate::http::error::AuthError),
        (status = 403, description = "The admin role is required", body = crate::http::error::AuthError)),
    security(("bearer" = [])))]
async fn latency(
    State(services): State<Services>,
    client: ClientInfo,
    headers: HeaderMap,
    query: Result<Query<Window>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let credential = credential(&headers).ok_or_else(|| client.error(Error::Unauthorized))?;
    let (_, identity) = session::current(&services, credential)
        .await
        .map_err(|e| client.error(e))?;
    if !identity.record.role_list().iter().any(|r| r == "admin") {
        return Err(client.error(Error::Forbidden));
    }
    let Query(window) = query.map_err(|e| {
        client.error(Error::InvalidRequest {
            key: "error.invalid_request",
            detail: e.body_text(),
        })
    })?;
    let invalid = |detail: &str| {
        client.error(Error::InvalidRequest {
            key: "error.invalid_request",
            detail: detail.to_owned(),
        })
    };
    let non_negative = |value: Option<i64>| match value {
        Some(v) => u64::try_from(v)
            .map(Some)
            .map_err(|_| invalid("times must not be negative")),
        None => Ok(None),
    };
    let now = crate::time::now_ms().max(0) as u64 * 1_000_000;
    let to_ns = non_negative(window.to_ns)?.unwrap_or(now);
    let from_ns = non_negative(window.from_ns)?.unwrap_or(to_ns.saturating_sub(3_600_000_000_000));
    let bucket_ns = non_negative(window.bucket_ns)?.unwrap_or(60_000_000_000);
    if from_ns >= to_ns {
        return Err(invalid("from_ns must be before to_ns"));
    }
    if bucket_ns == 0 || (to_ns - from_ns) / bucket_ns > MAX_BUCKETS {
        return Err(invalid("bucket_ns must be positive and give at most 10000 buckets"));
    }
    let routes = services.latency.report(from_ns, to_ns, bucket_ns);
    Ok(Json(json!({
        "from_ns": from_ns,
        "to_ns": to_ns,
        "bucket_ns": bucket_ns,
        "routes": routes,
    })))
}
