//! `AuthError`: how every failure on every route looks on the wire —
//! `{"error","message","status"}`, message in the request's language.
//! A 5xx body is generic; its cause is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::PolicyViolation;
use crate::error::Error;
use crate::i18n::{self, Locale};

/// AuthError schema.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuthError {
    /// Machine-readable error code or error category.
    pub error: String,
    /// Human-readable error message.
    pub message: String,
    /// Status value returned by the API.
    #[schema(value_type = i32, format = Int32)]
    pub status: u16,
}

/// An `Error` on its way to a client who reads `locale`.
#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    pub locale: Locale,
}

impl ApiError {
    pub fn new(error: impl Into<Error>, locale: Locale) -> Self {
        Self {
            error: error.into(),
            locale,
        }
    }
}

/// The HTTP status of an error, for the JSON API and the UI's pages alike.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::InvalidRequest { .. } | Error::InvalidCode | Error::PasswordPolicy(_) | Error::PasswordMismatch => {
            StatusCode::BAD_REQUEST
        }
        Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RecoverySessionMissing
        | Error::RecoverySessionExpired
        | Error::RecoveryNotVerified
        | Error::InvalidCredentials { .. }
        | Error::Unauthorized => StatusCode::UNAUTHORIZED,
        Error::TooManyAttempts | Error::RateLimited { .. } | Error::TooManyRequests { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Error::Forbidden => StatusCode::FORBIDDEN,
        Error::NotFound | Error::AccountNotFound => StatusCode::NOT_FOUND,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unavailable | Error::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The localized `AuthError.message` for an error.
pub fn message_of(error: &Error, locale: Locale) -> String {
    let t = |key: &str, args: &[(&str, &str)]| i18n::text(locale, key, args);
    match error {
        Error::InvalidRequest { key, detail } if detail.is_empty() => t(key, &[]),
        Error::InvalidRequest { key, detail } => t(key, &[("detail", detail)]),
        Error::RateLimited { retry_after_secs } => t(
            "error.rate_limited",
            &[("minutes", &retry_after_secs.div_ceil(60).to_string())],
        ),
        Error::TooManyRequests { retry_after_secs } => {
            t("error.too_many_requests", &[("seconds", &retry_after_secs.to_string())])
        }
        Error::PasswordPolicy(violation) => policy_message(*violation, locale),
        Error::Conflict(what) => t("error.conflict", &[("what", what)]),
        Error::AccountNotFound => t("error.account_not_found", &[]),
        Error::Overloaded { retry_after_secs } => t("error.overloaded", &[("seconds", &retry_after_secs.to_string())]),
        Error::Internal(_) => t("error.internal", &[]),
        other => t(&format!("error.{}", other.code()), &[]),
    }
}

/// Why a password was refused, in `locale`.
pub fn policy_message(violation: PolicyViolation, locale: Locale) -> String {
    match violation {
        PolicyViolation::TooShort { min } => {
            i18n::text(locale, "error.password_too_short", &[("min", &min.to_string())])
        }
        PolicyViolation::TooLong { max_bytes } => {
            i18n::text(locale, "error.password_too_long", &[("max", &max_bytes.to_string())])
        }
        PolicyViolation::TooWeak => i18n::text(locale, "error.password_too_weak", &[]),
        PolicyViolation::ContainsIdentifier => i18n::text(locale, "error.password_contains_identifier", &[]),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.error);
        if let Error::Internal(cause) = &self.error {
            tracing::error!(error = %format!("{cause:#}"), "request failed");
        }
        let body = AuthError {
            error: self.error.code().to_owned(),
            message: message_of(&self.error, self.locale),
            status: status.as_u16(),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.error.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
