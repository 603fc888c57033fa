//! Audit events: who did what, when, from where. Details are non-secret by
//! construction — callers pass identifiers and outcomes, never codes,
//! passwords or tokens.

use serde_json::Value;

use crate::services::Client;
use crate::store::AuditEventRecord;
use crate::time::now_ms;

/// What happened. The string forms are stable: operators filter on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RecoveryRequested,
    CodeSent,
    NoticeSent,
    RecoveryCodeFailed,
    RecoveryFlowLocked,
    RecoveryVerified,
    RecoveryRateLimited,
    PasswordChanged,
    SessionsRevoked,
    LoginSucceeded,
    LoginFailed,
    Logout,
    IdentityCreated,
    IdentityDeleted,
    IdentityUpdated,
    AddressAdded,
    AddressVerified,
    RecoveryCancelled,
    AccountSecured,
    AccountUnfrozen,
    WebhookDisabled,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RecoveryRequested => "recovery.requested",
            Kind::CodeSent => "recovery.code_sent",
            Kind::NoticeSent => "notice.sent",
            Kind::RecoveryCodeFailed => "recovery.code_failed",
            Kind::RecoveryFlowLocked => "recovery.flow_locked",
            Kind::RecoveryVerified => "recovery.verified",
            Kind::RecoveryRateLimited => "recovery.rate_limited",
            Kind::PasswordChanged => "password.changed",
            Kind::SessionsRevoked => "session.revoked_all",
            Kind::LoginSucceeded => "login.succeeded",
            Kind::LoginFailed => "login.failed",
            Kind::Logout => "session.logout",
            Kind::IdentityCreated => "identity.created",
            Kind::IdentityDeleted => "identity.deleted",
            Kind::IdentityUpdated => "identity.updated",
            Kind::AddressAdded => "address.added",
            Kind::AddressVerified => "address.verified",
            Kind::RecoveryCancelled => "recovery.cancelled",
            Kind::AccountSecured => "account.secured",
            Kind::AccountUnfrozen => "account.unfrozen",
            Kind::WebhookDisabled => "webhook.disabled",
        }
    }
}

pub fn event(kind: Kind, identity_id: Option<&str>, client: &Client, mut detail: Value) -> AuditEventRecord {
    if let (Some(actor), Value::Object(map)) = (client.actor, &mut detail) {
        map.insert("actor".into(), Value::from(actor));
    }
    AuditEventRecord {
        audit_event_id: crate::store::new_row_id(),
        identity_id: identity_id.map(str::to_owned),
        kind: kind.as_str().into(),
        ip_address: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        detail: detail.to_string(),
        created_at: now_ms(),
    }
}
