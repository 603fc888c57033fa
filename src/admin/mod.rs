//! The admin API, served only on the admin listener: identities, their
//! sessions, and the audit trail, for operators and support staff.
//!
//! Guarded by `admin.token` (Bearer, compared in constant time); with no
//! token configured it answers loopback clients only.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{EmailAddress, PhoneNumber, Username};
use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientInfo, locale_of};
use crate::identity::{self, NewIdentity};
use crate::services::Services;
use crate::time::now_ms;

pub fn app(services: Services) -> Router {
    Router::new()
        .route("/health/alive", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/admin/identities", get(list_identities).post(create_identity))
        .route("/admin/identities/{id}", get(show_identity).delete(delete_identity))
        .route("/admin/identities/{id}/sessions", delete(revoke_sessions))
        .route("/admin/audit", get(audit_events))
        .layer(middleware::from_fn_with_state(services.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(crate::http::BODY_LIMIT))
        .with_state(services)
}

async fn guard(State(services): State<Services>, request: Request, next: Next) -> Result<Response, ApiError> {
    let locale = locale_of(request.headers(), &services);
    let allowed = match &services.settings.admin.token {
        Some(expected) => bearer(request.headers())
            .is_some_and(|given| subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into()),
        None => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback()),
    };
    if !allowed {
        return Err(ApiError::new(Error::Unauthorized, locale));
    }
    Ok(next.run(request).await)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_identities(
    State(services): State<Services>,
    client: ClientInfo,
    Query(page): Query<Page>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIdentity {
    email: String,
    username: Option<String>,
    phone: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default = "yes")]
    verified: bool,
    password: Option<String>,
}

fn yes() -> bool {
    true
}

async fn create_identity(
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
    let identity = identity::create(&services, new).await.map_err(|e| client.error(e))?;
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
        .map(|u| Username::parse(u).ok_or_else(|| invalid("username must be 3–64 letters, digits, '.', '_' or '-'")))
        .transpose()?;
    let phone = phone
        .map(|p| PhoneNumber::parse(p).ok_or_else(|| invalid("phone must be in international form, e.g. +84901234567")))
        .transpose()?;
    let valid_role = |r: &String| {
        !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
    };
    if !roles.iter().all(valid_role) {
        return Err(invalid("roles must be short ASCII names"));
    }
    Ok(NewIdentity {
        email,
        username,
        phone,
        roles,
        verified,
        password,
    })
}

fn invalid(detail: &str) -> Error {
    Error::InvalidRequest {
        key: "error.invalid_request",
        detail: detail.to_owned(),
    }
}

async fn show_identity(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let identity = identity::load(&services, &id)
        .await
        .map_err(|e| client.error(e))?
        .ok_or_else(|| client.error(Error::NotFound))?;
    Ok(Json(identity.to_admin_json()))
}

async fn delete_identity(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = services.store.delete_identity(&id).await.map_err(|e| client.error(e))?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(client.error(Error::NotFound))
    }
}

async fn revoke_sessions(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let revoked = services
        .store
        .revoke_identity_sessions(&id, now_ms())
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(json!({"revoked": revoked})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    identity: Option<String>,
    /// Unix milliseconds.
    since: Option<i64>,
    limit: Option<i64>,
}

async fn audit_events(
    State(services): State<Services>,
    client: ClientInfo,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
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
