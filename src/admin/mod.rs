//! The admin API, served only on the admin listener: identities, their
//! addresses and sessions (`identities`, `addresses`), the audit trail
//! (`audit`), metrics, and its own OpenAPI document (`openapi`), for
//! operators and support staff.
//!
//! Guarded by `admin.token` (Bearer, compared in constant time); with no
//! token configured it answers loopback clients only, and only requests no
//! proxy relayed (no `Forwarded`, `X-Forwarded-For`, `X-Real-IP`, `Via`)
//! and no browser sent (a loopback `Host`, no `Origin`, no `Sec-Fetch-Site`).

use std::net::SocketAddr;

mod addresses;
mod audit;
mod identities;
mod import;
mod openapi;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;

pub use identities::{parse_new_identity, support_code};

use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::extract::locale_of;
use crate::services::Services;

pub fn app(services: Services) -> Router {
    Router::new()
        .route("/health/alive", get(alive))
        .route("/metrics", get(crate::http::diagnostics::prometheus))
        .route("/admin/openapi.json", get(openapi::document))
        .route("/admin/identities", get(identities::list).post(identities::create))
        .route(
            "/admin/identities/import",
            post(import::import).layer(axum::extract::DefaultBodyLimit::max(import::BODY_LIMIT)),
        )
        .route(
            "/admin/identities/{id}",
            get(identities::show)
                .patch(identities::update)
                .delete(identities::delete),
        )
        .route("/admin/identities/{id}/addresses", post(addresses::add))
        .route("/admin/identities/{id}/addresses/verify", post(addresses::verify))
        .route("/admin/identities/{id}/recovery-code", post(identities::recovery_code))
        .route("/admin/identities/{id}/sessions", delete(identities::revoke_sessions))
        .route("/admin/identities/{id}/unfreeze", post(identities::unfreeze))
        .route("/admin/audit", get(audit::events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            services.clone(),
            crate::http::serve::request_deadline,
        ))
        .layer(middleware::from_fn_with_state(services.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(crate::http::BODY_LIMIT))
        // Support codes, their recovery tokens and links, and identities'
        // details: nothing an HTTP cache between an operator and us may keep.
        .layer(crate::http::no_store())
        .with_state(services)
}

async fn guard(State(services): State<Services>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let locale = locale_of(request.headers(), &services);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let actor = match &services.settings.admin.token {
        Some(expected) => bearer(request.headers())
            .is_some_and(|given| subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into())
            .then_some("admin_token"),
        // A loopback peer is a local operator only if it relays nobody: a
        // reverse proxy or sidecar on this host would make every client it
        // forwards look local.
        None => (peer.is_some_and(|ip| ip.is_loopback())
            && !is_relayed(request.headers())
            && !from_a_browser(request.headers()))
        .then_some("admin_loopback"),
    };
    let Some(actor) = actor else {
        return Err(ApiError::new(Error::Unauthorized, locale));
    };
    // The admin listener trusts no proxy: the peer is the client.
    if let Some(ip) = peer {
        request.extensions_mut().insert(crate::http::client_ip::ClientIp(ip));
    }
    request.extensions_mut().insert(crate::services::Actor(actor));
    Ok(next.run(request).await)
}

/// Whether a proxy says it forwarded this request for someone else.
fn is_relayed(headers: &HeaderMap) -> bool {
    ["forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host", "via"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// Whether a browser sent this request for some page, or named this server
/// by anything but a loopback address: a web page on the operator's machine
/// (a cross-site form post, or DNS rebinding to 127.0.0.1) is not the
/// operator. Without a token the admin API answers only requests with a
/// loopback `Host` and no `Origin` or `Sec-Fetch-Site` (curl, scripts).
fn from_a_browser(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    let loopback_name =
        name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !loopback_name || headers.contains_key(header::ORIGIN) || headers.contains_key("sec-fetch-site")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

async fn not_found(State(services): State<Services>, request: Request) -> ApiError {
    ApiError::new(Error::NotFound, locale_of(request.headers(), &services))
}

async fn method_not_allowed(State(services): State<Services>, request: Request) -> ApiError {
    ApiError::new(Error::MethodNotAllowed, locale_of(request.headers(), &services))
}

/// Liveness
#[utoipa::path(get, path = "/health/alive", tag = "System",
    responses((status = 200, description = "The process is up", body = Object),
        (status = 401, description = "Missing or wrong admin token", body = crate::http::error::AuthError)))]
async fn alive() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}
