//! Sessions: opaque session tokens (stored only as keyed hashes), the JWTs
//! that stand for them, login, refresh and logout.
//!
//! A JWT is only honoured while its session is active, so revoking a session
//! takes effect at once, not when the JWT expires.

mod jwt;
mod keys;
mod refresh;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use keys::KeyRing;
pub use refresh::{TokenPair, issue_pair, revoke as revoke_refresh, rotate as rotate_refresh};

use crate::audit::{self, Kind};
use crate::domain::{Login, SecretToken};
use crate::error::{Error, Result};
use crate::identity::{self, Identity};
use crate::secrets::Purpose;
use crate::services::{Client, Services};
use crate::store::{LoginLockPolicy, LoginReservation, SessionLookup, SessionRecord};
use crate::time::{ms, now_ms};

/// Claims of a session JWT.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    /// `session.jwt_audience`, so a downstream API can tell these from recovery tokens.
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub token_use: String,
}

/// A session handed to a client, with the secrets it needs.
pub struct IssuedSession {
    pub token: SecretToken,
    pub jwt: String,
    pub record: SessionRecord,
    pub identity: Identity,
}

/// How a client proves its session.
pub enum Credential {
    Jwt(String),
    Token(String),
}

/// A new session row for `identity_id` and the token that opens it.
pub fn new_session(services: &Services, identity_id: &str, client: &Client, now: i64) -> (SecretToken, SessionRecord) {
    let token = SecretToken::generate();
    let record = SessionRecord {
        session_id: crate::store::new_row_id(),
        identity_id: identity_id.to_owned(),
        token_hash: services
            .secret
            .keyed_hash(Purpose::SessionToken, &[token.expose().as_bytes()]),
        authenticated_at: now,
        expires_at: now + ms(services.settings.session.lifespan),
        revoked_at: None,
        ip_address: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        created_at: now,
    };
    (token, record)
}

/// A JWT for the session, expiring at the earlier of `jwt_lifespan` and the session's end.
pub fn sign_jwt(services: &Services, session: &SessionRecord) -> Result<String> {
    let now = now_ms();
    let exp_ms = (now + ms(services.settings.session.jwt_lifespan)).min(session.expires_at);
    let claims = SessionClaims {
        iss: services.keys.issuer().to_owned(),
        aud: services.settings.jwt_audience().to_owned(),
        sub: session.identity_id.clone(),
        sid: session.session_id.clone(),
        iat: now / 1000,
        exp: exp_ms / 1000,
        jti: uuid::Uuid::new_v4().to_string(),
        token_use: "session".into(),
    };
    Ok(services.keys.sign(&claims)?)
}

/// Each throttle key's lock: five free failures in a row, then a wait that
/// doubles from 1 s up to an hour (see SECURITY.md for the daily bound).
const LOGIN_LOCKS: LoginLockPolicy = LoginLockPolicy {
    free: 5,
    max_lock_ms: 3_600_000,
};
/// The account's own key, across all its logins: twice the free failures,
/// so failures on one login (say the username) do not lock the owner's
/// other logins before that login's own key is locked.
const ACCOUNT_LOCKS: LoginLockPolicy = LoginLockPolicy {
    free: 10,
    max_lock_ms: 3_600_000,
};
const DAY_MS: i64 = 24 * 3_600_000;

/// The throttle key of a typed login: normalised when it parses, so
/// `Alice@Example.com` and `alice@example.com` share one streak.
fn throttle_key(services: &Services, login: &str) -> String {
    services
        .secret
        .keyed_hash(Purpose::RateLimitKey, &[b"login", normalised_login(login).as_bytes()])
}

/// A typed login as its limits count it: `Login::limit_key` when it parses.
fn normalised_login(login: &str) -> String {
    Login::parse(login).map_or_else(|| login.trim().to_lowercase(), |l| l.limit_key())
}

/// The throttle key that spans every login of one account. A login that
/// names no account gets one of its own, so both paths do the same writes.
fn identity_throttle_key(services: &Services, identity: Option<&Identity>, login: &str) -> String {
    match identity {
        Some(identity) => services
            .secret
            .keyed_hash(Purpose::RateLimitKey, &[b"identity", identity.id().as_bytes()]),
        None => services.secret.keyed_hash(
            Purpose::RateLimitKey,
            &[b"identity-of", normalised_login(login).as_bytes()],
        ),
    }
}

async fn reserve(services: &Services, key: &str, policy: LoginLockPolicy) -> Result<LoginReservation> {
    let now = now_ms();
    Ok(services
        .store
        .reserve_login_attempt(key, now, now - DAY_MS, policy)
        .await?)
}

