//! Rows as the store hands them to the domain. Times are Unix milliseconds.

use serde::Serialize;

use super::{LoginLookup, PLACEHOLDER_IDENTITY_ID};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressKind {
    Email,
    Phone,
}

impl AddressKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::Email => "email",
            AddressKind::Phone => "phone",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub signing_key_id: String,
    pub sealed_private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub published_until: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdentityRecord {
    pub identity_id: String,
    pub username: Option<String>,
    pub password_hash: Option<String>,
    /// JSON array of role names.
    pub roles: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every password change (not by a rehash); a session is only
    /// created under the epoch its password was verified in.
    pub credential_epoch: i64,
    /// Set by "this wasn't me" on a notice: no password login, no recovery.
    pub frozen_at: Option<i64>,
    /// Set by "didn't ask for this?" on a code mail: no new code before then.
    pub recovery_paused_until: Option<i64>,
}

impl IdentityRecord {
    pub fn role_list(&self) -> Vec<String> {
        serde_json::from_str(&self.roles).unwrap_or_default()
    }
}

/// An identity joined with one of its addresses (none: `address_id` is null).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdentityAddressRow {
    #[sqlx(flatten)]
    pub identity: IdentityRecord,
    pub address_id: Option<String>,
    pub kind: Option<String>,
    pub value: Option<String>,
    pub verified: Option<bool>,
    pub address_created_at: Option<i64>,
}

/// A session joined with its identity and one of the identity's addresses
/// (`SESSION_WITH_IDENTITY_BY_*`): a session check in one statement.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionIdentityRow {
    pub session_id: String,
    pub token_hash: String,
    pub authenticated_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub session_created_at: i64,
    #[sqlx(flatten)]
    pub identity: IdentityAddressRow,
}

impl SessionIdentityRow {
    /// The session, its identity and its addresses, from the rows of one session.
    pub fn collect(mut rows: Vec<Self>) -> Option<(SessionRecord, IdentityRecord, Vec<AddressRecord>)> {
        let first = rows.first_mut()?;
        let session = SessionRecord {
            session_id: std::mem::take(&mut first.session_id),
            identity_id: first.identity.identity.identity_id.clone(),
            token_hash: std::mem::take(&mut first.token_hash),
            authenticated_at: first.authenticated_at,
            expires_at: first.expires_at,
            revoked_at: first.revoked_at,
            ip_address: first.ip_address.take(),
            user_agent: first.user_agent.take(),
            created_at: first.session_created_at,
        };
        let identity = first.identity.identity.clone();
        let addresses = IdentityAddressRow::addresses(rows.into_iter().map(|row| row.identity));
        Some((session, identity, addresses))
    }
}

impl IdentityAddressRow {
    /// `found`, the identity a login lookup (`sql::identity_by_login!`)
    /// read with its addresses, if the login names it: it is another
    /// account, or the placeholder, when the login names none.
    pub fn named_by(
        found: (IdentityRecord, Vec<AddressRecord>),
        login: LoginLookup<'_>,
    ) -> Option<(IdentityRecord, Vec<AddressRecord>)> {
        let (identity, addresses) = &found;
        let named = match login {
            LoginLookup::Address(kind, value) => addresses
                .iter()
                .any(|address| address.kind == kind.as_str() && address.value == value),
            LoginLookup::Username(username) => identity.username.as_deref() == Some(username),
        };
        (named && identity.identity_id != PLACEHOLDER_IDENTITY_ID).then_some(found)
    }

    /// The identity and its addresses, from the rows of one identity.
    pub fn collect(rows: Vec<Self>) -> Option<(IdentityRecord, Vec<AddressRecord>)> {
        let identity = rows.first()?.identity.clone();
        Some((identity, Self::addresses(rows.into_iter())))
    }

    /// The addresses of `rows`, collected into a vector of their own. Not
    /// through `collect()`: it would reuse the rows' allocation and shrink it
    /// in place, and the slivers a shrink leaves behind fragmented the
    /// allocator's arenas until a session-check flood held 170 MB
    /// (BENCHMARKS.md, 2026-12-06).
    fn addresses(rows: impl ExactSizeIterator<Item = Self>) -> Vec<AddressRecord> {
        let mut addresses = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(address_id), Some(kind), Some(value), Some(verified), Some(created_at)) = (
                row.address_id,
                row.kind,
                row.value,
                row.verified,
                row.address_created_at,
            ) else {
                continue;
            };
            addresses.push(AddressRecord {
                address_id,
                identity_id: row.identity.identity_id,
                kind,
                value,
                verified,
                created_at,
            });
        }
        addresses
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddressRecord {
    pub address_id: String,
    pub identity_id: String,
    pub kind: String,
    pub value: String,
    pub verified: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecoveryFlowRecord {
    pub recovery_flow_id: String,
    /// The account, or for a decoy a random id that names none.
    pub identity_id: String,
    /// A flow for an unknown or unverified login: never succeeds.
    pub decoy: bool,
    pub address_key: String,
    pub channel: String,
    pub cookie_hash: String,
    pub code_hash: Option<String>,
    pub state: String,
    pub code_attempts: i64,
    pub locale: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub verified_at: Option<i64>,
    pub used_at: Option<i64>,
}

/// A message waiting in, or taken from, the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxMessageRecord {
    pub outbox_message_id: String,
    pub identity_id: Option<String>,
    pub channel: String,
    pub sealed_payload: Option<Vec<u8>>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// A delivered message: its sent mark and the event that records the delivery.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub message_id: String,
    pub sent_at: i64,
    pub event: AuditEventRecord,
}

