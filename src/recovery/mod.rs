//! Account recovery: `start` (send a one-time code), `verify` (prove it) and
//! `reset` (set a new password and sign in). The flow is bound to a secret
//! the client holds (the recovery cookie), stored only as a keyed hash.
//!
//! Never tells a caller whether an address has an account: the unknown and
//! unverified paths create a flow of the same shape that can never succeed.

use serde_json::json;

use crate::audit::{self, Kind};
use crate::courier::Message;
use crate::domain::{EmailAddress, RecoveryCode, SecretToken};
use crate::error::{Error, Result};
use crate::identity;
use crate::secrets::Purpose;
use crate::services::{Client, Services};
use crate::session::{self, IssuedSession};
use crate::store::{AddressKind, CompletedRecovery, NewRecoveryFlow, RecoveryFlowRecord, StartOutcome};
use crate::time::{ms, now_ms};

const HOUR_MS: i64 = 3_600_000;

fn flow_secret_hash(services: &Services, secret: &SecretToken) -> String {
    services
        .secret
        .keyed_hash(Purpose::RecoveryCookie, &[secret.expose().as_bytes()])
}

fn code_hash(services: &Services, flow_id: &str, code: &RecoveryCode) -> String {
    services
        .secret
        .keyed_hash(Purpose::RecoveryCode, &[flow_id.as_bytes(), code.expose().as_bytes()])
}

/// Starts a flow for an email address and returns the secret that binds the
/// client to it. Only a verified address of an existing account gets a code.
pub async fn start(services: &Services, email: &str, client: &Client) -> Result<SecretToken> {
    let email = EmailAddress::parse(email).ok_or_else(|| Error::invalid("error.invalid_email"))?;
    let now = now_ms();
    let recipient = services
        .store
        .identity_by_address(AddressKind::Email, email.as_str())
        .await?
        .filter(|(_, address)| address.verified);

    let flow_id = uuid::Uuid::new_v4().to_string();
    let secret = SecretToken::generate();
    let code = RecoveryCode::generate();
    let lifespan = services.settings.recovery.lifespan;
    let identity_id = recipient.as_ref().map(|(identity, _)| identity.identity_id.clone());
    let message = match &recipient {
        Some((_, address)) => Some(
            Message::RecoveryCode {
                to: address.value.clone(),
                code: code.expose().to_owned(),
                minutes: lifespan.as_secs().div_ceil(60),
                locale: client.locale,
            }
            .seal(&services.secret, now)?,
        ),
        None => None,
    };
    let new_flow = NewRecoveryFlow {
        flow: RecoveryFlowRecord {
            recovery_flow_id: flow_id.clone(),
            identity_id: identity_id.clone(),
            address_key: services
                .secret
                .keyed_hash(Purpose::RateLimitKey, &[b"email", email.as_str().as_bytes()]),
            channel: "email".into(),
            cookie_hash: flow_secret_hash(services, &secret),
            code_hash: Some(code_hash(services, &flow_id, &code)),
            state: "sent".into(),
            wrong_attempts: 0,
            locale: client.locale.as_str().into(),
            expires_at: now + ms(lifespan),
            created_at: now,
            verified_at: None,
            used_at: None,
        },
        audit: audit::event(
            Kind::RecoveryRequested,
            identity_id.as_deref(),
            client,
            json!({"flow_id": flow_id, "channel": "email", "code_sent": message.is_some()}),
        ),
        message,
        max_starts: services.settings.recovery.max_starts_per_hour,
        window_start: now - HOUR_MS,
    };
    match services.store.create_recovery_flow(&new_flow).await? {
        StartOutcome::Created => {
            if new_flow.message.is_some() {
                services.courier.wake();
            }
            Ok(secret)
        }
        StartOutcome::RateLimited { oldest_start } => {
            let event = audit::event(
                Kind::RecoveryRateLimited,
                identity_id.as_deref(),
                client,
                json!({"channel": "email"}),
            );
            services.store.insert_audit_event(&event).await?;
            let retry_after_ms = (oldest_start + HOUR_MS - now).max(1000);
            Err(Error::RateLimited {
                retry_after_secs: u64::try_from((retry_after_ms + 999) / 1000).unwrap_or(3600),
            })
        }
    }
}

/// The flow a client secret opens, or why it cannot be used.
async fn open_flow(services: &Services, secret: Option<&str>) -> Result<(SecretToken, RecoveryFlowRecord)> {
    let secret = secret
        .and_then(SecretToken::parse)
        .ok_or(Error::RecoverySessionMissing)?;
    let flow = services
        .store
        .recovery_flow_by_cookie(&flow_secret_hash(services, &secret))
        .await?
        .ok_or(Error::RecoverySessionMissing)?;
    let max_attempts = i64::from(services.settings.recovery.max_attempts);
    if flow.state == "dead" && max_attempts > 0 && flow.wrong_attempts >= max_attempts {
        return Err(Error::TooManyAttempts);
    }
    if flow.state == "dead" || flow.expires_at <= now_ms() {
        return Err(Error::RecoverySessionExpired);
    }
    if flow.state == "used" {
        return Err(Error::RecoverySessionMissing);
    }
    Ok((secret, flow))
}