/// Checks a password and opens a session. A hasher slot is taken first (so
/// an `overloaded` answer costs nothing), then the evaluation is reserved on
/// two throttle keys before Argon2 runs: the typed login's and the
/// account's across all its logins. Both locks are enforced silently: the
/// password is still run through Argon2, at the same cost, but cannot
/// succeed, so the answer is a plain 401. A 429 for the account's key would
/// tell that two logins share an account; one for the typed login's would
/// tell that its streak was cleared, which only the owner's login or
/// recovery does, so that an address has an account.
pub async fn login(services: &Services, login: &str, password: SecretString, client: &Client) -> Result<IssuedSession> {
    let slot = services.hasher.slot()?;
    let key = throttle_key(services, login);
    // The typed login's reservation comes before the account is looked up,
    // so its lock is decided after the same work for every account.
    let typed = reserve(services, &key, LOGIN_LOCKS).await?;
    let identity = identity::find_by_typed_login(services, login).await?;
    let identity_key = identity_throttle_key(services, identity.as_ref(), login);
    // While the typed login is locked, its attempts are not counted against
    // the account: only evaluations are, at the pace of the login's locks.
    let (failures, account_locked, account_failures) = match typed {
        LoginReservation::Locked { .. } => (None, false, 0),
        LoginReservation::Reserved { failures } => match reserve(services, &identity_key, ACCOUNT_LOCKS).await? {
            LoginReservation::Reserved { failures: account } => (Some(failures), false, account),
            LoginReservation::Locked { .. } => (Some(failures), true, 0),
        },
    };
    // A locked or frozen account fails like a locked login: the same Argon2
    // work, never a match.
    let open = failures.is_some() && !account_locked && !identity.as_ref().is_some_and(Identity::is_frozen);
    let check = identity::verify_password(&slot, services, identity.as_ref(), password, open).await?;
    drop(slot);
    if !check.valid {
        services.hasher.hold_failure(check.began).await;
    }
    let valid = check.valid;
    let identity = match (identity, valid) {
        (Some(identity), true) => identity,
        (identity, _) => {
            let event = audit::event(
                Kind::LoginFailed,
                // A refusal by the typed login's lock names no account: the
                // account's history (and its webhooks) keep the evaluations,
                // which the lock bounds, and a stranger cannot bury them.
                identity.as_ref().filter(|_| failures.is_some()).map(Identity::id),
                client,
                json!({
                    "failures": failures,
                    "login_locked": failures.is_none(),
                    "account_locked": account_locked,
                    // This failure starts a lock (of the typed login or of the account): `login.locked`.
                    "locks": failures == Some(LOGIN_LOCKS.free) || account_failures == ACCOUNT_LOCKS.free,
                }),
            );
            services.store.insert_audit_event(&event).await?;
            return Err(Error::InvalidCredentials { identity_id: None });
        }
    };
    let now = now_ms();
    let (token, record) = new_session(services, identity.id(), client, now);
    let event = audit::event(
        Kind::LoginSucceeded,
        Some(identity.id()),
        client,
        json!({"session_id": record.session_id}),
    );
    // The password was verified under this epoch; if a reset or an operator
    // changed it since, the old password no longer opens anything (and the
    // failed-login streaks stay). Otherwise the session and the cleared
    // streaks are one write.
    if !services
        .store
        .create_session(&record, &event, identity.record.credential_epoch, &[key, identity_key])
        .await?
    {
        return Err(Error::InvalidCredentials { identity_id: None });
    }
    let jwt = sign_jwt(services, &record)?;
    Ok(IssuedSession {
        token,
        jwt,
        record,
        identity,
    })
}

/// The active session a session token stands for, with its identity, in one read.
async fn active_by_token(services: &Services, raw: &str) -> Result<(SessionRecord, Identity)> {
    let token = SecretToken::parse(raw).ok_or(Error::Unauthorized)?;
    let hash = services
        .secret
        .keyed_hash(Purpose::SessionToken, &[token.expose().as_bytes()]);
    active(services, SessionLookup::TokenHash(&hash), None).await
}

/// The session `lookup` finds, if active (and, for a JWT, of the identity it names), with its identity.
async fn active(services: &Services, lookup: SessionLookup<'_>, of: Option<&str>) -> Result<(SessionRecord, Identity)> {
    let (session, record, addresses) = services
        .store
        .session_with_identity(lookup)
        .await?
        .filter(|(s, _, _)| s.is_active(now_ms()) && of.is_none_or(|sub| s.identity_id == sub))
        .ok_or(Error::Unauthorized)?;
    Ok((session, Identity { record, addresses }))
}

/// The active session a credential stands for, with its identity.
pub async fn current(services: &Services, credential: Credential) -> Result<(SessionRecord, Identity)> {
    match credential {
        Credential::Token(raw) => active_by_token(services, &raw).await,
        Credential::Jwt(jwt) => {
            let claims: SessionClaims = services
                .keys
                .verify(&jwt, Some(services.settings.jwt_audience()))
                .ok_or(Error::Unauthorized)?;
            if claims.token_use != "session" {
                return Err(Error::Unauthorized);
            }
            active(services, SessionLookup::Id(&claims.sid), Some(&claims.sub)).await
        }
    }
}

/// A fresh JWT for an active session; the session token stays the same.
pub async fn refresh(services: &Services, raw_token: &str) -> Result<IssuedSession> {
    let (session, identity) = active_by_token(services, raw_token).await?;
    let jwt = sign_jwt(services, &session)?;
    let token = SecretToken::parse(raw_token).ok_or(Error::Unauthorized)?;
    Ok(IssuedSession {
        token,
        jwt,
        record: session,
        identity,
    })
}

/// The throttle keys of every login of `identity` and of the account: what
/// a password reset clears.
pub fn throttle_keys(services: &Services, identity: &Identity) -> Vec<String> {
    let mut logins: Vec<String> = identity.addresses.iter().map(|a| a.value.clone()).collect();
    logins.extend(identity.record.username.clone());
    let mut keys: Vec<String> = logins.iter().map(|l| throttle_key(services, l)).collect();
    keys.push(identity_throttle_key(services, Some(identity), ""));
    keys
}

pub async fn logout(services: &Services, raw_token: &str, client: &Client) -> Result<()> {
    let (session, _) = active_by_token(services, raw_token).await?;
    let event = audit::event(
        Kind::Logout,
        Some(&session.identity_id),
        client,
        json!({"session_id": session.session_id}),
    );
    services
        .store
        .revoke_session(&session.session_id, now_ms(), &event)
        .await?;
    Ok(())
}
