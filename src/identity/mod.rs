//! Identities and their addresses and credentials: creating them, finding
//! them by a login, and checking a password.
//!
//! Never reveals through timing or answers whether an account exists: an
//! unknown login is checked against a dummy hash like a wrong password.

pub mod census;
pub mod import;
pub mod legacy;
pub mod manage;
mod password_hasher;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub use password_hasher::{PasswordHasher, Slot, Verification};

use crate::domain::{EmailAddress, Login, PasswordPolicy, PhoneNumber, Username};
use crate::error::{Error, Result};
use crate::secrets::Purpose;
use crate::services::Services;
use crate::store::{AddressKind, AddressRecord, IdentityRecord, LoginLookup};
use crate::time::now_ms;

/// What an operator or the admin API supplies to create an account.
#[derive(Debug)]
pub struct NewIdentity {
    pub email: EmailAddress,
    pub username: Option<Username>,
    pub phone: Option<PhoneNumber>,
    pub roles: Vec<String>,
    /// Whether the addresses count as verified (codes are only sent to those).
    pub verified: bool,
    pub password: Option<SecretString>,
}

/// An identity with its addresses, as every answer shows it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub record: IdentityRecord,
    pub addresses: Vec<AddressRecord>,
}

impl Identity {
    pub fn id(&self) -> &str {
        &self.record.identity_id
    }

    fn address(&self, kind: AddressKind) -> Option<&AddressRecord> {
        self.addresses.iter().find(|a| a.kind == kind.as_str())
    }

    /// The verified address of this kind a code may be sent to.
    pub fn verified(&self, kind: AddressKind) -> Option<&AddressRecord> {
        self.addresses.iter().find(|a| a.kind == kind.as_str() && a.verified)
    }

    pub fn email(&self) -> Option<&str> {
        self.address(AddressKind::Email).map(|a| a.value.as_str())
    }

    /// Strings a password must not contain: the email, its local part, the username.
    pub fn identifiers(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(email) = self.email() {
            out.push(email);
            out.push(email.rsplit_once('@').map_or(email, |(local, _)| local));
        }
        if let Some(username) = &self.record.username {
            out.push(username);
        }
        out
    }

    /// The seed's `AuthIdentity.traits`.
    pub fn traits(&self) -> Value {
        let mut traits = serde_json::Map::new();
        if let Some(email) = self.email() {
            traits.insert("email".into(), json!(email));
        }
        if let Some(username) = &self.record.username {
            traits.insert("username".into(), json!(username));
        }
        if let Some(phone) = self.address(AddressKind::Phone) {
            traits.insert("phone".into(), json!(phone.value));
        }
        Value::Object(traits)
    }

    /// Frozen by "this wasn't me": no password login, no recovery.
    pub fn is_frozen(&self) -> bool {
        self.record.frozen_at.is_some()
    }

    /// Whether a code may go to this account at `now`: not frozen, and not
    /// paused by "didn't ask for this?".
    pub fn accepts_codes(&self, now: i64) -> bool {
        !self.is_frozen() && self.record.recovery_paused_until.is_none_or(|until| until <= now)
    }

    /// The full view operators see (CLI, admin API).
    pub fn to_admin_json(&self) -> Value {
        json!({
            "id": self.record.identity_id,
            "traits": self.traits(),
            "roles": self.record.role_list(),
            "has_password": self.record.password_hash.is_some(),
            "password_algorithm": self.record.password_hash.as_deref().map(legacy::algorithm_of),
            "frozen": self.is_frozen(),
            "frozen_at": self.record.frozen_at.map(crate::time::rfc3339),
            "addresses": self.addresses.iter().map(|a| json!({
                "kind": a.kind,
                "value": a.value,
                "verified": a.verified,
            })).collect::<Vec<_>>(),
            "created_at": crate::time::rfc3339(self.record.created_at),
            "updated_at": crate::time::rfc3339(self.record.updated_at),
        })
    }
}

pub fn policy(services: &Services) -> PasswordPolicy {
    PasswordPolicy {
        min_length: services.settings.password.min_length,
    }
}

/// Creates an identity on no one's behalf (tests, programmatic setup).
pub async fn create(services: &Services, new: NewIdentity) -> Result<Identity> {
    create_as(services, new, &crate::services::Client::default()).await
}

