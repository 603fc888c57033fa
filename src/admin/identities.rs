//! Admin routes on identities: list, create, show, update, delete, revoke
//! their sessions, issue a support recovery code.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::{AdminIdentity, Revoked, SupportCode};
use crate::domain::{EmailAddress, PhoneNumber, Username};
use crate::error::Error;
use crate::http::error::{ApiError, AuthError};
use crate::http::extract::{ApiJson, ApiQuery, ClientInfo, PathParam};
use crate::identity::manage::IdentityUpdate;
use crate::identity::{self, NewIdentity};
use crate::services::Services;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// At most this many (1–1000, default 100).
    limit: Option<i64>,
    /// Skip this many.
    offset: Option<i64>,
}

/// List identities
///
/// Oldest first, with their addresses.
#[utoipa::path(get, path = "/admin/identities", tag = "Identities", params(Page),
    responses((status = 200, description = "Identities", body = [AdminIdentity]),
        (status = 400, description = "Invalid query", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError)))]
pub async fn list(
    State(services): State<Services>,
    client: ClientInfo,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    let records = services
        .store
        .list_identities(
            page.limit.unwrap_or(100).clamp(1, 1000),
            page.offset.unwrap_or(0).max(0),
        )
        .await
        .map_err(|e| client.error(e))?;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        if let Some(identity) = identity::load(&services, &record.identity_id)
            .await
            .map_err(|e| client.error(e))?
        {
            out.push(identity.to_admin_json());
        }
    }
    Ok(Json(Value::Array(out)))
}

/// A new identity.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentity {
    email: String,
    username: Option<String>,
    /// E.164, e.g. `+84901234567`.
    phone: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// Whether the addresses count as verified (default true).
    #[serde(default = "yes")]
    verified: bool,
    /// Checked against the password policy; none: the person sets one through recovery.
    password: Option<String>,
}

fn yes() -> bool {
    true
}

/// Create an identity
#[utoipa::path(post, path = "/admin/identities", tag = "Identities", request_body = CreateIdentity,
    responses((status = 201, description = "Created", body = AdminIdentity),
        (status = 400, description = "Invalid identity or password", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 409, description = "Email, username or phone already in use", body = AuthError),
        (status = 413, description = "Body too large", body = AuthError),
        (status = 415, description = "Wrong content type", body = AuthError),
        (status = 503, description = "Too many password checks queued", body = AuthError)))]
