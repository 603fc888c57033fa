//! Admin routes on an identity's addresses: add one, mark it verified.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::openapi::{AddressKind, AdminIdentity};
use crate::error::Error;
use crate::http::error::{ApiError, AuthError};
use crate::http::extract::{ApiJson, ClientInfo, PathParam};
use crate::identity;
use crate::identity::manage::Address;
use crate::services::Services;

/// An email address or phone number of an identity.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    #[schema(value_type = AddressKind)]
    kind: String,
    value: String,
    verified: Option<bool>,
}

/// Add an address
///
/// Codes go to it only once it is verified (default: not verified).
#[utoipa::path(post, path = "/admin/identities/{id}/addresses", tag = "Identities", params(("id" = String, Path)),
    request_body = AddressBody,
    responses((status = 201, description = "The identity with the new address", body = AdminIdentity),
        (status = 400, description = "Invalid address", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity", body = AuthError),
        (status = 409, description = "Address already in use", body = AuthError),
        (status = 413, description = "Body too large", body = AuthError),
        (status = 415, description = "Wrong content type", body = AuthError)))]
pub async fn add(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    let address = Address::parse(&body.kind, &body.value).map_err(|e| client.error(e))?;
    let verified = body.verified.unwrap_or(false);
    let identity = identity::manage::add_address(&services, &id, &address, verified, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok((StatusCode::CREATED, Json(identity.to_admin_json())))
}

/// Mark an address verified
///
/// Or not, with `"verified": false` (default true).
#[utoipa::path(post, path = "/admin/identities/{id}/addresses/verify", tag = "Identities", params(("id" = String, Path)),
    request_body = AddressBody,
    responses((status = 200, description = "The identity", body = AdminIdentity),
        (status = 400, description = "Invalid address", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity or address", body = AuthError),
        (status = 413, description = "Body too large", body = AuthError),
        (status = 415, description = "Wrong content type", body = AuthError)))]
pub async fn verify(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<Json<Value>, ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    let address = Address::parse(&body.kind, &body.value).map_err(|e| client.error(e))?;
    let verified = body.verified.unwrap_or(true);
    let identity = identity::manage::set_verified(&services, &id, &address, verified, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(identity.to_admin_json()))
}