/// Creates an identity, audited as done by `client`.
pub async fn create_as(services: &Services, new: NewIdentity, client: &crate::services::Client) -> Result<Identity> {
    let now = now_ms();
    let identity_id = uuid::Uuid::new_v4().to_string();
    let address = |kind: AddressKind, value: &str| AddressRecord {
        address_id: uuid::Uuid::new_v4().to_string(),
        identity_id: identity_id.clone(),
        kind: kind.as_str().into(),
        value: value.into(),
        verified: new.verified,
        created_at: now,
    };
    let mut addresses = vec![address(AddressKind::Email, new.email.as_str())];
    if let Some(phone) = &new.phone {
        addresses.push(address(AddressKind::Phone, phone.as_str()));
    }
    let mut record = IdentityRecord {
        identity_id: identity_id.clone(),
        username: new.username.as_ref().map(|u| u.as_str().to_owned()),
        password_hash: None,
        roles: serde_json::to_string(&new.roles).map_err(anyhow::Error::from)?,
        created_at: now,
        updated_at: now,
        credential_epoch: 0,
        frozen_at: None,
        recovery_paused_until: None,
    };
    if let Some(password) = new.password {
        let candidate = Identity {
            record: record.clone(),
            addresses: addresses.clone(),
        };
        let checked = policy(services)
            .check(
                secrecy::ExposeSecret::expose_secret(&password),
                &candidate.identifiers(),
            )
            .map_err(Error::PasswordPolicy)?;
        record.password_hash = Some(services.hasher.hash(SecretString::from(checked.expose())).await?);
    }
    let event = crate::audit::event(
        crate::audit::Kind::IdentityCreated,
        Some(&identity_id),
        client,
        serde_json::json!({}),
    );
    services.store.create_identity(&record, &addresses, &event).await?;
    Ok(Identity { record, addresses })
}

pub async fn load(services: &Services, identity_id: &str) -> Result<Option<Identity>> {
    let found = services.store.identity_with_addresses(identity_id).await?;
    Ok(found.map(|(record, addresses)| Identity { record, addresses }))
}

/// The identity a login names (email, phone number or username), if any.
///
/// Known and unknown logins run the same query and read as many rows from
/// pages as cold (an unknown login reads the account at its keyed place in
/// the table, and the store drops it), so the time this takes says nothing
/// about whether the account exists.
pub async fn find_by_login(services: &Services, login: &Login) -> Result<Option<Identity>> {
    let lookup = match login {
        Login::Email(email) => LoginLookup::Address(AddressKind::Email, email.as_str()),
        Login::Phone(phone) => LoginLookup::Address(AddressKind::Phone, phone.as_str()),
        Login::Username(username) => LoginLookup::Username(username.as_str()),
    };
    let place = services
        .secret
        .keyed_number(Purpose::LookupPlace, &[login.limit_key().as_bytes()]);
    let found = services.store.identity_for_login(lookup, place).await?;
    Ok(found.map(|(record, addresses)| Identity { record, addresses }))
}

/// The identity a typed login names, if it parses and names one.
pub async fn find_by_typed_login(services: &Services, login: &str) -> Result<Option<Identity>> {
    match Login::parse(login) {
        Some(login) => find_by_login(services, &login).await,
        None => Ok(None),
    }
}

/// What a password check found: whether it may log in, and when its hash
/// check began. A failure is answered only once `PasswordHasher::hold_failure`
/// from `began` has passed — after the caller has dropped its slot.
#[derive(Debug, Clone, Copy)]
pub struct PasswordCheck {
    pub valid: bool,
    pub began: std::time::Instant,
}

/// Checks a password against an identity's hash, in a hasher `slot` the
/// caller took. No identity, or one without a password, costs the same
/// Argon2 verification (against a dummy hash) and is never valid. The
/// password is normalised as the policy normalised it when it was set
/// (NFKC), so another Unicode form of the same characters is the same
/// password; an imported hash is checked against the password as typed, as
/// the system that made it saw it. A valid password under an imported hash
/// or older parameters is rehashed. With `may_succeed` false (a locked
/// account) the same work is done but the answer is always false and nothing
/// is rehashed, so neither the answer nor its timing says whether the
/// password was right.
pub async fn verify_password(
    slot: &Slot,
    services: &Services,
    identity: Option<&Identity>,
    password: SecretString,
    may_succeed: bool,
) -> Result<PasswordCheck> {
    census::cover_imports(services).await?;
    let normalised = SecretString::from(crate::domain::normalise_password(password.expose_secret()));
    let stored = identity.and_then(|i| i.record.password_hash.clone());
    let candidate = match &stored {
        Some(stored) if !password_hasher::is_own(stored) => password,
        _ => normalised.clone(),
    };
    let verification = slot.verify(candidate, stored.as_deref()).await?;
    let failed = PasswordCheck {
        valid: false,
        began: verification.began,
    };
    let (Some(identity), Some(stored), true, true) = (identity, stored, may_succeed, verification.valid) else {
        return Ok(failed);
    };
    if verification.needs_rehash {
        let fresh = slot.hash(normalised).await?;
        services
            .store
            .update_password_hash(identity.id(), &stored, &fresh, now_ms())
            .await?;
    }
    Ok(PasswordCheck {
        valid: true,
        began: verification.began,
    })
}
