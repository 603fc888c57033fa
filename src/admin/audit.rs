//! The admin route on the audit trail.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::AuditEvent;
use crate::http::error::{ApiError, AuthError};
use crate::http::extract::{ApiQuery, ClientInfo};
use crate::services::Services;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this identity's events.
    identity: Option<String>,
    /// Only events since then, Unix milliseconds.
    since: Option<i64>,
    /// At most this many (1–1000, default 100).
    limit: Option<i64>,
}

/// Audit events
///
/// Newest first. Each admin event names its actor and peer address.
#[utoipa::path(get, path = "/admin/audit", tag = "Audit", params(AuditQuery),
    responses((status = 200, description = "Audit events", body = [AuditEvent]),
        (status = 400, description = "Invalid query", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError)))]
pub async fn events(
    State(services): State<Services>,
    client: ClientInfo,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    // No identity's id holds a control character (and PostgreSQL refuses a NUL).
    if query
        .identity
        .as_deref()
        .is_some_and(|id| id.chars().any(char::is_control))
    {
        return Ok(Json(json!([])));
    }
    let events = services
        .store
        .audit_events(
            query.identity.as_deref(),
            query.since,
            query.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(json!(events)))
}
