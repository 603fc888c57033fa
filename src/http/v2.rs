//! Token-bound routes (seed: Delos) for clients that cannot hold a cookie:
//! recovery request → confirm, login, and refresh-token rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, AuthError};
use super::extract::{ApiJson, ClientInfo, PathParam};
use crate::domain::Login;
use crate::error::Error;
use crate::recovery::{self, Unknown};
use crate::services::Services;
use crate::session::{self, TokenPair};

pub fn router() -> Router<Services> {
    Router::new()
        .route("/v2/auth/recovery/request", post(request))
        .route("/v2/auth/recovery/confirm", post(confirm))
        .route("/v2/auth/login", post(login))
        // axum answers HEAD with a GET route's handler. A HEAD (a link
        // checker, a proxy's probe) would spend the token and throw the new
        // pair away, and the owner's next refresh would then count as a reuse.
        .route("/v2/auth/refresh/{refreshToken}", get(refresh).head(refresh_head))
        .route("/v2/auth/logout", post(logout))
}

/// Request to revoke a refresh token.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TokenLogoutRequest)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogoutRequest {
    /// Any string: an unknown, spent or malformed token is answered like a live one.
    refresh_token: String,
}

/// Request to start a token-bound recovery.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    /// Email address, username or phone number of the account.
    #[schema(min_length = 1, max_length = 320)]
    login: String,
}

/// Recovery token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryToken {
    /// One-time token for password reset, valid for {recovery_lifespan} (`recovery.lifespan`; {sms_lifespan} when the code went by SMS, `recovery.sms_lifespan`).
    token: String,
}

/// Request to confirm a recovery with the token, the code and a new password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecoveryConfirm {
    #[schema(min_length = 1)]
    token: String,
    /// The 6-digit code from the recovery message.
    #[schema(pattern = "^[0-9]{6}$")]
    code: String,
    #[schema(min_length = 1)]
    password: String,
    #[schema(min_length = 1)]
    repeat_password: String,
}

/// Request to sign in and receive a token pair.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TokenLoginRequest)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 320)]
    login: String,
    password: String,
}

/// Access and refresh tokens.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPairResponse {
    access_token: String,
    refresh_token: String,
    guid: String,
    access_ttl: i64,
    refresh_ttl: i64,
}

impl From<TokenPair> for TokenPairResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.expose().to_owned(),
            guid: pair.identity_id,
            access_ttl: pair.access_ttl,
            refresh_ttl: pair.refresh_ttl,
        }
    }
}

/// Recovery access request
///
/// Sends a 6-digit recovery code to the verified email or phone of the account and returns a one-time token for the confirm request.
#[utoipa::path(post, path = "/v2/auth/recovery/request", tag = "Authentication", request_body = RecoveryRequest,
    responses((status = 200, description = "Recovery token", body = RecoveryToken), (status = 400, description = "Invalid request", body = AuthError),
        (status = 404, description = "Account not found (only with reveal_unknown_accounts)", body = AuthError), (status = 415, description = "Wrong content type", body = AuthError),
        (status = 429, description = "Recovery attempts exceeded", body = AuthError)))]
async fn request(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RecoveryRequest>,
) -> Result<Json<RecoveryToken>, ApiError> {
    let login = Login::parse(&body.login).ok_or_else(|| client.error(Error::invalid("error.invalid_login")))?;
    let started = recovery::start(&services, &login, &client.0, Unknown::RevealIfConfigured)
        .await
        .map_err(|e| client.error(e))?;
    let token = recovery::token::issue(&services, &started).map_err(|e| client.error(e))?;
    Ok(Json(RecoveryToken { token }))
}

/// Recovery confirm
///
/// Checks the token and the code, sets the new password and returns a token pair.
#[utoipa::path(post, path = "/v2/auth/recovery/confirm", tag = "Authentication", request_body = RecoveryConfirm,
    responses((status = 200, description = "Password reset; token pair", body = TokenPairResponse), (status = 400, description = "Invalid request", body = AuthError),
        (status = 401, description = "Unknown, used or expired token", body = AuthError), (status = 415, description = "Wrong content type", body = AuthError),
        (status = 429, description = "Too many wrong codes", body = AuthError), (status = 503, description = "Too many password checks queued; try again after Retry-After", body = AuthError)))]
async fn confirm(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RecoveryConfirm>,
) -> Result<Json<TokenPairResponse>, ApiError> {
    let secret = recovery::token::open(&services, &body.token);
    let issued = recovery::confirm(
        &services,
        secret.as_deref(),
        &body.code,
        &body.password,
        &body.repeat_password,
        &client.0,
    )
    .await
    .map_err(|e| client.error(e))?;
    let pair = session::issue_pair(&services, issued)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(pair.into()))
}

/// Token login
///
/// Checks a login and password and returns a token pair.
#[utoipa::path(post, path = "/v2/auth/login", tag = "Authentication", request_body = LoginRequest,
    responses((status = 200, description = "Token pair", body = TokenPairResponse), (status = 400, description = "Invalid request", body = AuthError),
        (status = 401, description = "Wrong login or password", body = AuthError), (status = 415, description = "Wrong content type", body = AuthError),
        (status = 429, description = "Too many requests", body = AuthError), (status = 503, description = "Too many password checks queued; try again after Retry-After", body = AuthError)))]
async fn login(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenPairResponse>, ApiError> {
    let issued = session::login(&services, &body.login, SecretString::from(body.password), &client.0)
        .await
        .map_err(|e| client.error(e))?;
    let pair = session::issue_pair(&services, issued)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(pair.into()))
}

/// Refresh tokens
///
/// Spends a refresh token for a new token pair. Presenting a spent refresh token revokes its whole family.
#[utoipa::path(get, path = "/v2/auth/refresh/{refreshToken}", tag = "Authentication",
    params(("refreshToken" = String, Path, description = "The refresh token to spend.")),
    responses((status = 200, description = "New token pair", body = TokenPairResponse),
        (status = 401, description = "Unknown, spent or revoked refresh token", body = AuthError)))]
async fn refresh(
    State(services): State<Services>,
    client: ClientInfo,
    PathParam(refresh_token): PathParam,
) -> Result<Json<TokenPairResponse>, ApiError> {
    let refresh_token = refresh_token.ok_or_else(|| client.error(Error::Unauthorized))?;
    let pair = session::rotate_refresh(&services, &refresh_token, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(pair.into()))
}

/// HEAD of the refresh route: 405, spending nothing.
async fn refresh_head(client: ClientInfo) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::ALLOW, "GET")],
        client.error(Error::MethodNotAllowed),
    )
}

/// Token logout
///
/// Revokes the refresh token's whole family and its session (RFC 7009 style). An unknown, spent or revoked token gets the same answer.
#[utoipa::path(post, path = "/v2/auth/logout", tag = "Authentication", request_body = LogoutRequest,
    responses((status = 204, description = "Refresh family and session revoked"), (status = 400, description = "Invalid request", body = AuthError),
        (status = 415, description = "Wrong content type", body = AuthError)))]
async fn logout(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    session::revoke_refresh(&services, &body.refresh_token, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(StatusCode::NO_CONTENT)
}
