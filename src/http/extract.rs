//! Extractors: strict JSON bodies (`ApiJson`), query strings (`ApiQuery`),
//! path parameters (`PathParam`) and who is asking (`ClientInfo`).
//! Every rejection is an `ApiError`, so bad input always gets an `AuthError`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::client_ip::ClientIp;
use super::error::ApiError;
use crate::error::Error;
use crate::i18n::Locale;
use crate::services::{Client, Services};

const MAX_USER_AGENT: usize = 256;

pub fn locale_of(headers: &HeaderMap, services: &Services) -> Locale {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    Locale::negotiate(accept, services.default_locale())
}

/// Who is asking, and in which language to answer.
pub struct ClientInfo(pub Client);

impl ClientInfo {
    /// Turns a domain error into an answer in this client's language.
    pub fn error(&self, error: impl Into<Error>) -> ApiError {
        ApiError::new(error, self.0.locale)
    }
}

impl FromRequestParts<Services> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, services: &Services) -> Result<Self, ApiError> {
        let ip = parts.extensions.get::<ClientIp>().map(|ClientIp(ip)| ip.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(ClientInfo(Client {
            ip,
            user_agent,
            locale: locale_of(&parts.headers, services),
            actor: parts.extensions.get::<crate::services::Actor>().map(|a| a.0),
        }))
    }
}

/// A query string, parsed into `T`; a malformed one is a 400 `AuthError`
/// (axum's own rejection would be plain text).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<Services> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, services: &Services) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|e| {
                let error = Error::InvalidRequest {
                    key: "error.invalid_request",
                    detail: e.body_text(),
                };
                ApiError::new(error, locale_of(&parts.headers, services))
            })
    }
}

/// A JSON body: `Content-Type: application/json`, at most the body limit,
/// no unknown fields (the target types deny them).
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

impl<T: DeserializeOwned> FromRequest<Services> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, services: &Services) -> Result<Self, ApiError> {
        let locale = locale_of(req.headers(), services);
        if !is_json(req.headers()) {
            return Err(ApiError::new(Error::UnsupportedMediaType, locale));
        }
        let bytes = Bytes::from_request(req, services).await.map_err(|rejection| {
            let error = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::invalid("error.invalid_request")
            };
            ApiError::new(error, locale)
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            let error = Error::InvalidRequest {
                key: "error.invalid_request",
                detail: e.to_string(),
            };
            ApiError::new(error, locale)
        })
    }
}

/// A route's one path parameter (an id or a token), percent-decoded; `None`
/// when it is not UTF-8 or holds a control character, which no id or token
/// has (and PostgreSQL refuses a NUL). The handler answers `None` as it
/// answers an id or token that names nothing, so the rejection is never
/// axum's plain text.
pub struct PathParam(pub Option<String>);

impl FromRequestParts<Services> for PathParam {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, services: &Services) -> Result<Self, Self::Rejection> {
        let param = axum::extract::Path::<String>::from_request_parts(parts, services)
            .await
            .ok()
            .map(|axum::extract::Path(value)| value)
            .filter(|value| !value.chars().any(char::is_control));
        Ok(PathParam(param))
    }
}
