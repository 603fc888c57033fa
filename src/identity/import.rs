//! Importing identities with the password hashes their old system made
//! (SPEC §5.5), for the CLI's JSON Lines and the admin API alike: each
//! record is checked whole (addresses, roles, hash format and cost), then
//! written whole or not at all; one that names an existing identity is
//! skipped and reported. Counts are kept per outcome and per algorithm.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::legacy::LegacyHash;
use crate::audit::{self, Kind};
use crate::domain::{EmailAddress, PhoneNumber, Username};
use crate::error::Result;
use crate::services::{Client, Services};
use crate::store::{AddressKind, AddressRecord, IdentityRecord, ImportedIdentityRecord, PLACEHOLDER_IDENTITY_ID};
use crate::time::now_ms;

/// Most records the admin API takes in one request; the CLI writes batches of this size.
pub const MAX_BATCH: usize = 1000;

/// One record as a line of the import file carries it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRecord {
    /// A UUID to keep the old system's id; a new one when absent.
    id: Option<String>,
    email: Option<String>,
    /// Codes are only sent to verified addresses (default false).
    #[serde(default)]
    email_verified: bool,
    username: Option<String>,
    /// E.164, e.g. `+84901234567`.
    phone: Option<String>,
    #[serde(default)]
    phone_verified: bool,
    #[serde(default)]
    roles: Vec<String>,
    /// Argon2, scrypt, PBKDF2, bcrypt, Django, crypt, LDAP or Firebase scrypt (SPEC §5.5).
    password_hash: Option<String>,
    /// RFC 3339; now when absent.
    created_at: Option<String>,
}

/// What happened to one record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ItemOutcome {
    Imported {
        id: String,
        /// The password hash's algorithm, or `none`.
        algorithm: &'static str,
    },
    Skipped {
        reason: String,
    },
    Failed {
        reason: String,
    },
}

/// Counts over everything imported so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub imported: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Imported identities per password hash algorithm (`none`: no password).
    pub algorithms: BTreeMap<&'static str, u64>,
}

/// A record that passed every check, ready to write.
struct Checked {
    record: ImportedIdentityRecord,
    algorithm: &'static str,
    /// `email:…`, `id:…`: what another record of this import must not repeat.
    keys: Vec<(&'static str, String)>,
}

/// An import in progress: its batches share the counts and know the keys
/// earlier batches used, so a record repeating one is skipped in a dry run
/// exactly as in a real one.
pub struct Import<'s> {
    services: &'s Services,
    client: Client,
    /// `line` (CLI) or `item` (admin API), in messages.
    unit: &'static str,
    seen: HashMap<(&'static str, String), usize>,
    pub summary: Summary,
}

impl<'s> Import<'s> {
    pub fn new(services: &'s Services, client: Client, unit: &'static str, dry_run: bool) -> Self {
        Self {
            services,
            client,
            unit,
            seen: HashMap::new(),
            summary: Summary {
                dry_run,
                ..Summary::default()
            },
        }
    }

    /// Imports one batch (at most `MAX_BATCH`): each item is its position
    /// (line or index) and the record, or why it could not be read.
    pub async fn batch(
        &mut self,
        items: Vec<(usize, std::result::Result<ImportRecord, String>)>,
    ) -> Result<Vec<(usize, ItemOutcome)>> {
        let now = now_ms();
        let mut outcomes: Vec<(usize, Option<ItemOutcome>)> = Vec::with_capacity(items.len());
        let mut writes = Vec::new();
        for (position, item) in items {
            let outcome = match item.and_then(|record| self.check(record, now)) {
                Err(reason) => Some(ItemOutcome::Failed { reason }),
                // Repeats within this batch meet in the database; an earlier batch's, here.
                Ok(checked) => match checked
                    .keys
                    .iter()
                    .find_map(|key| self.seen.get(key).map(|p| (key.0, *p)))
                {
                    Some((field, earlier)) => Some(ItemOutcome::Skipped {
                        reason: format!("{field} is already in this import ({} {earlier})", self.unit),
                    }),
                    None => {
                        writes.push((outcomes.len(), position, checked));
                        None
                    }
                },
            };
            outcomes.push((position, outcome));
        }
        let records: Vec<_> = writes.iter().map(|(_, _, c)| c.record.clone()).collect();
        let written = self
            .services
            .store
            .import_identities(&records, !self.summary.dry_run)
            .await?;
        for ((slot, position, checked), taken) in writes.into_iter().zip(written) {
            outcomes[slot].1 = Some(match taken {
                Some(field) => ItemOutcome::Skipped {
                    reason: format!("an identity with this {field} exists"),
                },
                None => {
                    // Only what was written (or, in a dry run, would be) claims its keys.
                    for key in checked.keys {
                        self.seen.insert(key, position);
                    }
                    ItemOutcome::Imported {
                        id: checked.record.identity.identity_id,
                        algorithm: checked.algorithm,
                    }
                }
            });
        }
        let outcomes: Vec<_> = outcomes
            .into_iter()
            .filter_map(|(position, outcome)| outcome.map(|o| (position, o)))
            .collect();
        for (_, outcome) in &outcomes {
            match outcome {
                ItemOutcome::Imported { algorithm, .. } => {
                    self.summary.imported += 1;
                    *self.summary.algorithms.entry(algorithm).or_default() += 1;
                }
                ItemOutcome::Skipped { .. } => self.summary.skipped += 1,
                ItemOutcome::Failed { .. } => self.summary.failed += 1,
            }
        }
        Ok(outcomes)
    }

