//! Cookie-bound recovery routes (seed: Vero): start → verify → reset-password.
//! The recovery cookie is `HttpOnly`, `SameSite=Strict`, `Secure` on https,
//! scoped to the recovery path, rotated on verify and cleared after reset.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, AuthError};
use super::extract::{ApiJson, ClientInfo};
use super::flow_cookie::FlowCookie;
use super::session::AuthLoginResponse;
use crate::domain::{EmailAddress, Login, SecretToken};
use crate::error::Error;
use crate::recovery::{self, Unknown};
use crate::services::Services;

const COOKIE: FlowCookie = FlowCookie {
    name: "latchkey_recovery",
    path: "/api/auth/recovery",
};

pub fn router() -> Router<Services> {
    Router::new()
        .route("/api/auth/recovery/start", post(start))
        .route("/api/auth/recovery/verify", post(verify))
        .route("/api/auth/recovery/reset-password", post(reset_password))
}

/// Request to send a one-time password-recovery code.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthRecoveryStartRequest)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Email address associated with the account.
    #[schema(format = "email")]
    email: String,
}

/// Request to verify a one-time password-recovery code.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthRecoveryVerifyRequest)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The 6-digit code from the recovery message.
    #[schema(pattern = "^[0-9]{6}$")]
    code: String,
}

/// Request to set a new password after recovery-code verification.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthRecoveryResetRequest)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// New password for the account.
    #[schema(min_length = 1)]
    password: String,
}

/// Password-recovery status.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuthRecoveryStatusResponse)]
pub struct StatusResponse {
    /// `code_sent` after start, `verified` after verify.
    status: &'static str,
}

fn with_cookie(services: &Services, body: impl IntoResponse, token: Option<&SecretToken>) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, COOKIE.set(services, token.map(SecretToken::expose)));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Start password recovery
///
/// Sends a one-time recovery code to the account email address and creates a short-lived recovery session. Preserve the response cookie for the verify and reset requests.
#[utoipa::path(post, path = "/api/auth/recovery/start", tag = "Authentication", request_body = StartRequest,
    responses((status = 200, description = "Recovery code accepted for delivery", body = StatusResponse,
        headers(("Set-Cookie" = String, description = "Short-lived recovery session cookie required by the next recovery request."))),
        (status = 400, description = "Invalid request", body = AuthError), (status = 415, description = "Wrong content type", body = AuthError),
        (status = 429, description = "Too many requests", body = AuthError)))]
async fn start(
    State(services): State<Services>,
    client: ClientInfo,
    ApiJson(body): ApiJson<StartRequest>,
) -> Result<Response, ApiError> {
    let email = EmailAddress::parse(&body.email).ok_or_else(|| client.error(Error::invalid("error.invalid_email")))?;
    let started = recovery::start(&services, &Login::Email(email), &client.0, Unknown::Conceal)
        .await
        .map_err(|e| client.error(e))?;
    Ok(with_cookie(
        &services,
        Json(StatusResponse { status: "code_sent" }),
        Some(&started.secret),
    ))
}

/// Verify the recovery code
///
/// Checks the one-time code sent by the start request. Send the recovery session cookie; a successful response rotates it.
#[utoipa::path(post, path = "/api/auth/recovery/verify", tag = "Authentication", request_body = VerifyRequest,
    responses((status = 200, description = "Code verified", body = StatusResponse),
        (status = 400, description = "Invalid request", body = AuthError), (status = 401, description = "No, unknown or expired recovery session", body = AuthError),
        (status = 415, description = "Wrong content type", body = AuthError),
        (status = 429, description = "Too many wrong codes", body = AuthError)))]
async fn verify(
    State(services): State<Services>,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    let cookie = COOKIE.read(&headers);
    let token = recovery::verify(&services, cookie.as_deref(), &body.code, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(with_cookie(
        &services,
        Json(StatusResponse { status: "verified" }),
        Some(&token),
    ))
}

/// Reset recovered password
///
/// Sets the new account password after code verification. Send the recovery session cookie returned by the verify request. A successful response also returns an authenticated session.
#[utoipa::path(post, path = "/api/auth/recovery/reset-password", tag = "Authentication", request_body = ResetRequest,
    responses((status = 200, description = "Password reset and active session", body = AuthLoginResponse),
        (status = 400, description = "Invalid request", body = AuthError), (status = 401, description = "No, unknown, expired or unverified recovery session", body = AuthError),
        (status = 415, description = "Wrong content type", body = AuthError),
        (status = 429, description = "Too many requests", body = AuthError), (status = 503, description = "Too many password checks queued; try again after Retry-After", body = AuthError)))]
async fn reset_password(
    State(services): State<Services>,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<Response, ApiError> {
    let cookie = COOKIE.read(&headers);
    let issued = recovery::reset(&services, cookie.as_deref(), &body.password, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(with_cookie(&services, Json(AuthLoginResponse::from(&issued)), None))
}
