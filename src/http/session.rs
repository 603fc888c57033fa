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

use super::error::{ApiError, AuthError};
use super::extract::{ApiJson, ClientInfo, locale_of};
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

/// Request to sign in with a login and a password.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthLoginRequest)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email address or username.
    #[schema(max_length = 320)]
    identifier: String,
    password: String,
}

/// Request naming a session by its session token.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthSessionTokenRequest)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionTokenRequest {
    /// Session token returned after authentication.
    session_token: String,
}

/// Account identity returned by the authenticated session.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthIdentity {
    /// Unique identifier for the record.
    id: String,
    /// Account attributes returned with the authenticated session.
    #[schema(value_type = Object)]
    traits: Value,
}

/// AuthSessionDevice schema.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthSessionDevice {
    /// IP address reported for the session device.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    /// User agent reported for the session device.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

/// Session object. The `tokenized` field is the Bearer JWT used for API calls.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthSession {
    /// Unique identifier for the record.
    id: String,
    /// Indicates whether the session is active.
    active: bool,
    /// Timestamp when the session was authenticated.
    #[schema(format = DateTime)]
    authenticated_at: String,
    /// Timestamp when the session expires.
    #[schema(format = DateTime)]
    expires_at: String,
    /// Devices associated with the authenticated session.
    devices: Vec<AuthSessionDevice>,
    identity: AuthIdentity,
    /// Bearer JWT issued for REST API calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokenized: Option<String>,
}

/// AuthLoginResponse schema.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthLoginResponse {
    /// Session token returned after authentication. Store it securely for session refresh and logout.
    session_token: String,
    /// Bearer JWT returned for REST API calls.
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

/// Sign in
///
/// Checks a login and password and returns an authenticated session. An unknown account and a wrong password get the same answer.
#[utoipa::path(post, path = "/api/auth/login", tag = "Authentication", request_body = LoginRequest,
    responses((status = 200, description = "Active session", body = AuthLoginResponse), (status = 400, description = "Invalid request", body = AuthError),
        (status = 401, description = "Wrong login or password", body = AuthError), (status = 415, description = "Wrong content type", body = AuthError),
        (status = 429, description = "Too many requests", body = AuthError), (status = 503, description = "Too many password checks queued; try again after Retry-After", body = AuthError)))]
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

/// Current session
///
/// Returns the session of a Bearer JWT or an X-Session-Token.
#[utoipa::path(get, path = "/api/auth/session", tag = "Authentication",
    params(("X-Session-Token" = Option<String>, Header, description = "Session token, instead of a Bearer JWT.")),
    responses((status = 200, description = "Active session", body = AuthSession),
        (status = 401, description = "Missing, expired or revoked session", body = AuthError)))]
async fn current(
    State(services): State<Services>,
    // The request itself, not a copy of its headers: the credential is
    // the only header read, and the language only for a refusal.
    request: axum::extract::Request,
) -> Result<Json<AuthSession>, ApiError> {
    let headers = request.headers();
    let refuse = |e: Error| ApiError::new(e, locale_of(headers, &services));
    let credential = credential(headers).ok_or_else(|| refuse(Error::Unauthorized))?;
    let (record, identity) = session::current(&services, credential).await.map_err(refuse)?;
    Ok(Json(AuthSession::from(&record, &identity, None)))
}

/// Refresh session JWT
///
/// Returns a new Bearer JWT for an active session.
#[utoipa::path(post, path = "/api/auth/session/refresh", tag = "Authentication", request_body = SessionTokenRequest,
    responses((status = 200, description = "Active session with a new JWT", body = AuthLoginResponse), (status = 400, description = "Invalid request", body = AuthError),
        (status = 401, description = "Missing, expired or revoked session", body = AuthError), (status = 415, description = "Wrong content type", body = AuthError)))]
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

/// Sign out
///
/// Revokes the session; its JWTs stop working at once.
#[utoipa::path(post, path = "/api/auth/logout", tag = "Authentication", request_body = SessionTokenRequest,
    responses((status = 204, description = "Session revoked"), (status = 400, description = "Invalid request", body = AuthError),
        (status = 401, description = "Missing, expired or revoked session", body = AuthError), (status = 415, description = "Wrong content type", body = AuthError)))]
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

/// Signing keys
///
/// The public keys (JWKS) that verify every JWT latchkey issues.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "Authentication",
    responses((status = 200, description = "JSON Web Key Set", body = Object)))]
async fn jwks(State(services): State<Services>) -> impl IntoResponse {
    // Served `no-store` like the rest of this router: a rotated key signs as
    // soon as it is published, so a consumer must fetch the set again on an
    // unknown `kid` (README), and a cached copy would only delay that.
    Json(services.keys.jwks())
}
