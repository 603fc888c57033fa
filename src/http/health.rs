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

async fn alive() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and the courier's transport accepts connections.
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
