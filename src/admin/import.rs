//! `POST /admin/identities/import`: up to `MAX_BATCH` identities with their
//! existing password hashes (SPEC §5.5), one result per item.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::ImportAnswer;
use crate::error::Error;
use crate::http::error::{ApiError, AuthError};
use crate::http::extract::{ApiJson, ClientInfo};
use crate::identity::import::{Import, ImportRecord, MAX_BATCH};
use crate::services::Services;

/// The request body limit of this route: a thousand records with their hashes.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// At most 1,000, each an `ImportRecord` (the schema of that name), read
    /// on its own: a malformed item fails alone, with its reason.
    #[schema(value_type = Vec<Value>, max_items = 1000)]
    identities: Vec<Value>,
    /// Check everything, write nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Import identities
///
/// Each item is written whole or not at all. An item naming an existing
/// identity (same id, email, username or phone) is skipped; a malformed one,
/// or one whose `password_hash` is in no supported format or has absurd
/// parameters, fails with its reason. Answers 200 with one result per item
/// in order, and the counts.
#[utoipa::path(post, path = "/admin/identities/import", tag = "Identities", request_body = ImportRequest,
    responses((status = 200, description = "One result per item", body = ImportAnswer),
        (status = 400, description = "Invalid request or more than 1,000 items", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 413, description = "Body over 2 MiB", body = AuthError),
        (status = 415, description = "Not JSON", body = AuthError)))]
pub async fn import(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ImportRequest>,
) -> Result<Json<Value>, ApiError> {
    if body.identities.len() > MAX_BATCH {
        return Err(client.error(Error::InvalidRequest {
            key: "error.invalid_request",
            detail: format!("at most {MAX_BATCH} identities per request"),
        }));
    }
    let items = body
        .identities
        .into_iter()
        .enumerate()
        .map(|(index, value)| (index, ImportRecord::from_value(value)))
        .collect();
    let mut import = Import::new(&services, client.0.clone(), "item", body.dry_run);
    let outcomes = import.batch(items).await.map_err(|e| client.error(e))?;
    if !body.dry_run && import.summary.imported > 0 {
        // The failure floor must cover the new hashes before they are tried.
        // The items are written: a failed census (which keeps a high floor) is no reason to hide that.
        if let Err(e) = crate::identity::census::take(&services).await {
            tracing::error!(error = %e, "taking the password hash census after an import failed");
        }
    }
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|(index, outcome)| {
            let mut item = serde_json::to_value(outcome).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut item {
                map.insert("index".into(), json!(index));
            }
            item
        })
        .collect();
    let mut answer = serde_json::to_value(&import.summary).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut answer {
        map.insert("results".into(), Value::Array(results));
    }
    Ok(Json(answer))
}
