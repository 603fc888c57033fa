//! Session routes (seed: Vero): login, current session, refresh, logout, and
//! the JWKS that verifies every JWT latchkey signs.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::extract::{ApiJson, ClientInfo};
use crate::error::Error;
use crate::identity::Identity;
use crate::services::Services;
use crate::session::{self, Credential, IssuedSession};
use crate::store::SessionRecord;
use crate::time::{now_ms, rfc3339};

pub fn router() -> Router<Services> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/session", get(current))
        .route("/api/auth/session/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/.well-known/jwks.json", get(jwks))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    identifier: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionTokenRequest {
    session_token: String,
}

/// The seed's `AuthIdentity`.
#[derive(Serialize)]
pub struct AuthIdentity {
    id: String,
    traits: Value,
}

/// The seed's `AuthSessionDevice`.
#[derive(Serialize)]
pub struct AuthSessionDevice {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

/// The seed's `AuthSession`; `tokenized` is the Bearer JWT when present.
#[derive(Serialize)]
pub struct AuthSession {
    id: String,
    active: bool,
    authenticated_at: String,
    expires_at: String,
    devices: Vec<AuthSessionDevice>,
    identity: AuthIdentity,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokenized: Option<String>,
}

/// The seed's `AuthLoginResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthLoginResponse {
    session_token: String,
    jwt: String,
    session: AuthSession,
    identity: AuthIdentity,
    tokenized_session: AuthSession,
}

impl AuthIdentity {
    fn from(identity: &Identity) -> Self {
        Self {
            id: identity.id().to_owned(),
            traits: identity.traits(),
        }
    }
}

impl AuthSession {
    pub fn from(record: &SessionRecord, identity: &Identity, tokenized: Option<&str>) -> Self {
        Self {
            id: record.session_id.clone(),
            active: record.is_active(now_ms()),
            authenticated_at: rfc3339(record.authenticated_at),
            expires_at: rfc3339(record.expires_at),
            devices: vec![AuthSessionDevice {
                ip_address: record.ip_address.clone(),
                user_agent: record.user_agent.clone(),
            }],
            identity: AuthIdentity::from(identity),
            tokenized: tokenized.map(str::to_owned),
        }
    }
}

impl AuthLoginResponse {
    pub fn from(issued: &IssuedSession) -> Self {
        Self {
            session_token: issued.token.expose().to_owned(),
            jwt: issued.jwt.clone(),
            session: AuthSession::from(&issued.record, &issued.identity, None),
            identity: AuthIdentity::from(&issued.identity),
            tokenized_session: AuthSession::from(&issued.record, &issued.identity, Some(&issued.jwt)),
        }
    }
}

async fn login(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<AuthLoginResponse>, ApiError> {
    let issued = session::login(
        &services,
        &body.identifier,
        SecretString::from(body.password),
        &client.0,
    )
    .await
    .map_err(|e| client.error(e))?;
    Ok(Json(AuthLoginResponse::from(&issued)))
}

/// `Authorization: Bearer <jwt>` or `X-Session-Token: <token>`.
pub fn credential(headers: &HeaderMap) -> Option<Credential> {
    if let Some(token) = headers.get("x-session-token").and_then(|v| v.to_str().ok()) {
        return Some(Credential::Token(token.trim().to_owned()));
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, jwt) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Credential::Jwt(jwt.trim().to_owned()))
}

async fn current(
    State(services): State<Services>,
    client: ClientInfo,
    headers: HeaderMap,
) -> Result<Json<AuthSession>, ApiError> {
    let credential = credential(&headers).ok_or_else(|| client.error(Error::Unauthorized))?;
    let (record, identity) = session::current(&services, credential)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(AuthSession::from(&record, &identity, None)))
}

async fn refresh(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<SessionTokenRequest>,
) -> Result<Json<AuthLoginResponse>, ApiError> {
    let issued = session::refresh(&services, &body.session_token)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(AuthLoginResponse::from(&issued)))
}

async fn logout(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<SessionTokenRequest>,
) -> Result<StatusCode, ApiError> {
    session::logout(&services, &body.session_token, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn jwks(State(services): State<Services>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(services.keys.jwks()),
    )
}