/// Checks the code of the flow `secret` opens. On success the flow is
/// verified and bound to a new secret (returned); the old one stops working.
pub async fn verify(services: &Services, secret: Option<&str>, code: &str, client: &Client) -> Result<SecretToken> {
    let (old_secret, flow) = open_flow(services, secret).await?;
    if flow.state != "sent" {
        // Already verified: the code was spent with it.
        return Err(Error::InvalidCode);
    }
    let code = RecoveryCode::parse(code).ok_or_else(|| Error::invalid("error.invalid_code_format"))?;
    let computed = code_hash(services, &flow.recovery_flow_id, &code);
    let matches = flow.identity_id.is_some()
        && flow
            .code_hash
            .as_deref()
            .is_some_and(|stored| subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), stored.as_bytes()).into());
    let now = now_ms();
    if !matches {
        let after = services
            .store
            .record_wrong_code(&flow.recovery_flow_id, services.settings.recovery.max_attempts, now)
            .await?;
        let locked = after.as_ref().is_none_or(|f| f.state == "dead");
        let kind = if locked {
            Kind::RecoveryFlowLocked
        } else {
            Kind::RecoveryCodeFailed
        };
        let event = audit::event(
            kind,
            flow.identity_id.as_deref(),
            client,
            json!({"flow_id": flow.recovery_flow_id}),
        );
        services.store.insert_audit_event(&event).await?;
        return Err(if locked {
            Error::TooManyAttempts
        } else {
            Error::InvalidCode
        });
    }
    let new_secret = SecretToken::generate();
    let rotated = services
        .store
        .mark_flow_verified(
            &flow.recovery_flow_id,
            &flow_secret_hash(services, &old_secret),
            &flow_secret_hash(services, &new_secret),
            now,
        )
        .await?;
    if !rotated {
        return Err(Error::RecoverySessionMissing);
    }
    let event = audit::event(
        Kind::RecoveryVerified,
        flow.identity_id.as_deref(),
        client,
        json!({"flow_id": flow.recovery_flow_id}),
    );
    services.store.insert_audit_event(&event).await?;
    Ok(new_secret)
}

/// Sets a new password on a verified flow: spends the flow, revokes every
/// other session, queues the "password changed" notice, and signs in.
pub async fn reset(
    services: &Services,
    secret: Option<&str>,
    password: &str,
    client: &Client,
) -> Result<IssuedSession> {
    let (_, flow) = open_flow(services, secret).await?;
    if flow.state != "verified" {
        return Err(Error::RecoveryNotVerified);
    }
    let identity_id = flow.identity_id.as_deref().ok_or(Error::RecoverySessionMissing)?;
    let identity = identity::load(services, identity_id)
        .await?
        .ok_or(Error::RecoverySessionMissing)?;
    let checked = identity::policy(services)
        .check(password, &identity.identifiers())
        .map_err(Error::PasswordPolicy)?;
    let password_hash = services
        .hasher
        .hash(secrecy::SecretString::from(checked.expose()))
        .await?;
    let now = now_ms();
    let locale = crate::i18n::Locale::parse(&flow.locale).unwrap_or_default();
    let to = identity.email().ok_or(Error::RecoverySessionMissing)?.to_owned();
    let (token, session) = session::new_session(services, identity_id, client, now);
    let detail = json!({"flow_id": flow.recovery_flow_id, "session_id": session.session_id});
    let completed = CompletedRecovery {
        flow_id: flow.recovery_flow_id.clone(),
        identity_id: identity_id.to_owned(),
        password_hash,
        now,
        notice: Message::PasswordChanged { to, locale }.seal(&services.secret, now)?,
        audit: vec![
            audit::event(Kind::PasswordChanged, Some(identity_id), client, detail.clone()),
            audit::event(Kind::SessionsRevoked, Some(identity_id), client, detail),
        ],
        session,
    };
    if !services.store.complete_recovery(&completed).await? {
        return Err(Error::RecoverySessionMissing);
    }
    services.courier.wake();
    let jwt = session::sign_jwt(services, &completed.session)?;
    let identity = identity::load(services, identity_id).await?.unwrap_or(identity);
    Ok(IssuedSession {
        token,
        jwt,
        record: completed.session,
        identity,
    })
}
