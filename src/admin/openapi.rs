//! The admin API's own OpenAPI 3 document (`GET /admin/openapi.json` on the
//! admin listener), generated from the routes and types like the public one.
//! The response bodies the handlers build as JSON are described here; the
//! contract test checks every answer against them.

use axum::Json;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{addresses, audit, identities, import};
use crate::http::error::AuthError;

#[derive(OpenApi)]
#[openapi(
    info(title = "latchkey admin", description = "Operator API: identities, support codes, audit, metrics."),
    paths(
        identities::list, identities::create, identities::show, identities::update, identities::delete,
        identities::recovery_code, identities::revoke_sessions, identities::unfreeze, import::import,
        addresses::add, addresses::verify,
        audit::events,
        super::alive, crate::http::diagnostics::prometheus,
    ),
    components(schemas(AuthError, AdminIdentity, AdminAddress, AddressKind, SupportCode, Revoked, AuditEvent,
        ImportAnswer, ImportResult, crate::identity::import::ImportRecord)),
    modifiers(&AdminToken),
    security(("admin_token" = [])),
    tags(
        (name = "Identities", description = "Accounts, their addresses and sessions."),
        (name = "Audit", description = "Who did what, when, from where."),
        (name = "System", description = "Liveness and metrics."),
    )
)]
struct AdminDoc;

/// `admin.token` as a bearer token (not needed from loopback when none is set).
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("admin_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub async fn document() -> Json<Value> {
    Json(serde_json::to_value(AdminDoc::openapi()).unwrap_or(Value::Null))
}

// The shapes below document JSON the handlers build (`Identity::to_admin_json`,
// `support_code`, the audit rows); they are never constructed.

/// An identity as operators see it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AdminIdentity {
    id: String,
    /// `email`, `username` and `phone`, where set.
    #[schema(value_type = Object)]
    traits: Value,
    roles: Vec<String>,
    has_password: bool,
    /// `argon2id` (latchkey's own), or the imported hash's algorithm until
    /// the first login replaces it; absent without a password.
    password_algorithm: Option<String>,
    /// Frozen by the owner's "this wasn't me": no password login and no
    /// recovery until `POST /admin/identities/{id}/unfreeze`.
    frozen: bool,
    /// RFC 3339, when frozen.
    frozen_at: Option<String>,
    addresses: Vec<AdminAddress>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
}

/// The answer to an import: counts, and one result per item in order.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportAnswer {
    dry_run: bool,
    imported: u64,
    skipped: u64,
    failed: u64,
    /// Imported identities per password hash algorithm (`none`: no password).
    #[schema(value_type = Object)]
    algorithms: Value,
    results: Vec<ImportResult>,
}

/// What happened to one item.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportResult {
    index: usize,
    /// `imported`, `skipped` or `failed`.
    status: String,
    /// The identity's id, when imported.
    id: Option<String>,
    /// The password hash's algorithm (or `none`), when imported.
    algorithm: Option<String>,
    /// Why it was skipped or failed.
    reason: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AdminAddress {
    kind: AddressKind,
    value: String,
    verified: bool,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AddressKind {
    Email,
    Phone,
}

/// A support-issued code, not sent: read it out to the person.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SupportCode {
    flow_id: String,
    #[schema(pattern = "^[0-9]{6}$")]
    code: String,
    /// RFC 3339.
    expires_at: String,
    /// For `/v2/auth/recovery/confirm`.
    token: String,
    /// The browser page that finishes this recovery.
    recovery_link: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Revoked {
    revoked: u64,
}

/// One audit event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AuditEvent {
    audit_event_id: String,
    identity_id: Option<String>,
    /// e.g. `recovery.requested`, `login.failed`, `identity.updated`.
    kind: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    /// A JSON object, as text.
    detail: String,
    /// Unix milliseconds.
    created_at: i64,
}
