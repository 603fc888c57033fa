//! Webhooks (SPEC §5.4): which audit events become which webhook events,
//! the JSON each carries, and its Standard Webhooks signature.
//!
//! The audit trail is the source. An audit event is written in the
//! transaction of what it records, undispatched; the dispatcher
//! (`worker`) turns it into one delivery per endpoint that wants its type
//! and marks it dispatched in one transaction, so an event is neither lost
//! to a crash nor queued twice. Nothing of this runs in a request: a
//! request writes its audit row whether or not the account exists, and only
//! the dispatcher, later, looks at what the row says.

pub mod worker;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::{Settings, WEBHOOK_EVENTS, webhook_key};
use crate::store::{AuditEventRecord, WebhookDeliveryRecord};
use crate::time::rfc3339;

/// How long a delivery is retried before it is given up.
pub const RETRY_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A configured endpoint with its keys.
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    /// Every key signs (two during a rotation).
    keys: Vec<Vec<u8>>,
    /// Empty: every event type.
    events: Vec<String>,
}

impl Endpoint {
    /// The endpoints of the configuration (checked when it was loaded).
    pub fn all(settings: &Settings) -> anyhow::Result<Vec<Endpoint>> {
        settings
            .webhooks
            .iter()
            .map(|hook| {
                Ok(Endpoint {
                    url: hook.url.clone(),
                    keys: hook
                        .secret
                        .all()
                        .into_iter()
                        .map(webhook_key)
                        .collect::<anyhow::Result<_>>()?,
                    events: hook.events.clone(),
                })
            })
            .collect()
    }

    pub fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }

    /// A short stable name, a digest of the URL: what the database, each
    /// delivery's id and the disabled list know the endpoint by.
    pub fn key(&self) -> String {
        key(&self.url)
    }

    /// The endpoint as metrics, logs, the audit trail and the CLI name it:
    /// its host and key, never its path or query, which may hold a
    /// credential (`https://hooks.example/T0/B0/secret`).
    pub fn label(&self) -> String {
        label(&self.url)
    }

    /// The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` per key,
    /// space-separated, over `<id>.<timestamp>.<body>`.
    pub fn signature(&self, id: &str, timestamp: i64, body: &str) -> String {
        self.keys
            .iter()
            .filter_map(|key| {
                let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).ok()?;
                mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
                Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `Endpoint::key` of a URL.
pub fn key(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..8])
}

/// `Endpoint::label` of a URL: `host[:port]#key`.
pub fn label(url: &str) -> String {
    let host = reqwest::Url::parse(url).ok().map_or_else(
        || "invalid".to_owned(),
        |u| match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (host, None) => host.unwrap_or("").to_owned(),
            (None, Some(_)) => String::new(),
        },
    );
    format!("{host}#{}", key(url))
}

/// The webhook event types an audit event raises: none for an event about
/// no identity (a start for an unknown address) or one no type describes.
pub fn event_types(event: &AuditEventRecord) -> Vec<&'static str> {
    if event.identity_id.is_none() {
        return Vec::new();
    }
    let detail: Value = serde_json::from_str(&event.detail).unwrap_or(Value::Null);
    let types: &[&str] = match event.kind.as_str() {
        "identity.created" => &["identity.created"],
        "identity.updated" if detail["password"] == true => &["identity.updated", "password.changed"],
        "identity.updated" | "address.added" | "address.verified" => &["identity.updated"],
        "identity.deleted" => &["identity.deleted"],
        "recovery.requested" => &["recovery.requested"],
        "recovery.flow_locked" => &["recovery.locked"],
        // A reset at the end of a recovery flow.
        "password.changed" if detail.get("flow_id").is_some() => &["recovery.completed", "password.changed"],
        "password.changed" => &["password.changed"],
        "session.revoked_all" => &["sessions.revoked"],
        "account.secured" => &["account.frozen"],
        "account.unfrozen" => &["account.unfrozen"],
        // Once per streak: the failure that starts a lock, not each one refused while it holds.
        "login.failed" if detail["locks"] == true => &["login.locked"],
        _ => &[],
    };
    debug_assert!(types.iter().all(|t| WEBHOOK_EVENTS.contains(t)));
    types.to_vec()
}

/// The request body: `{"type", "timestamp", "data"}`, `data` holding the
/// identity, the channel, the client IP and user agent where they apply —
/// never a code, token, password or hash (the audit trail holds none).
pub fn payload(event_type: &str, event: &AuditEventRecord) -> String {
    let detail: Value = serde_json::from_str(&event.detail).unwrap_or(Value::Null);
    let mut data = Map::new();
    data.insert("identity_id".into(), json!(event.identity_id));
    if let Some(channel) = detail.get("channel").and_then(Value::as_str) {
        data.insert("channel".into(), json!(channel));
    }
    if let Some(ip) = &event.ip_address {
        data.insert("ip".into(), json!(ip));
    }
    if let Some(user_agent) = &event.user_agent {
        data.insert("user_agent".into(), json!(user_agent));
    }
    if let Some(actor) = detail.get("actor").and_then(Value::as_str) {
        data.insert("actor".into(), json!(actor));
    }
    json!({
        "type": event_type,
        "timestamp": rfc3339(event.created_at),
        "data": data,
    })
    .to_string()
}

/// The deliveries one event calls for, one per endpoint that wants each of
/// its types (the store writes those of a disabled endpoint as `disabled`).
pub fn deliveries(event: &AuditEventRecord, endpoints: &[Endpoint], now: i64) -> Vec<WebhookDeliveryRecord> {
    let mut out = Vec::new();
    for event_type in event_types(event) {
        for endpoint in endpoints {
            if !endpoint.wants(event_type) {
                continue;
            }
            let key = endpoint.key();
            out.push(WebhookDeliveryRecord {
                webhook_delivery_id: format!("{}:{key}:{event_type}", event.audit_event_id),
                endpoint: key,
                event_id: format!("msg_{}_{}", event.audit_event_id, event_type.replace('.', "_")),
                event_type: event_type.to_owned(),
                payload: payload(event_type, event),
                status: "pending".into(),
                attempts: 0,
                next_attempt_at: now,
                lease_until: None,
                give_up_at: now + crate::time::ms(RETRY_WINDOW),
                last_error: None,
                last_status: None,
                created_at: now,
                sent_at: None,
            });
        }
    }
    out
}
