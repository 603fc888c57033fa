//! The admin API, served only on the admin listener: identities, their
//! sessions, and the audit trail, for operators and support staff.
//!
//! Guarded by `admin.token` (Bearer, compared in constant time); with no
//! token configured it answers loopback clients only, and only requests no
//! proxy relayed (no `Forwarded`, `X-Forwarded-For`, `X-Real-IP`, `Via`)
//! and no browser sent (a loopback `Host`, no `Origin`, no `Sec-Fetch-Site`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{EmailAddress, PhoneNumber, Username};
use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientInfo, locale_of};
use crate::identity::manage::{Address, IdentityUpdate};
use crate::identity::{self, NewIdentity};
use crate::services::Services;

pub fn app(services: Services) -> Router {
    Router::new()
        .route("/health/alive", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(crate::http::diagnostics::prometheus))
        .route("/admin/identities", get(list_identities).post(create_identity))
        .route(
            "/admin/identities/{id}",
            get(show_identity).patch(update_identity).delete(delete_identity),
        )
        .route("/admin/identities/{id}/addresses", post(add_address))
        .route("/admin/identities/{id}/addresses/verify", post(verify_address))
        .route("/admin/identities/{id}/recovery-code", post(recovery_code))
        .route("/admin/identities/{id}/sessions", delete(revoke_sessions))
        .route("/admin/audit", get(audit_events))
        .layer(middleware::from_fn_with_state(
            services.clone(),
            crate::http::serve::request_deadline,
        ))
        .layer(middleware::from_fn_with_state(services.clone(), guard))
        .layer(axum::extract::DefaultBodyLimit::max(crate::http::BODY_LIMIT))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateIdentity {
    /// A new username, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    username: Option<Option<String>>,
    roles: Option<Vec<String>>,
    password: Option<String>,
}

async fn update_identity(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateIdentity>,
) -> Result<Json<Value>, ApiError> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    /// `email` or `phone`.
    kind: String,
    value: String,
    verified: Option<bool>,
}

async fn add_address(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let address = Address::parse(&body.kind, &body.value).map_err(|e| client.error(e))?;
    let verified = body.verified.unwrap_or(false);
    let identity = identity::manage::add_address(&services, &id, &address, verified, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok((StatusCode::CREATED, Json(identity.to_admin_json())))
}

async fn verify_address(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<Json<Value>, ApiError> {
    let address = Address::parse(&body.kind, &body.value).map_err(|e| client.error(e))?;
    let verified = body.verified.unwrap_or(true);
    let identity = identity::manage::set_verified(&services, &id, &address, verified, &client.0)
        .await
        .map_err(|e| client.error(e))?;
    Ok(Json(identity.to_admin_json()))
}

/// A code for support staff to read out, with the token and browser link
/// that open its flow.
async fn recovery_code(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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

async fn revoke_sessions(
    State(services): State<Services>,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let revoked = identity::manage::revoke_sessions(&services, &id, &client.0)
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