impl RecoveryFlowRecord {
    /// The account this flow may recover; `None` for a decoy.
    pub fn account(&self) -> Option<&str> {
        (!self.decoy).then_some(self.identity_id.as_str())
    }
}

impl OutboxMessageRecord {
    /// A new message, due now: `pending`, or `void` for a decoy never sent.
    pub fn new(identity_id: Option<&str>, channel: &str, sealed_payload: Vec<u8>, status: &str, now: i64) -> Self {
        Self {
            outbox_message_id: new_row_id(),
            identity_id: identity_id.map(str::to_owned),
            channel: channel.to_owned(),
            sealed_payload: Some(sealed_payload),
            status: status.to_owned(),
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            last_error: None,
            created_at: now,
            sent_at: None,
        }
    }
}

/// What a retention purge deleted.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Purged {
    pub recovery_flows: u64,
    pub login_throttles: u64,
    pub outbox_messages: u64,
    pub sessions: u64,
    pub audit_events: u64,
    pub webhook_deliveries: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxStats {
    pub pending: i64,
    pub oldest_pending_created_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub session_id: String,
    pub identity_id: String,
    pub token_hash: String,
    pub authenticated_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
}

impl SessionRecord {
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEventRecord {
    pub audit_event_id: String,
    pub identity_id: Option<String>,
    pub kind: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// JSON object with non-secret details.
    pub detail: String,
    pub created_at: i64,
}

/// An operator's changes to an identity; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct IdentityChanges {
    /// `Some(None)` removes the username.
    pub username: Option<Option<String>>,
    /// JSON array of role names.
    pub roles: Option<String>,
    pub password_hash: Option<String>,
}

/// Everything `create_recovery_flow` writes, and the limit it enforces.
#[derive(Debug, Clone)]
pub struct NewRecoveryFlow {
    pub flow: RecoveryFlowRecord,
    /// Written for every start: the code for a real account, a decoy (`void`)
    /// or an unknown-recipient notice otherwise, so both paths do the same
    /// work. `None` only for a code support staff read out, which is not sent.
    pub message: Option<OutboxMessageRecord>,
    pub audit: AuditEventRecord,
    pub max_starts: u32,
    pub window_start: i64,
}

