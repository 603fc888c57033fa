//! The token dialect's pair: an access JWT for the session, and an opaque
//! refresh token (stored as a keyed hash) that rotates on every use.
//! Presenting a spent refresh token revokes its whole family and session
//! (reuse detection, OAuth 2.0 Security BCP §4.14).

use serde_json::json;

use super::{IssuedSession, sign_jwt};
use crate::audit::{self, Kind};
use crate::domain::SecretToken;
use crate::error::{Error, Result};
use crate::secrets::Purpose;
use crate::services::{Client, Services};
use crate::store::{RefreshTokenRecord, SessionRecord};
use crate::time::now_ms;

/// What the token dialect hands out.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: SecretToken,
    pub identity_id: String,
    /// Seconds.
    pub access_ttl: i64,
    /// Seconds.
    pub refresh_ttl: i64,
}

fn new_refresh(
    services: &Services,
    session: &SessionRecord,
    family_id: &str,
    now: i64,
) -> (SecretToken, RefreshTokenRecord) {
    let token = SecretToken::generate();
    let record = RefreshTokenRecord {
        refresh_token_id: uuid::Uuid::new_v4().to_string(),
        family_id: family_id.to_owned(),
        session_id: session.session_id.clone(),
        identity_id: session.identity_id.clone(),
        token_hash: services
            .secret
            .keyed_hash(Purpose::RefreshToken, &[token.expose().as_bytes()]),
        // A refresh token cannot outlive its session.
        expires_at: session.expires_at,
        spent_at: None,
        revoked_at: None,
        created_at: now,
    };
    (token, record)
}

fn pair(services: &Services, session: &SessionRecord, access_token: String, refresh_token: SecretToken) -> TokenPair {
    let now = now_ms();
    TokenPair {
        access_token,
        refresh_token,
        identity_id: session.identity_id.clone(),
        access_ttl: i64::try_from(services.settings.session.jwt_lifespan.as_secs())
            .unwrap_or(i64::MAX)
            .min((session.expires_at - now) / 1000),
        refresh_ttl: (session.expires_at - now) / 1000,
    }
}

/// Starts a refresh family for a session just issued.
pub async fn issue_pair(services: &Services, issued: IssuedSession) -> Result<TokenPair> {
    let family_id = uuid::Uuid::new_v4().to_string();
    let (token, record) = new_refresh(services, &issued.record, &family_id, now_ms());
    services.store.insert_refresh_token(&record).await?;
    Ok(pair(services, &issued.record, issued.jwt, token))
}

/// Spends a refresh token for a new pair in the same family.
pub async fn rotate(services: &Services, raw: &str, client: &Client) -> Result<TokenPair> {
    let token = SecretToken::parse(raw).ok_or(Error::Unauthorized)?;
    let hash = services
        .secret
        .keyed_hash(Purpose::RefreshToken, &[token.expose().as_bytes()]);
    let current = services
        .store
        .refresh_token_by_hash(&hash)
        .await?
        .ok_or(Error::Unauthorized)?;
    let now = now_ms();
    if current.spent_at.is_some() || current.revoked_at.is_some() {
        return Err(reuse(services, &current, client).await);
    }
    let session = services
        .store
        .session(&current.session_id)
        .await?
        .filter(|s| s.is_active(now))
        .ok_or(Error::Unauthorized)?;
    let (next_token, next) = new_refresh(services, &session, &current.family_id, now);
    if !services
        .store
        .rotate_refresh_token(&current.refresh_token_id, &next, now)
        .await?
    {
        // Spent concurrently, or expired: treat a lost race as a reuse only if spent.
        let again = services.store.refresh_token_by_hash(&hash).await?;
        return Err(match again {
            Some(t) if t.spent_at.is_some() => reuse(services, &t, client).await,
            _ => Error::Unauthorized,
        });
    }
    let access = sign_jwt(services, &session)?;
    Ok(pair(services, &session, access, next_token))
}

/// Logout for the token dialect: revokes the family of a refresh token
/// (spent or not) and its session. An unknown token is not an error, so the
/// answer says nothing about the token.
pub async fn revoke(services: &Services, raw: &str, client: &Client) -> Result<()> {
    let Some(token) = SecretToken::parse(raw) else {
        return Ok(());
    };
    let hash = services
        .secret
        .keyed_hash(Purpose::RefreshToken, &[token.expose().as_bytes()]);
    let Some(found) = services.store.refresh_token_by_hash(&hash).await? else {
        return Ok(());
    };
    let detail = json!({"family_id": found.family_id, "session_id": found.session_id});
    let event = audit::event(Kind::Logout, Some(&found.identity_id), client, detail);
    services
        .store
        .revoke_refresh_family(&found.family_id, now_ms(), &event)
        .await?;
    Ok(())
}

async fn reuse(services: &Services, token: &RefreshTokenRecord, client: &Client) -> Error {
    let now = now_ms();
    let detail = json!({"family_id": token.family_id, "session_id": token.session_id, "reason": "refresh_token_reuse"});
    let event = audit::event(Kind::SessionsRevoked, Some(&token.identity_id), client, detail);
    match services
        .store
        .revoke_refresh_family(&token.family_id, now, &event)
        .await
    {
        Ok(()) => Error::Unauthorized,
        Err(e) => Error::Internal(e),
    }
}
