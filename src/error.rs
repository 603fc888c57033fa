//! The one error type of latchkey's operations. Each variant is a stable
//! `AuthError.error` code; the HTTP layer picks the status and the localized
//! message. Internal causes are kept for the log, never shown to a client.

use crate::domain::PolicyViolation;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input; `key` names the localized message, `detail` (English,
    /// from the parser) is appended where useful.
    #[error("invalid request: {detail}")]
    InvalidRequest { key: &'static str, detail: String },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("invalid code")]
    InvalidCode,
    #[error("no recovery flow for this cookie or token")]
    RecoverySessionMissing,
    #[error("recovery flow expired")]
    RecoverySessionExpired,
    #[error("recovery flow not verified")]
    RecoveryNotVerified,
    #[error("too many wrong codes")]
    TooManyAttempts,
    /// Per-address start limit.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// Per-client request limit.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("password policy: {0:?}")]
    PasswordPolicy(PolicyViolation),
    #[error("passwords do not match")]
    PasswordMismatch,
    /// `identity_id` names the account when the login matched one — for the
    /// audit trail only, never for the answer.
    #[error("invalid credentials")]
    InvalidCredentials { identity_id: Option<String> },
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// `reveal_unknown_accounts` only.
    #[error("account not found")]
    AccountNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too much work queued (Argon2 slots, request time): try again shortly.
    #[error("overloaded")]
    Overloaded { retry_after_secs: u64 },
    /// A dependency (database, courier) is not usable right now.
    #[error("service unavailable")]
    Unavailable,
    #[error("{0} already in use")]
    Conflict(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(key: &'static str) -> Self {
        Error::InvalidRequest {
            key,
            detail: String::new(),
        }
    }

    /// When the request may be tried again, for `Retry-After` (SPEC §1.3:
    /// every 429 and 503 `overloaded` carries one), on the API and the UI alike.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after_secs }
            | Error::TooManyRequests { retry_after_secs }
            | Error::Overloaded { retry_after_secs } => Some(*retry_after_secs),
            // The flow is dead for good; a new one may be started at once.
            Error::TooManyAttempts => Some(0),
            _ => None,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest { .. } => "invalid_request",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::PayloadTooLarge => "payload_too_large",
            Error::InvalidCode => "invalid_code",
            Error::RecoverySessionMissing => "recovery_session_missing",
            Error::RecoverySessionExpired => "recovery_session_expired",
            Error::RecoveryNotVerified => "recovery_not_verified",
            Error::TooManyAttempts => "too_many_attempts",
            Error::RateLimited { .. } | Error::TooManyRequests { .. } => "rate_limited",
            Error::PasswordPolicy(_) => "password_policy",
            Error::PasswordMismatch => "password_mismatch",
            Error::InvalidCredentials { .. } => "invalid_credentials",
            Error::Unauthorized => "unauthorized",
            Error::Forbidden => "forbidden",
            Error::NotFound | Error::AccountNotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::Unavailable => "unavailable",
            Error::Overloaded { .. } => "overloaded",
            Error::Internal(_) => "internal_error",
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Conflict(what) => Error::Conflict(what),
            crate::store::StoreError::Other(e) => Error::Internal(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