impl NewRecoveryFlow {
    /// `max_starts` for SQL: 0 switches the limit off.
    pub fn start_limit(&self) -> i64 {
        if self.max_starts == 0 {
            i64::MAX
        } else {
            i64::from(self.max_starts)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Created,
    /// The address used up its starts; the oldest one in the window began at this time.
    RateLimited {
        oldest_start: i64,
    },
}

/// Everything a successful reset writes, in one transaction.
#[derive(Debug, Clone)]
pub struct CompletedRecovery {
    pub flow_id: String,
    /// `verified` (cookie flow) or `sent` (token flow, code checked just before).
    pub from_state: &'static str,
    pub identity_id: String,
    pub password_hash: String,
    pub now: i64,
    pub session: SessionRecord,
    /// One per verified address of the account.
    pub notices: Vec<OutboxMessageRecord>,
    pub audit: Vec<AuditEventRecord>,
    /// The login throttle keys of the account, cleared with the reset (in
    /// its transaction on SQLite, right after it on PostgreSQL): whoever was
    /// locked out by failed logins proved themselves.
    pub clear_throttle: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRecord {
    pub refresh_token_id: String,
    pub family_id: String,
    pub session_id: String,
    pub identity_id: String,
    pub token_hash: String,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// How a throttle key locks: the first `free` failures in a row cost
/// nothing; each later one locks the key for 1 s, 2 s, 4 s … up to `max_lock_ms`.
#[derive(Debug, Clone, Copy)]
pub struct LoginLockPolicy {
    pub free: i64,
    pub max_lock_ms: i64,
}

impl LoginLockPolicy {
    /// How long the key is locked after its `failures`-th failure in a row.
    pub fn lock_ms(&self, failures: i64) -> i64 {
        let over = failures - self.free;
        if over < 0 {
            0
        } else {
            (1000i64 << over.min(self.doublings())).min(self.max_lock_ms)
        }
    }

    /// Doublings of one second after which the wait is `max_lock_ms`.
    pub fn doublings(&self) -> i64 {
        let mut n = 0;
        while n < 40 && (1000i64 << n) < self.max_lock_ms {
            n += 1;
        }
        n
    }
}

/// The answer to a reserved password evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginReservation {
    /// Counted as a failure until the password proves right; the streak is now this long.
    Reserved { failures: i64 },
    /// The key is locked until then; nothing was counted.
    Locked { until: i64 },
}

impl LoginLockPolicy {
    /// The lock a key's first failure sets, as a time (0: none).
    pub fn first_lock_until(&self, now: i64) -> i64 {
        match self.lock_ms(1) {
            0 => 0,
            lock => now + lock,
        }
    }
}

/// A flow's code-attempt budget for the store (0: unlimited).
pub fn attempt_limit(max_attempts: u32) -> i64 {
    if max_attempts == 0 {
        i64::MAX
    } else {
        i64::from(max_attempts)
    }
}

/// A new row's id: a UUIDv7, whose leading time keeps inserts at the end of
/// the primary-key index (one page per commit instead of one per row); the
/// other 74 bits are random. Only for rows whose creation time is no secret.
pub fn new_row_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A report link spent in the transaction of what it did (SPEC §5.3).
#[derive(Debug, Clone)]
pub struct SpentLink {
    /// A keyed hash of the link's token.
    pub digest: String,
    pub identity_id: String,
    /// `not_requested` or `not_me`.
    pub kind: &'static str,
    pub expires_at: i64,
}

/// "I didn't ask for this code": the account's live flows die and no new
/// code is sent before `paused_until`.
#[derive(Debug, Clone)]
pub struct CancelledRecovery {
    pub link: SpentLink,
    pub paused_until: i64,
    pub now: i64,
    pub audit: AuditEventRecord,
}

/// "This wasn't me" on a notice: the identity is frozen, every session and
/// refresh token revoked, its live flows killed, its password epoch bumped
/// (a login in flight creates no session), and a confirmation queued to each
/// verified address.
#[derive(Debug, Clone)]
pub struct SecuredIdentity {
    pub link: SpentLink,
    pub now: i64,
    pub notices: Vec<OutboxMessageRecord>,
    pub audit: Vec<AuditEventRecord>,
}

/// One identity an import writes: its row, its addresses, and the audit
/// event that records it, committed together or not at all.
#[derive(Debug, Clone)]
pub struct ImportedIdentityRecord {
    pub identity: IdentityRecord,
    pub addresses: Vec<AddressRecord>,
    pub audit: AuditEventRecord,
}

impl ImportedIdentityRecord {
    /// The address of this kind, if it has one.
    pub fn address(&self, kind: AddressKind) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.kind == kind.as_str())
            .map(|a| a.value.as_str())
    }
}

/// What an import did with one record: `None` written, `Some(field)`
/// skipped because an identity with that `id`, `email`, `username` or
/// `phone` exists.
pub type ImportOutcome = Option<&'static str>;

/// The stored password hashes, for the census: how many are latchkey's
/// current Argon2id, and every other one.
#[derive(Debug, Clone, Default)]
pub struct HashCensusRecord {
    pub current: i64,
    pub others: Vec<String>,
}

/// One event on its way to one webhook endpoint.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WebhookDeliveryRecord {
    /// `<audit event id>:<endpoint key>`: dispatching an event twice writes it once.
    pub webhook_delivery_id: String,
    /// The endpoint's key (`webhooks::Endpoint::key`), never its URL.
    pub endpoint: String,
    /// The `webhook-id` header: the same for every endpoint and every attempt.
    pub event_id: String,
    pub event_type: String,
    /// The request body, exactly as signed.
    pub payload: String,
    /// `pending`, `sent`, `failed` or `disabled`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    /// After this, a delivery still failing is given up.
    pub give_up_at: i64,
    pub last_error: Option<String>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i64>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum WebhookAttempt {
    Sent {
        status: i64,
    },
    Retry {
        next_attempt_at: i64,
        error: String,
        status: Option<i64>,
    },
    Failed {
        error: String,
        status: Option<i64>,
    },
}

/// An endpoint disabled by a 410 answer.
#[derive(Debug, Clone)]
pub struct WebhookEndpointRecord {
    /// The endpoint's key.
    pub endpoint: String,
    pub disabled_at: i64,
    pub reason: String,
}

/// Whose code attempts a daily guess budget counts.
#[derive(Debug, Clone, Copy)]
pub enum AttemptsOf<'a> {
    /// The flows of a login key (`address_key`): the login's budget.
    Login(&'a str),
    /// An identity's flows other than support-issued ones: the account's.
    Identity(&'a str),
}

impl<'a> AttemptsOf<'a> {
    /// The statement that sums them, and its first parameter.
    pub fn statement(self) -> (&'static str, &'a str) {
        match self {
            AttemptsOf::Login(key) => (super::sql::CODE_ATTEMPTS_BY_LOGIN, key),
            AttemptsOf::Identity(id) => (super::sql::CODE_ATTEMPTS_BY_IDENTITY, id),
        }
    }
}