    /// Every rule a record must pass, with the reason it fails.
    fn check(&self, record: ImportRecord, now: i64) -> std::result::Result<Checked, String> {
        if record.email.is_none() && record.username.is_none() && record.phone.is_none() {
            return Err("needs an email, a username or a phone".into());
        }
        let identity_id = match &record.id {
            Some(id) => uuid::Uuid::parse_str(id)
                .ok()
                .map(|u| u.hyphenated().to_string())
                .filter(|id| id != PLACEHOLDER_IDENTITY_ID)
                .ok_or_else(|| format!("id {id:?} is not a UUID latchkey can use"))?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let email = record
            .email
            .as_deref()
            .map(|e| EmailAddress::parse(e).ok_or_else(|| format!("email {e:?} is not a valid address")))
            .transpose()?;
        let username = record
            .username
            .as_deref()
            .map(|u| Username::parse(u).ok_or_else(|| format!("username {u:?} is not a valid username")))
            .transpose()?;
        let phone = record
            .phone
            .as_deref()
            .map(|p| {
                PhoneNumber::parse(p)
                    .ok_or_else(|| format!("phone {p:?} is not in international form (e.g. +84901234567)"))
            })
            .transpose()?;
        super::manage::valid_roles(&record.roles).map_err(|_| "roles must be at most 32 short ASCII names")?;
        let algorithm = match &record.password_hash {
            Some(hash) => LegacyHash::parse(hash).map_err(|e| e.to_string())?.algorithm(),
            None => "none",
        };
        let created_at = match &record.created_at {
            Some(text) => time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
                .filter(|ms| *ms >= 0)
                .ok_or_else(|| format!("created_at {text:?} is not an RFC 3339 time"))?,
            None => now,
        };
        let address = |kind: AddressKind, value: &str, verified: bool| AddressRecord {
            address_id: uuid::Uuid::new_v4().to_string(),
            identity_id: identity_id.clone(),
            kind: kind.as_str().into(),
            value: value.into(),
            verified,
            created_at,
        };
        let mut addresses = Vec::new();
        let mut keys = vec![("id", identity_id.clone())];
        if let Some(email) = &email {
            addresses.push(address(AddressKind::Email, email.as_str(), record.email_verified));
            keys.push(("email", email.as_str().to_owned()));
        }
        if let Some(phone) = &phone {
            addresses.push(address(AddressKind::Phone, phone.as_str(), record.phone_verified));
            keys.push(("phone", phone.as_str().to_owned()));
        }
        if let Some(username) = &username {
            keys.push(("username", username.as_str().to_owned()));
        }
        let identity = IdentityRecord {
            identity_id: identity_id.clone(),
            username: username.map(|u| u.as_str().to_owned()),
            password_hash: record.password_hash,
            roles: serde_json::to_string(&record.roles).map_err(|e| e.to_string())?,
            created_at,
            updated_at: now,
            credential_epoch: 0,
            frozen_at: None,
            recovery_paused_until: None,
        };
        let audit = audit::event(
            Kind::IdentityCreated,
            Some(&identity_id),
            &self.client,
            json!({"imported": true, "password_algorithm": algorithm}),
        );
        Ok(Checked {
            record: ImportedIdentityRecord {
                identity,
                addresses,
                audit,
            },
            algorithm,
            keys,
        })
    }
}

impl ImportRecord {
    /// One line of a JSON Lines file.
    pub fn from_line(line: &str) -> std::result::Result<Self, String> {
        serde_json::from_str(line).map_err(|e| {
            // serde's "at line 1 column N" would name a line of the record, not of the file.
            let text = e.to_string();
            let what = text.rsplit_once(" at line ").map_or(text.as_str(), |(what, _)| what);
            format!("not an import record: {what} (column {})", e.column())
        })
    }

    /// One item of the admin API's list.
    pub fn from_value(value: serde_json::Value) -> std::result::Result<Self, String> {
        serde_json::from_value(value).map_err(|e| format!("not an import record: {e}"))
    }
}
