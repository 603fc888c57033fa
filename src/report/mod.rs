//! "This wasn't me" (SPEC §5.3): the signed, single-use links messages carry,
//! and what they do. A code mail's link ("didn't ask for this?") cancels the
//! account's live flows and pauses new codes; a notice's link secures the
//! account: every session and refresh token revoked, live flows killed, the
//! identity frozen until an operator unfreezes it. Links only ever reduce
//! access, so the worst a stolen one can do is what its owner asked for.

use serde_json::json;
use subtle::ConstantTimeEq;

use crate::audit::{self, Kind};
use crate::courier::{self, Message, Origin};
use crate::error::{Error, Result};
use crate::i18n::Locale;
use crate::identity::{self, Identity};
use crate::secrets::Purpose;
use crate::services::{Client, Services};
use crate::store::{CancelledRecovery, OutboxMessageRecord, SecuredIdentity, SpentLink};
use crate::time::{ms, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// From a code mail: "I didn't ask for this code".
    NotRequested,
    /// From a notice: "this wasn't me".
    NotMe,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::NotRequested => "not_requested",
            ReportKind::NotMe => "not_me",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            ReportKind::NotRequested => "c",
            ReportKind::NotMe => "s",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "c" => Some(ReportKind::NotRequested),
            "s" => Some(ReportKind::NotMe),
            _ => None,
        }
    }
}

/// An opened link: whose, what for, and until when.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: ReportKind,
    pub identity_id: String,
    pub expires_at: i64,
    digest: String,
}

fn mac(services: &Services, tag: &str, identity_id: &str, issued: &str, nonce: &str) -> String {
    let mut mac = services.secret.keyed_hash(
        Purpose::ReportLink,
        &[
            tag.as_bytes(),
            identity_id.as_bytes(),
            issued.as_bytes(),
            nonce.as_bytes(),
        ],
    );
    mac.truncate(32);
    mac
}

/// A link's token: `<kind>.<identity id>.<issued, Unix ms>.<nonce>.<mac>`,
/// the mac being 128 bits of HMAC-SHA-256 under the server secret.
fn token(services: &Services, kind: ReportKind, identity_id: &str, now: i64) -> String {
    let nonce = hex::encode(crate::random::bytes::<8>());
    let issued = now.to_string();
    let mac = mac(services, kind.tag(), identity_id, &issued, &nonce);
    format!("{}.{identity_id}.{issued}.{nonce}.{mac}", kind.tag())
}

/// The `/ui/report?token=…` link of `kind` for `identity_id`.
pub fn link(services: &Services, kind: ReportKind, identity_id: &str, locale: Locale, now: i64) -> String {
    format!(
        "{}/ui/report?token={}&lang={locale}",
        services.settings.public_url.trim_end_matches('/'),
        token(services, kind, identity_id, now)
    )
}

/// Checks a token's signature and age; reads nothing. Every way a token can
/// be wrong answers the same.
pub fn open(services: &Services, token: &str, now: i64) -> Result<Report> {
    let invalid = || Error::RecoverySessionExpired;
    let parts: Vec<&str> = token.split('.').collect();
    let [tag, identity_id, issued, nonce, presented] = parts[..] else {
        return Err(invalid());
    };
    let kind = ReportKind::from_tag(tag).ok_or_else(invalid)?;
    if identity_id.len() > 64 || nonce.len() != 16 || presented.len() != 32 {
        return Err(invalid());
    }
    let expected = mac(services, tag, identity_id, issued, nonce);
    if !bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(invalid());
    }
    let issued: i64 = issued.parse().map_err(|_| invalid())?;
    let expires_at = issued.saturating_add(ms(services.settings.notice.link_lifespan));
    if issued > now + 60_000 || expires_at <= now {
        return Err(invalid());
    }
    Ok(Report {
        kind,
        identity_id: identity_id.to_owned(),
        expires_at,
        digest: services.secret.keyed_hash(Purpose::ReportLink, &[token.as_bytes()]),
    })
}

/// Whether an opened link was used already (its page then says so rather
/// than offering a button that would do nothing).
pub async fn spent(services: &Services, report: &Report) -> Result<bool> {
    Ok(services.store.link_spent(&report.digest).await?)
}

/// What acting on a link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Flows cancelled and new codes paused until then (Unix ms).
    Cancelled {
        paused_until: i64,
    },
    Secured,
    /// The link had been used before; nothing was done now.
    AlreadyUsed,
}

/// Acts on a link (the `POST` of its page).
pub async fn act(services: &Services, token: &str, client: &Client) -> Result<Outcome> {
    let now = now_ms();
    let report = open(services, token, now)?;
    let identity = identity::load(services, &report.identity_id)
        .await?
        .ok_or(Error::RecoverySessionExpired)?;
    let link = SpentLink {
        digest: report.digest.clone(),
        identity_id: report.identity_id.clone(),
        kind: report.kind.as_str(),
        expires_at: report.expires_at,
    };
    let detail = json!({"report_kind": report.kind.as_str()});
    let done = match report.kind {
        ReportKind::NotRequested => {
            let paused_until = now + ms(services.settings.recovery.pause_after_cancel);
            let cancel = CancelledRecovery {
                link,
                paused_until,
                now,
                audit: audit::event(Kind::RecoveryCancelled, Some(identity.id()), client, detail),
            };
            services
                .store
                .cancel_recovery(&cancel)
                .await?
                .then_some(Outcome::Cancelled { paused_until })
        }
        ReportKind::NotMe => {
            let locale = client.locale;
            let secure = SecuredIdentity {
                link,
                now,
                notices: secured_notices(services, &identity, locale, &Origin::of(client, now))?,
                audit: vec![
                    audit::event(Kind::AccountSecured, Some(identity.id()), client, detail.clone()),
                    audit::event(Kind::SessionsRevoked, Some(identity.id()), client, detail),
                ],
            };
            let secured = services.store.secure_identity(&secure).await?;
            if secured {
                services.courier.wake();
                metrics::counter!("latchkey_accounts_secured_total").increment(1);
            }
            secured.then_some(Outcome::Secured)
        }
    };
    Ok(done.unwrap_or(Outcome::AlreadyUsed))
}

/// "Your account was secured", to every verified address.
fn secured_notices(
    services: &Services,
    identity: &Identity,
    locale: Locale,
    origin: &Origin,
) -> Result<Vec<OutboxMessageRecord>> {
    let notices = courier::to_every_verified(
        &services.secret,
        identity.id(),
        &identity.addresses,
        origin.at,
        |to, phone| {
            let origin = origin.clone();
            match phone {
                true => Message::AccountSecuredSms { to, locale, origin },
                false => Message::AccountSecured { to, locale, origin },
            }
        },
    )?;
    Ok(notices)
}

/// Lifts a freeze (`latchkey identity unfreeze`, `POST /admin/identities/{id}/unfreeze`).
pub async fn unfreeze(services: &Services, identity_id: &str, client: &Client) -> Result<Identity> {
    identity::load(services, identity_id).await?.ok_or(Error::NotFound)?;
    let now = now_ms();
    let event = audit::event(Kind::AccountUnfrozen, Some(identity_id), client, json!({}));
    services.store.unfreeze_identity(identity_id, now, &event).await?;
    identity::load(services, identity_id).await?.ok_or(Error::NotFound)
}
