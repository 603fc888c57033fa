//! Liveness and readiness probes.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ClientInfo;
use crate::error::Error;
use crate::services::Services;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/health/alive", get(alive))
        .route("/health/ready", get(ready))
}

/// Liveness
///
/// Answers while the process runs.
#[utoipa::path(get, path = "/health/alive", tag = "System & Diagnostics",
    responses((status = 200, description = "The process is up", body = Object)))]
async fn alive() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness
///
/// Answers when the database and the courier's transport are reachable.
#[utoipa::path(get, path = "/health/ready", tag = "System & Diagnostics",
    responses((status = 200, description = "Ready", body = Object),
        (status = 503, description = "A dependency is unavailable", body = crate::http::error::AuthError)))]
async fn ready(State(services): State<Services>, client: ClientInfo) -> Result<Json<Value>, ApiError> {
    if let Err(e) = services.store.ping().await {
        tracing::warn!(error = %format!("{e:#}"), "readiness: database unavailable");
        return Err(client.error(Error::Unavailable));
    }
    if !services.courier.ready().await {
        tracing::warn!("readiness: courier transport unavailable");
        return Err(client.error(Error::Unavailable));
    }
    Ok(Json(json!({"status": "ok"})))
}
