//! Operator changes to an existing identity (admin API and CLI alike): its
//! username, roles and password, its addresses and whether they are verified,
//! and its deletion. Every change is audited in the transaction that makes it.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{Identity, load, policy};
use crate::audit::{self, Kind};
use crate::domain::{EmailAddress, PhoneNumber, Username};
use crate::error::{Error, Result};
use crate::services::{Client, Services};
use crate::store::{AddressKind, AddressRecord, IdentityChanges};
use crate::time::now_ms;

/// What an operator changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct IdentityUpdate {
    /// `Some(None)` removes the username.
    pub username: Option<Option<Username>>,
    pub roles: Option<Vec<String>>,
    /// A new password: checked against the policy; every session is revoked.
    pub password: Option<SecretString>,
}

/// An email address or a phone number, parsed.
#[derive(Debug, Clone)]
pub enum Address {
    Email(EmailAddress),
    Phone(PhoneNumber),
}

impl Address {
    pub fn parse(kind: &str, value: &str) -> Result<Self> {
        match kind {
            "email" => EmailAddress::parse(value)
                .map(Address::Email)
                .ok_or_else(|| Error::invalid("error.invalid_email")),
            "phone" => PhoneNumber::parse(value)
                .map(Address::Phone)
                .ok_or_else(|| invalid("phone must be in international form, e.g. +84901234567")),
            _ => Err(invalid("kind must be \"email\" or \"phone\"")),
        }
    }

    fn kind(&self) -> AddressKind {
        match self {
            Address::Email(_) => AddressKind::Email,
            Address::Phone(_) => AddressKind::Phone,
        }
    }

    fn value(&self) -> &str {
        match self {
            Address::Email(email) => email.as_str(),
            Address::Phone(phone) => phone.as_str(),
        }
    }
}

fn invalid(detail: &str) -> Error {
    Error::InvalidRequest {
        key: "error.invalid_request",
        detail: detail.to_owned(),
    }
}

/// Role names are short ASCII words (`admin`, `support:read`).
pub fn valid_roles(roles: &[String]) -> Result<()> {
    let valid = |r: &String| {
        !r.is_empty() && r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
    };
    if roles.iter().all(valid) && roles.len() <= 32 {
        Ok(())
    } else {
        Err(invalid("roles must be at most 32 short ASCII names"))
    }
}

async fn existing(services: &Services, identity_id: &str) -> Result<Identity> {
    load(services, identity_id).await?.ok_or(Error::NotFound)
}

/// Applies `update`. A new password must pass the policy (checked against
/// the identity's email and its username after the change) and revokes every
/// session of the identity, as a recovery does.
pub async fn update(
    services: &Services,
    identity_id: &str,
    update: IdentityUpdate,
    client: &Client,
) -> Result<Identity> {
    let mut identity = existing(services, identity_id).await?;
    if let Some(roles) = &update.roles {
        valid_roles(roles)?;
    }
    if let Some(username) = &update.username {
        identity.record.username = username.as_ref().map(|u| u.as_str().to_owned());
    }
    let password_hash = match &update.password {
        Some(password) => {
            let checked = policy(services)
                .check(password.expose_secret(), &identity.identifiers())
                .map_err(Error::PasswordPolicy)?;
            Some(services.hasher.hash(SecretString::from(checked.expose())).await?)
        }
        None => None,
    };
    let changes = IdentityChanges {
        username: update.username.map(|u| u.map(|u| u.as_str().to_owned())),
        roles: update
            .roles
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(anyhow::Error::from)?,
        password_hash,
    };
    let detail = json!({
        "username": changes.username.is_some(),
        "roles": update.roles,
        "password": changes.password_hash.is_some(),
    });
    let mut events = vec![audit::event(Kind::IdentityUpdated, Some(identity_id), client, detail)];
    if changes.password_hash.is_some() {
        // The store revokes them with the password change.
        let detail = json!({"reason": "password_changed"});
        events.push(audit::event(Kind::SessionsRevoked, Some(identity_id), client, detail));
    }
    if !services
        .store
        .update_identity(identity_id, &changes, now_ms(), &events)
        .await?
    {
        return Err(Error::NotFound);
    }
    existing(services, identity_id).await
}

/// Adds an email address or phone number to an identity; codes go to it
/// only once it is verified.
pub async fn add_address(
    services: &Services,
    identity_id: &str,
    address: &Address,
    verified: bool,
    client: &Client,
) -> Result<Identity> {
    existing(services, identity_id).await?;
    let now = now_ms();
    let record = AddressRecord {
        address_id: uuid::Uuid::new_v4().to_string(),
        identity_id: identity_id.to_owned(),
        kind: address.kind().as_str().into(),
        value: address.value().to_owned(),
        verified,
        created_at: now,
    };
    let detail = json!({"kind": record.kind, "verified": verified});
    let event = audit::event(Kind::AddressAdded, Some(identity_id), client, detail);
    services.store.insert_address(&record, &event).await?;
    existing(services, identity_id).await
}

/// Marks one of the identity's addresses verified (or not).
pub async fn set_verified(
    services: &Services,
    identity_id: &str,
    address: &Address,
    verified: bool,
    client: &Client,
) -> Result<Identity> {
    let detail = json!({"kind": address.kind().as_str(), "verified": verified});
    let event = audit::event(Kind::AddressVerified, Some(identity_id), client, detail);
    let changed = services
        .store
        .set_address_verified(identity_id, address.kind(), address.value(), verified, &event)
        .await?;
    if !changed {
        return Err(Error::NotFound);
    }
    existing(services, identity_id).await
}

/// Revokes every session of an identity; how many were live.
pub async fn revoke_sessions(services: &Services, identity_id: &str, client: &Client) -> Result<u64> {
    existing(services, identity_id).await?;
    let event = audit::event(Kind::SessionsRevoked, Some(identity_id), client, json!({}));
    Ok(services
        .store
        .revoke_identity_sessions(identity_id, now_ms(), &event)
        .await?)
}

/// Deletes an identity with its addresses, sessions and flows.
pub async fn delete(services: &Services, identity_id: &str, client: &Client) -> Result<()> {
    let event = audit::event(Kind::IdentityDeleted, Some(identity_id), client, json!({}));
    if !services.store.delete_identity(identity_id, &event).await? {
        return Err(Error::NotFound);
    }
    Ok(())
}
