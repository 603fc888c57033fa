//! The `Store` trait: every read and write latchkey makes, as whole domain
//! operations (each one atomic), and its backends.
//!
//! The domain talks only to this trait; it never sees SQL or a connection.
//! Operations that must commit together (a flow and its outbox message; a
//! reset, its session revocations and its notice) are single methods so a
//! backend can run them in one transaction.

mod places;
mod postgres;
mod records;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use postgres::PostgresStore;
pub use records::*;
pub use sqlite::SqliteStore;

pub type DynStore = Arc<dyn Store>;

/// The row that stands in for "no such account" (created by the first migration).
pub const PLACEHOLDER_IDENTITY_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The setting an import that wrote identities counts up (in its
/// transaction): how a running server learns that hashes it has not
/// measured may now be checked (`identity::census`).
pub const HASHES_IMPORTED_SETTING: &str = "password_hashes_imported";

/// How a session is looked up: by its token's keyed hash, or by its id (a JWT's `sid`).
#[derive(Debug, Clone, Copy)]
pub enum SessionLookup<'a> {
    TokenHash(&'a str),
    Id(&'a str),
}

/// A session with its identity and the identity's addresses.
pub type SessionWithIdentity = (SessionRecord, IdentityRecord, Vec<AddressRecord>);

/// How a login is looked up.
#[derive(Debug, Clone, Copy)]
pub enum LoginLookup<'a> {
    Address(AddressKind, &'a str),
    Username(&'a str),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (address, username) is already taken.
    #[error("{0} is already in use")]
    Conflict(&'static str),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The key `IMPORT_CONFLICT` names, as a static name.
fn conflict_field(found: &str) -> &'static str {
    match found {
        "id" => "id",
        "email" => "email",
        "username" => "username",
        "phone" => "phone",
        _ => "a unique field",
    }
}

/// Opens the backend named by the URL's scheme.
pub async fn connect(settings: &crate::config::Settings) -> anyhow::Result<DynStore> {
    let url = settings.database_url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, &settings.database).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::connect(url, &settings.database).await?))
    } else {
        anyhow::bail!("unsupported database_url scheme (expected sqlite://… or postgres://…)")
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn migrate(&self) -> anyhow::Result<()>;
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> anyhow::Result<()>;

    async fn stored_setting(&self, key: &str) -> anyhow::Result<Option<String>>;
    async fn delete_setting(&self, key: &str) -> anyhow::Result<bool>;
    /// Returns the stored value, storing `value` first if none exists.
    async fn setting_or_insert(&self, key: &str, value: &str, now: i64) -> anyhow::Result<String>;

    async fn signing_keys(&self) -> anyhow::Result<Vec<SigningKeyRecord>>;
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> anyhow::Result<()>;
    /// Retires every active key but `keep`, publishing them until `published_until`.
    async fn retire_signing_keys_except(&self, keep: &str, now: i64, published_until: i64) -> anyhow::Result<()>;
    /// Retires one key at once: it stops verifying now, even if it was
    /// retired before with a later `published_until`.
    async fn retire_signing_key_now(&self, id: &str, now: i64) -> anyhow::Result<()>;

    /// Creates an identity with its addresses and its `identity.created` audit event.
    async fn create_identity(
        &self,
        identity: &IdentityRecord,
        addresses: &[AddressRecord],
        audit: &AuditEventRecord,
    ) -> StoreResult<()>;
    async fn identity(&self, identity_id: &str) -> anyhow::Result<Option<IdentityRecord>>;
    /// Reads now the table sizes the places of `identity_for_login` are
    /// folded into (`store::places`), which lookups otherwise re-read at
    /// most every ten seconds. `migrate` calls it.
    async fn read_lookup_sizes(&self) -> anyhow::Result<()>;
    /// The identity a login names, with its addresses. A login that names
    /// none reads, with the same query, the account at `place` in the
    /// table (a keyed hash of the login, which no one without the server
    /// secret can predict), and returns `None`
    /// (`IdentityAddressRow::named_by`).
    async fn identity_for_login(
        &self,
        login: LoginLookup<'_>,
        place: i64,
    ) -> anyhow::Result<Option<(IdentityRecord, Vec<AddressRecord>)>>;
    /// An identity with its addresses, in one read.
    async fn identity_with_addresses(
        &self,
        identity_id: &str,
    ) -> anyhow::Result<Option<(IdentityRecord, Vec<AddressRecord>)>>;
    async fn addresses(&self, identity_id: &str) -> anyhow::Result<Vec<AddressRecord>>;
    async fn list_identities(&self, limit: i64, offset: i64) -> anyhow::Result<Vec<IdentityRecord>>;
    /// Deletes an identity with its addresses, sessions and flows, and
    /// writes `audit`; false (and nothing written) when there is none.
    async fn delete_identity(&self, identity_id: &str, audit: &AuditEventRecord) -> anyhow::Result<bool>;
    /// Writes imported identities, each whole or not at all (a savepoint
    /// each): one whose id, email, username or phone exists is skipped and
    /// named. With `commit` false everything is checked and rolled back.
    /// A batch that wrote an identity counts `HASHES_IMPORTED_SETTING` up.
    async fn import_identities(
        &self,
        items: &[ImportedIdentityRecord],
        commit: bool,
    ) -> anyhow::Result<Vec<ImportOutcome>>;
    /// The stored password hashes for the census (`current_like`: the
    /// current Argon2id prefix as a `like` pattern).
    async fn password_hash_census(&self, current_like: &str) -> anyhow::Result<HashCensusRecord>;
    /// Replaces a password hash only if it is still `expected` (rehash on login).
    async fn update_password_hash(
        &self,
        identity_id: &str,
        expected: &str,
        new_hash: &str,
        now: i64,
    ) -> anyhow::Result<()>;

    /// Applies an operator's changes: each `Some` replaces that column (a
    /// `Some(None)` username removes it); the rest stay as they are, so a
    /// concurrent password reset is never undone. A new password bumps the
    /// credential epoch and revokes every session in the same transaction.
    /// The `audit` events are written with the change. False (and nothing
    /// written) when there is no such identity.
    async fn update_identity(
        &self,
        identity_id: &str,
        changes: &IdentityChanges,
        now: i64,
        audit: &[AuditEventRecord],
    ) -> StoreResult<bool>;
    async fn insert_address(&self, address: &AddressRecord, audit: &AuditEventRecord) -> StoreResult<()>;
    /// Marks one of an identity's addresses verified or not, with `audit`;
    /// false (and nothing written) when it has no such address.
    async fn set_address_verified(
        &self,
        identity_id: &str,
        kind: AddressKind,
        value: &str,
        verified: bool,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool>;

    /// Creates a flow and, for a real account, its outbox message, unless the
    /// address already started `max_starts` flows since `window_start`.
    async fn create_recovery_flow(&self, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome>;
    /// Code attempts spent since `since` on the flows a daily guess budget counts.
    async fn code_attempts(&self, of: AttemptsOf<'_>, since: i64) -> anyhow::Result<i64>;
    async fn recovery_flow_by_cookie(&self, cookie_hash: &str) -> anyhow::Result<Option<RecoveryFlowRecord>>;
    async fn recovery_flow(&self, flow_id: &str) -> anyhow::Result<Option<RecoveryFlowRecord>>;
    /// Spends one of the flow's `max_attempts` code attempts *before* the code
    /// is compared, so concurrent guesses cannot exceed the budget. `None` when
    /// the flow is not in `sent`, has expired, or has no attempt left.
    async fn reserve_code_attempt(
        &self,
        flow_id: &str,
        max_attempts: u32,
        now: i64,
    ) -> anyhow::Result<Option<RecoveryFlowRecord>>;
    /// A flow whose attempts ran out: dead, code erased, with its audit
    /// event (none when another request killed it first).
    async fn kill_flow(&self, flow_id: &str, audit: &AuditEventRecord) -> anyhow::Result<()>;
    /// `sent` → `verified`, spending the code and rotating the cookie, only if
    /// the flow still holds `old_cookie_hash`, with `audit` in the same
    /// transaction. False (and no event) if another request won.
    async fn mark_flow_verified(
        &self,
        flow_id: &str,
        old_cookie_hash: &str,
        new_cookie_hash: &str,
        now: i64,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool>;
    /// The code mail's link, opened in another browser: the flow is
    /// verified in place under `new_cookie_hash` (only if it still holds
    /// `cookie_hash`), and a decoy `decoy_id` takes the old cookie, the
    /// flow's login, start time and attempts, so the browser that started
    /// the flow keeps one that fails as an unknown login's does. With
    /// `audit`, in one transaction. False (and nothing written) if the flow
    /// was no longer waiting for its code.
    async fn continue_flow(
        &self,
        flow_id: &str,
        cookie_hash: &str,
        new_cookie_hash: &str,
        decoy_id: &str,
        now: i64,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool>;
    /// Whether a "this wasn't me" or "didn't ask for this" link (by its
    /// keyed hash) was spent.
    async fn link_spent(&self, digest: &str) -> anyhow::Result<bool>;
    /// Spends a "didn't ask for this" link: kills the identity's live flows
    /// and pauses new codes. `false` when the link was spent before.
    async fn cancel_recovery(&self, cancel: &CancelledRecovery) -> anyhow::Result<bool>;
    /// Spends a "this wasn't me" link and secures the identity (see
    /// `SecuredIdentity`). `false` when the link was spent before.
    async fn secure_identity(&self, secure: &SecuredIdentity) -> anyhow::Result<bool>;
    /// Lifts a freeze, with `audit`; `false` (and nothing written) when the
    /// identity was not frozen.
    async fn unfreeze_identity(&self, identity_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<bool>;
    /// Spends a verified flow and applies the reset atomically; false when the
    /// flow was already spent or expired (another request won).
    async fn complete_recovery(&self, reset: &CompletedRecovery) -> anyhow::Result<bool>;

    /// Creates a session only if the identity's `credential_epoch` is still
    /// the one its password was verified under, and in the same transaction
    /// clears the login throttle keys `clear_throttle`; false (and nothing
    /// written) when the epoch changed.
    async fn create_session(
        &self,
        session: &SessionRecord,
        audit: &AuditEventRecord,
        credential_epoch: i64,
        clear_throttle: &[String],
    ) -> anyhow::Result<bool>;
    async fn session(&self, session_id: &str) -> anyhow::Result<Option<SessionRecord>>;
    /// A session and its identity with addresses (a session check), in one
    /// statement; `None` when either is missing.
    async fn session_with_identity(&self, lookup: SessionLookup<'_>) -> anyhow::Result<Option<SessionWithIdentity>>;
    /// Revokes a session and, if it was live, writes `audit`.
    async fn revoke_session(&self, session_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<bool>;
    /// Revokes every session of an identity and writes `audit`; how many were live.
    async fn revoke_identity_sessions(
        &self,
        identity_id: &str,
        now: i64,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<u64>;

    /// Reserves one password evaluation for a throttle key *before* Argon2
    /// runs, atomically: unless the key is locked, counts it as a failure (a
    /// streak last touched before `reset_before` starts over) and sets the
    /// lock `policy` gives the new count. A burst of concurrent attempts thus
    /// gets no more evaluations than the free failures. A right password
    /// clears the key afterwards.
    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        reset_before: i64,
        policy: LoginLockPolicy,
    ) -> anyhow::Result<LoginReservation>;

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> anyhow::Result<()>;
    async fn refresh_token_by_hash(&self, token_hash: &str) -> anyhow::Result<Option<RefreshTokenRecord>>;
    /// Spends an unspent, unrevoked token and stores its successor, atomically.
    /// False if it was already spent or revoked (a reuse).
    async fn rotate_refresh_token(&self, spent_id: &str, next: &RefreshTokenRecord, now: i64) -> anyhow::Result<bool>;
    /// Revokes every token of the family and its session (a logout, or a
    /// reuse detected), and writes `audit` when that revoked anything (a
    /// spent token replayed again raises no second event).
    async fn revoke_refresh_family(&self, family_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<()>;

    /// Leases up to `limit` due messages until `lease_until`, counting an attempt.
    async fn claim_outbox(&self, now: i64, lease_until: i64, limit: i64) -> anyhow::Result<Vec<OutboxMessageRecord>>;
    /// Delivered: erase each payload, and write each delivery's audit event
    /// (`recovery.code_sent` or `notice.sent`) in the same transaction, so a message
    /// marked sent is audited once and an audited one is not sent again. All of
    /// `sent` commit together or not at all.
    ///
    /// A sent mark ends a pending message whichever claim delivered it (a
    /// mail that went out is not sent again); once it is ended, a mark
    /// changes nothing but still writes its event. A retry or a failure
    /// counts only under the claim it was made under (`attempts` as the
    /// claim set it) while the message is pending, so a courier whose lease
    /// ran out cannot undo a newer claim's outcome.
    async fn mark_outbox_sent(&self, sent: &[SentMessage]) -> anyhow::Result<()>;
    async fn mark_outbox_retry(
        &self,
        message_id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> anyhow::Result<()>;
    /// Given up: erase the payload.
    async fn mark_outbox_failed(&self, message_id: &str, attempts: i64, error: &str) -> anyhow::Result<()>;
    async fn outbox_stats(&self) -> anyhow::Result<OutboxStats>;

    /// Audit events not yet dispatched to webhooks, oldest first.
    async fn undispatched_events(&self, limit: i64) -> anyhow::Result<Vec<AuditEventRecord>>;
    /// Marks each event dispatched and writes the deliveries it calls for,
    /// in one transaction; an event another dispatcher marked first gets
    /// none from this one. How many events this call dispatched.
    async fn dispatch_events(&self, events: &[(String, Vec<WebhookDeliveryRecord>)]) -> anyhow::Result<usize>;
    /// Leases up to `limit` due deliveries of one endpoint (by key) until
    /// `lease_until`, counting an attempt; none while the endpoint is disabled.
    async fn claim_webhook_deliveries(
        &self,
        endpoint: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<WebhookDeliveryRecord>>;
    /// Records an attempt made under `claimed` (its `attempts` and
    /// `lease_until`); false when that claim is no longer the delivery's
    /// (its lease ran out and it was claimed again, or it was disabled or
    /// expired meanwhile — a 2xx is still recorded on a disabled one).
    async fn finish_webhook_delivery(
        &self,
        claimed: &WebhookDeliveryRecord,
        attempt: &WebhookAttempt,
        now: i64,
    ) -> anyhow::Result<bool>;
    /// Fails the pending deliveries past their retry window that no lease
    /// covers (an endpoint removed from the configuration), and marks
    /// undispatched events from before `stale_before` dispatched without
    /// deliveries; the endpoint (key) of each delivery failed.
    async fn expire_webhook_deliveries(&self, now: i64, stale_before: i64) -> anyhow::Result<Vec<String>>;
    /// Disables an endpoint (it answered 410) and every pending delivery of
    /// it, with the audit event; false (and no event) when it was disabled
    /// already.
    async fn disable_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpointRecord,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool>;
    /// Failed and disabled deliveries, newest first.
    async fn failed_webhook_deliveries(&self, limit: i64) -> anyhow::Result<Vec<WebhookDeliveryRecord>>;
    /// Queues a failed or disabled delivery again and enables its endpoint;
    /// false when there is no such failed delivery.
    async fn replay_webhook_delivery(&self, delivery_id: &str, now: i64, give_up_at: i64) -> anyhow::Result<bool>;
    /// Every failed and disabled delivery queued again, every endpoint enabled; how many.
    async fn replay_all_webhook_deliveries(&self, now: i64, give_up_at: i64) -> anyhow::Result<u64>;
    /// Pending deliveries of one endpoint (by key).
    async fn webhook_queue_depth(&self, endpoint: &str) -> anyhow::Result<i64>;

    /// Deletes, in small batches, flows that expired, sessions that ended,
    /// idle throttle rows and finished outbox rows from before `rows_before`,
    /// and audit events from before `audit_before` (0: keep them all).
    async fn purge(&self, rows_before: i64, audit_before: i64, now: i64) -> anyhow::Result<Purged>;

    /// An event that records no other write (a wrong code, a refused
    /// start). The event of a change is written by the method that
    /// makes the change, in its transaction, so a crash never keeps one
    /// without the other (the event is what webhooks are made from). The
    /// exception is a refused login (and `login.locked` with it): its
    /// throttle count is reserved before Argon2 runs, when whether it fails
    /// is not known, so a crash during the check keeps the count and loses
    /// the event.
    async fn insert_audit_event(&self, event: &AuditEventRecord) -> anyhow::Result<()>;
    /// Newest first; optionally one identity's, optionally only since a time.
    async fn audit_events(
        &self,
        identity_id: Option<&str>,
        since: Option<i64>,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditEventRecord>>;
}