pub async fn create(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<CreateIdentity>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = parse_new_identity(
        &body.email,
        body.username.as_deref(),
        body.phone.as_deref(),
        body.roles,
        body.verified,
        body.password.map(SecretString::from),
    )
    .map_err(|e| client.error(e))?;
    let identity = identity::create_as(&services, new, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok((StatusCode::CREATED, Json(identity.to_admin_json())))
}

/// Parses operator input into a `NewIdentity` (shared by the CLI).
pub fn parse_new_identity(
    email: &str,
    username: Option<&str>,
    phone: Option<&str>,
    roles: Vec<String>,
    verified: bool,
    password: Option<SecretString>,
) -> Result<NewIdentity, Error> {
    let email = EmailAddress::parse(email).ok_or_else(|| Error::invalid("error.invalid_email"))?;
    let username = username
        .map(|u| Username::parse(u).ok_or_else(|| invalid(USERNAME_RULE)))
        .transpose()?;
    let phone = phone
        .map(|p| PhoneNumber::parse(p).ok_or_else(|| invalid("phone must be in international form, e.g. +84901234567")))
        .transpose()?;
    identity::manage::valid_roles(&roles)?;
    Ok(NewIdentity {
        email,
        username,
        phone,
        roles,
        verified,
        password,
    })
}

const USERNAME_RULE: &str = "username must be 3–64 letters, digits, '.', '_' or '-'";

fn invalid(detail: &str) -> Error {
    Error::InvalidRequest {
        key: "error.invalid_request",
        detail: detail.to_owned(),
    }
}

/// Show an identity
#[utoipa::path(get, path = "/admin/identities/{id}", tag = "Identities", params(("id" = String, Path)),
    responses((status = 200, description = "The identity", body = AdminIdentity),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity", body = AuthError)))]
pub async fn show(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    let identity = identity::load(&services, &id)
        .await
        .map_err(|e| client.error(e))?
        .ok_or_else(|| client.error(Error::NotFound))?;
    Ok(Json(identity.to_admin_json()))
}

/// Delete an identity
///
/// With its addresses, sessions and flows.
#[utoipa::path(delete, path = "/admin/identities/{id}", tag = "Identities", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity", body = AuthError)))]
pub async fn delete(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
) -> Result<StatusCode, ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    identity::manage::delete(&services, &id, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deserializes a present field, even `null`, as `Some`, so `Option<Option<T>>`
/// tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Changes to an identity; absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIdentity {
    /// A new username, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    username: Option<Option<String>>,
    /// Replaces every role.
    roles: Option<Vec<String>>,
    /// A new password: checked against the policy; every session is revoked.
    password: Option<String>,
}

/// Update an identity
#[utoipa::path(patch, path = "/admin/identities/{id}", tag = "Identities", params(("id" = String, Path)),
    request_body = UpdateIdentity,
    responses((status = 200, description = "The updated identity", body = AdminIdentity),
        (status = 400, description = "Invalid username, roles or password", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity", body = AuthError),
        (status = 409, description = "Username already in use", body = AuthError),
        (status = 413, description = "Body too large", body = AuthError),
        (status = 415, description = "Wrong content type", body = AuthError),
        (status = 503, description = "Too many password checks queued", body = AuthError)))]
pub async fn update(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
    ApiJson(body): ApiJson<UpdateIdentity>,
) -> Result<Json<Value>, ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    let username = body
        .username
        .map(|u| {
            u.map(|u| Username::parse(&u).ok_or_else(|| invalid(USERNAME_RULE)))
                .transpose()
        })
        .transpose()
        .map_err(|e| client.error(e))?;
    let update = IdentityUpdate {
        username,
        roles: body.roles,
        password: body.password.map(SecretString::from),
    };
    let identity = identity::manage::update(&services, &id, update, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(identity.to_admin_json()))
}

/// Issue a support recovery code
///
/// A code for support staff to read out, with the token and browser link that open its flow. It is not sent.
#[utoipa::path(post, path = "/admin/identities/{id}/recovery-code", tag = "Identities", params(("id" = String, Path)),
    responses((status = 201, description = "The code, its token and link", body = SupportCode),
        (status = 400, description = "The identity has no verified address", body = AuthError),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity", body = AuthError)))]
pub async fn recovery_code(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    let issued = support_code(&services, &id, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Issues a support code and describes it (shared by the CLI).
pub async fn support_code(
    services: &Services,
    identity_id: &str,
    client: &crate::services::Client,
) -> Result<Value, Error> {
    let issued = crate::recovery::issue_for_support(services, identity_id, client).await?;
    let token = crate::recovery::token::issue(services, &issued.started)?;
    let link = format!(
        "{}/ui/recovery/link?token={token}",
        services.settings.public_url.trim_end_matches('/')
    );
    Ok(json!({
        "flow_id": issued.started.flow_id,
        "code": issued.code.expose(),
        "expires_at": crate::time::rfc3339(issued.started.expires_at),
        "token": token,
        "recovery_link": link,
    }))
}

/// Unfreeze an identity
///
/// Lifts the freeze the owner's "this wasn't me" link put on the identity:
/// password login and recovery work again. Idempotent.
#[utoipa::path(post, path = "/admin/identities/{id}/unfreeze", tag = "Identities", params(("id" = String, Path)),
    responses((status = 200, description = "The identity, no longer frozen", body = AdminIdentity),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity", body = AuthError)))]
pub async fn unfreeze(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    let identity = crate::report::unfreeze(&services, &id, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(identity.to_admin_json()))
}

/// Revoke every session
#[utoipa::path(delete, path = "/admin/identities/{id}/sessions", tag = "Identities", params(("id" = String, Path)),
    responses((status = 200, description = "How many sessions were revoked", body = Revoked),
        (status = 401, description = "Missing or wrong admin token", body = AuthError),
        (status = 404, description = "No such identity", body = AuthError)))]
pub async fn revoke_sessions(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let id = id.ok_or_else(|| client.error(Error::NotFound))?;
    let revoked = identity::manage::revoke_sessions(&services, &id, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(json!({"revoked": revoked})))
}
