//! The SQLite backend: one file, WAL journal, foreign keys on, run through
//! rusqlite. Every write goes to the one writer thread (`writer`), which
//! commits whatever is waiting in one transaction; reads run on the
//! calling thread on a pooled connection (`conn::Readers`). The statements
//! are the ones PostgreSQL runs (`store::sql`).

mod conn;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use rusqlite::Connection;
use sqlx::migrate::Migrator;

use self::conn::{FromRow, Readers, WriteContext, all, conflict_or, execute, optional};
use self::writer::Writer;
use super::places::{Sizes, Table};
use super::sql::*;
use super::*;
use crate::config::DatabaseSettings;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const CLAIM_OUTBOX_SQL: &str = "update outbox_message set lease_until = $2, attempts = attempts + 1 \
     where outbox_message_id in (select outbox_message_id from outbox_message \
       where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1) \
       order by next_attempt_at limit $3) \
     returning *";

/// How many flows a login key started since `$2`, and when the oldest of
/// them was (`$2` when none), for a refused start's retry time (SQLite's
/// start, see `start`; `OLDEST_START` alone elsewhere).
const STARTS_SINCE_SQL: &str = "select count(*), coalesce(min(created_at), $2) from recovery_flow \
     where address_key = $1 and created_at > $2";
/// A start's flow row, once its limit was checked (SQLite's `INSERT_FLOW`).
const INSERT_FLOW_ROW_SQL: &str = "insert into recovery_flow (recovery_flow_id, identity_id, address_key, channel, \
       cookie_hash, code_hash, state, code_attempts, locale, expires_at, created_at, decoy) \
     values ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11)";

/// Every write runs on the one writer, so a plain read inside its
/// transaction cannot be overtaken by another write.
const IDENTITY_EPOCH_SQL: &str = "select credential_epoch from identity where identity_id = $1";

const CLAIM_WEBHOOKS_SQL: &str = "update webhook_delivery set lease_until = $3, attempts = attempts + 1 \
     where webhook_delivery_id in (select webhook_delivery_id from webhook_delivery \
       where endpoint = $1 and status = 'pending' and next_attempt_at <= $2 \
       and (lease_until is null or lease_until <= $2) order by next_attempt_at limit $4) \
       and not exists (select 1 from webhook_endpoint where endpoint = $1) \
     returning *";
/// A login's identity (`sql::identity_by_login!`); for a login without an
/// account, the first row at or after its place folded into the table's
/// largest rowid (`store::places`, `$4` for an address, `$2` for a username).
/// A place past the last row (rows deleted since the sizes were read)
/// wraps around to the first.
const IDENTITY_BY_ADDRESS: &str = identity_by_login!(
    address_at_login!(),
    "(select identity_id from address where rowid >= $4 limit 1), \
     (select identity_id from address order by rowid limit 1)"
);
const IDENTITY_BY_USERNAME: &str = identity_by_login!(
    username_at_login!(),
    "(select identity_id from identity where rowid >= $2 limit 1), \
     (select identity_id from identity order by rowid limit 1)"
);
const LAST_ROWIDS: &str =
    "select coalesce((select max(rowid) from address), 0), coalesce((select max(rowid) from identity), 0)";

/// The largest rowids of `address` and `identity` (`store::places`).
fn last_rowids(c: &Connection) -> rusqlite::Result<(i64, i64)> {
    c.query_row(LAST_ROWIDS, [], |r| Ok((r.get(0)?, r.get(1)?)))
}
const AUDIT_EVENTS_SQL: &str = "select * from audit_event \
     where ($1 is null or identity_id = $1) and created_at >= $2 \
     order by created_at desc, audit_event_id limit $3";

pub struct SqliteStore {
    path: PathBuf,
    busy_timeout: Duration,
    writer: Writer,
    readers: Readers,
    /// The largest rowids a login without an account folds its place into.
    sizes: Sizes,
}

impl SqliteStore {
    pub async fn connect(database_url: &str, settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let path = conn::path_of(database_url)?;
        let busy_timeout = settings.statement_timeout.max(Duration::from_secs(1));
        let (writer, checkpoints) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                anyhow::Ok((
                    conn::open(&path, busy_timeout, true)?,
                    conn::open(&path, busy_timeout, false)?,
                ))
            })
            .await??
        };
        Ok(Self {
            writer: Writer::spawn(writer, checkpoints)?,
            readers: Readers::new(path.clone(), busy_timeout),
            sizes: Sizes::default(),
            path,
            busy_timeout,
        })
    }

    /// A connection of its own, off the runtime, for work that must not
    /// run inside the writer's transaction (migrations, checkpoints).
    async fn alone<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (path, busy_timeout) = (self.path.clone(), self.busy_timeout);
        tokio::task::spawn_blocking(move || work(&mut conn::open(&path, busy_timeout, true)?)).await?
    }

    /// Runs one purge statement batch after batch until a batch comes back
    /// short; each batch is a write of its own, so requests run between them.
    async fn drain(&self, sql: &'static str, before: i64, now: i64) -> anyhow::Result<u64> {
        let mut total = 0;
        loop {
            let deleted = self
                .writer
                .write(move |c| execute(c, sql, &[&before, &PURGE_BATCH, &now]).or_fail("purging old rows"))
                .await?;
            total += deleted as u64;
            if (deleted as i64) < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}

/// `secure_delete` zeroed the deleted row's page; a checkpoint writes that
/// page back into the main file and truncates the WAL that held the old one.
/// Readers of a running `serve` can keep it busy for a moment: retried.
fn scrub_settings(conn: &mut Connection) -> anyhow::Result<()> {
    for _ in 0..50 {
        let (busy, _, _): (i64, i64, i64) = conn
            .query_row("pragma wal_checkpoint(truncate)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .context("checkpointing the WAL")?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!(
        "the WAL could not be checkpointed (readers are busy); the deleted row may remain in the -wal file until \
         the next checkpoint: stop `latchkey serve` and run `sqlite3 latchkey.db 'pragma wal_checkpoint(truncate)'`"
    )
}

/// Ends every way into an account: its sessions, then their refresh tokens
/// (the order every writer takes them in), then its recovery flows. A reset
/// and "this wasn't me" both do this.
fn end_access(c: &Connection, identity_id: &str, now: i64) -> StoreResult<()> {
    execute(c, REVOKE_IDENTITY_SESSIONS, &[&identity_id, &now]).or_fail("revoking sessions")?;
    execute(c, REVOKE_IDENTITY_REFRESH, &[&identity_id, &now]).or_fail("revoking refresh tokens")?;
    execute(c, CLOSE_IDENTITY_FLOWS, &[&identity_id]).or_fail("closing flows")?;
    Ok(())
}

fn insert_outbox(c: &Connection, m: &OutboxMessageRecord) -> StoreResult<()> {
    execute(
        c,
        INSERT_OUTBOX,
        &[
            &m.outbox_message_id,
            &m.channel,
            &m.sealed_payload,
            &m.status,
            &m.attempts,
            &m.next_attempt_at,
            &m.lease_until,
            &m.last_error,
            &m.created_at,
            &m.sent_at,
            &m.identity_id,
        ],
    )
    .or_fail("inserting outbox message")?;
    Ok(())
}

fn insert_audit(c: &Connection, e: &AuditEventRecord) -> StoreResult<()> {
    execute(
        c,
        INSERT_AUDIT,
        &[
            &e.audit_event_id,
            &e.identity_id,
            &e.kind,
            &e.ip_address,
            &e.user_agent,
            &e.detail,
            &e.created_at,
        ],
    )
    .or_fail("inserting audit event")?;
    Ok(())
}

/// One password evaluation reserved for `key` (`Store::reserve_login_attempt`).
fn reserve_login_attempt(
    c: &Connection,
    key: &str,
    now: i64,
    reset_before: i64,
    policy: LoginLockPolicy,
) -> StoreResult<LoginReservation> {
    // On the one writer nothing can clear the lock between the refused
    // upsert and its read.
    let reserved: Option<i64> = optional(
        c,
        RESERVE_LOGIN_ATTEMPT,
        &[
            &key,
            &now,
            &reset_before,
            &policy.free,
            &policy.doublings(),
            &policy.max_lock_ms,
            &policy.first_lock_until(now),
        ],
        |row| row.get(0),
    )
    .or_fail("reserving a login attempt")?;
    if let Some(failures) = reserved {
        return Ok(LoginReservation::Reserved { failures });
    }
    let until: Option<i64> = optional(c, LOGIN_LOCK, &[&key], |row| row.get(0)).or_fail("reading a login lock")?;
    Ok(LoginReservation::Locked {
        until: until.unwrap_or(now + 1000),
    })
}

/// Forgets the failed-login streaks of `keys`.
fn clear_throttle(c: &Connection, keys: &[String]) -> StoreResult<()> {
    keys.iter()
        .try_for_each(|key| execute(c, CLEAR_LOGIN_THROTTLE, &[key]).map(drop))
        .or_fail("clearing login throttle")
}

fn insert_session(c: &Connection, s: &SessionRecord) -> StoreResult<()> {
    execute(
        c,
        INSERT_SESSION,
        &[
            &s.session_id,
            &s.identity_id,
            &s.token_hash,
            &s.authenticated_at,
            &s.expires_at,
            &s.revoked_at,
            &s.ip_address,
            &s.user_agent,
            &s.created_at,
        ],
    )
    .or_fail("inserting session")?;
    Ok(())
}

fn insert_refresh(c: &Connection, t: &RefreshTokenRecord) -> StoreResult<()> {
    execute(
        c,
        INSERT_REFRESH,
        &[
            &t.refresh_token_id,
            &t.family_id,
            &t.session_id,
            &t.identity_id,
            &t.token_hash,
            &t.expires_at,
            &t.spent_at,
            &t.revoked_at,
            &t.created_at,
        ],
    )
    .or_fail("inserting refresh token")?;
    Ok(())
}

fn insert_identity(c: &Connection, i: &IdentityRecord, addresses: &[AddressRecord]) -> StoreResult<()> {
    execute(
        c,
        INSERT_IDENTITY,
        &[
            &i.identity_id,
            &i.username,
            &i.password_hash,
            &i.roles,
            &i.created_at,
            &i.updated_at,
        ],
    )
    .map_err(conflict_or("username", "inserting identity"))?;
    addresses.iter().try_for_each(|a| insert_address(c, a))
}

/// One imported identity in a savepoint of its own: skipped (and named)
/// when one of its keys is taken, rolled back alone if a write fails.
fn import_one(c: &Connection, item: &ImportedIdentityRecord) -> StoreResult<ImportOutcome> {
    let i = &item.identity;
    let (email, phone) = (item.address(AddressKind::Email), item.address(AddressKind::Phone));
    let taken: Option<String> = optional(
        c,
        IMPORT_CONFLICT,
        &[&i.identity_id, &email, &i.username, &phone],
        |r| r.get(0),
    )
    .or_fail("checking an imported identity")?
    .flatten();
    if let Some(field) = taken {
        return Ok(Some(conflict_field(&field)));
    }
    execute(c, "savepoint import_item", &[]).or_fail("beginning an imported identity")?;
    let written = insert_identity(c, i, &item.addresses).and_then(|()| insert_audit(c, &item.audit));
    let end = if written.is_ok() {
        "release import_item"
    } else {
        "rollback to import_item"
    };
    execute(c, end, &[]).or_fail("ending an imported identity")?;
    execute(c, "release import_item", &[]).ok();
    match written {
        Ok(()) => Ok(None),
        Err(StoreError::Conflict(field)) => Ok(Some(field)),
        Err(e) => Err(e),
    }
}

fn insert_address(c: &Connection, a: &AddressRecord) -> StoreResult<()> {
    execute(
        c,
        INSERT_ADDRESS,
        &[
            &a.address_id,
            &a.identity_id,
            &a.kind,
            &a.value,
            &a.verified,
            &a.created_at,
        ],
    )
    .map_err(conflict_or("address", "inserting address"))?;
    Ok(())
}

/// Writes a report link's digest; `false` when it was spent before.
fn spend_link(c: &Connection, link: &SpentLink, now: i64) -> StoreResult<bool> {
    let written = execute(
        c,
        SPEND_LINK,
        &[&link.digest, &link.identity_id, &link.kind, &link.expires_at, &now],
    )
    .or_fail("spending report link")?;
    Ok(written == 1)
}

/// A start's statements: the flow (only while the login key is under its
/// start limit), then the older flows it supersedes, its message and its
/// audit event. A refused start writes nothing. Known and unknown logins
/// run the same statements.
///
/// PostgreSQL's start is one statement (`INSERT_FLOW` and the superseding
/// update in one `with`). SQLite copies the rows of an `insert … select`
/// that reads its own table into a temporary B-tree first, and so for an
/// update that changes the index it searches (a superseded flow leaves
/// `recovery_flow_live_idx`); here the count, the insert and each
/// superseding are plain statements instead, and the count is skipped when
/// the limit is off.
/// They cannot interleave with another write: every write runs on the one
/// writer, in its `begin immediate` transaction.
fn start(c: &Connection, s: &NewRecoveryFlow) -> StoreResult<StartOutcome> {
    let f = &s.flow;
    if s.max_starts > 0 {
        let (started, oldest_start): (i64, i64) =
            optional(c, STARTS_SINCE_SQL, &[&f.address_key, &s.window_start], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .or_fail("counting recent starts")?
            .unwrap_or((0, s.window_start));
        if started >= s.start_limit() {
            return Ok(StartOutcome::RateLimited { oldest_start });
        }
    }
    execute(
        c,
        INSERT_FLOW_ROW_SQL,
        &[
            &f.recovery_flow_id,
            &f.identity_id,
            &f.address_key,
            &f.channel,
            &f.cookie_hash,
            &f.code_hash,
            &f.state,
            &f.locale,
            &f.expires_at,
            &f.created_at,
            &f.decoy,
        ],
    )
    .or_fail("inserting recovery flow")?;
    let live: Vec<String> = all(
        c,
        LIVE_FLOWS,
        &[&f.address_key, &f.recovery_flow_id, &f.created_at],
        |row| row.get(0),
    )
    .or_fail("finding older flows")?;
    for id in &live {
        execute(c, KILL_FLOW, &[id]).or_fail("superseding older flows")?;
    }
    if let Some(message) = &s.message {
        insert_outbox(c, message)?;
    }
    insert_audit(c, &s.audit)?;
    Ok(StartOutcome::Created)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> anyhow::Result<()> {
        self.alone(|c| conn::migrate(c, &MIGRATOR))
            .await
            .context("applying migrations")?;
        // Before the first lookup, so none folds over a size of 0.
        self.read_lookup_sizes().await
    }

    async fn read_lookup_sizes(&self) -> anyhow::Result<()> {
        let (address, identity) = self
            .readers
            .read("reading the sizes of the login tables", last_rowids)?;
        self.sizes.set(address, identity);
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        self.readers
            .read("database ping", |c| c.query_row("select 1", [], |_| Ok(())))
    }

    async fn stored_setting(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.readers
            .read("reading setting", |c| optional(c, SETTING, &[&key], |row| row.get(0)))
    }

    async fn link_spent(&self, digest: &str) -> anyhow::Result<bool> {
        let count: Option<i64> = self.readers.read("reading a spent link", |c| {
            optional(c, LINK_SPENT, &[&digest], |row| row.get(0))
        })?;
        Ok(count.unwrap_or(0) > 0)
    }

    async fn delete_setting(&self, key: &str) -> anyhow::Result<bool> {
        let key = key.to_owned();
        let deleted = self
            .writer
            .write(move |c| execute(c, DELETE_SETTING, &[&key]).or_fail("deleting setting"))
            .await?;
        // Leave no copy of the deleted row in the database's files.
        self.alone(scrub_settings).await?;
        Ok(deleted > 0)
    }

    async fn setting_or_insert(&self, key: &str, value: &str, now: i64) -> anyhow::Result<String> {
        let (key, value) = (key.to_owned(), value.to_owned());
        Ok(self
            .writer
            .write(move |c| {
                execute(c, INSERT_SETTING, &[&key, &value, &now]).or_fail("storing setting")?;
                optional(c, SETTING, &[&key], |row| row.get(0))
                    .or_fail("reading setting")?
                    .context("the setting vanished")
                    .map_err(StoreError::from)
            })
            .await?)
    }

    async fn signing_keys(&self) -> anyhow::Result<Vec<SigningKeyRecord>> {
        self.readers.read("reading signing keys", |c| {
            all(c, SIGNING_KEYS, &[], SigningKeyRecord::from_row)
        })
    }

    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> anyhow::Result<()> {
        let k = k.clone();
        self.writer
            .write(move |c| {
                execute(
                    c,
                    INSERT_SIGNING_KEY,
                    &[
                        &k.signing_key_id,
                        &k.sealed_private_key,
                        &k.public_key,
                        &k.created_at,
                        &k.retired_at,
                        &k.published_until,
                    ],
                )
                .or_fail("storing signing key")
            })
            .await?;
        Ok(())
    }

    async fn retire_signing_keys_except(&self, keep: &str, now: i64, published_until: i64) -> anyhow::Result<()> {
        let keep = keep.to_owned();
        self.writer
            .write(move |c| {
                execute(c, RETIRE_SIGNING_KEYS, &[&keep, &now, &published_until]).or_fail("retiring signing keys")
            })
            .await?;
        Ok(())
    }

    async fn retire_signing_key_now(&self, id: &str, now: i64) -> anyhow::Result<()> {
        let id = id.to_owned();
        self.writer
            .write(move |c| execute(c, RETIRE_SIGNING_KEY_NOW, &[&id, &now]).or_fail("retiring a signing key"))
            .await?;
        Ok(())
    }

    async fn create_identity(
        &self,
        identity: &IdentityRecord,
        addresses: &[AddressRecord],
        audit: &AuditEventRecord,
    ) -> StoreResult<()> {
        let (i, addresses, audit) = (identity.clone(), addresses.to_vec(), audit.clone());
        self.writer
            .write(move |c| insert_identity(c, &i, &addresses).and_then(|()| insert_audit(c, &audit)))
            .await
    }

    async fn import_identities(
        &self,
        items: &[ImportedIdentityRecord],
        commit: bool,
    ) -> anyhow::Result<Vec<ImportOutcome>> {
        let items = items.to_vec();
        Ok(self
            .writer
            .write(move |c| {
                execute(c, "savepoint import_batch", &[]).or_fail("beginning an import batch")?;
                let outcomes = items
                    .iter()
                    .map(|item| import_one(c, item))
                    .collect::<StoreResult<Vec<_>>>();
                let wrote = outcomes.as_ref().is_ok_and(|o| o.iter().any(Option::is_none));
                if commit && wrote {
                    execute(c, BUMP_SETTING, &[&HASHES_IMPORTED_SETTING, &crate::time::now_ms()])
                        .or_fail("marking the import")?;
                }
                let end = if commit && outcomes.is_ok() {
                    "release import_batch"
                } else {
                    "rollback to import_batch"
                };
                execute(c, end, &[]).or_fail("ending an import batch")?;
                execute(c, "release import_batch", &[]).ok();
                outcomes
            })
            .await?)
    }

    async fn password_hash_census(&self, current_like: &str) -> anyhow::Result<HashCensusRecord> {
        self.readers.read("reading password hashes", |c| {
            let params: [&dyn rusqlite::ToSql; 2] = [&current_like, &PLACEHOLDER_IDENTITY_ID];
            Ok(HashCensusRecord {
                current: optional(c, COUNT_CURRENT_HASHES, &params, |r| r.get(0))?.unwrap_or(0),
                others: all(c, OTHER_HASHES, &params, |r| r.get(0))?,
            })
        })
    }

    async fn identity(&self, identity_id: &str) -> anyhow::Result<Option<IdentityRecord>> {
        self.readers.read("reading identity", |c| {
            optional(
                c,
                IDENTITY,
                &[&identity_id, &PLACEHOLDER_IDENTITY_ID],
                IdentityRecord::from_row,
            )
        })
    }

    async fn identity_for_login(
        &self,
        login: LoginLookup<'_>,
        place: i64,
    ) -> anyhow::Result<Option<(IdentityRecord, Vec<AddressRecord>)>> {
        let rows = self.readers.read("reading identity for login", |c| {
            if self.sizes.claim_read() {
                // The first lookup, then one every ten seconds, known or unknown alike.
                match last_rowids(c) {
                    Ok((address, identity)) => self.sizes.set(address, identity),
                    Err(error) => {
                        self.sizes.retry();
                        tracing::warn!(%error, "reading the sizes of the login tables");
                    }
                }
            }
            match login {
                LoginLookup::Address(kind, value) => all(
                    c,
                    IDENTITY_BY_ADDRESS,
                    &[
                        &kind.as_str(),
                        &value,
                        &PLACEHOLDER_IDENTITY_ID,
                        &self.sizes.fold(Table::Address, place),
                    ],
                    IdentityAddressRow::from_row,
                ),
                LoginLookup::Username(username) => all(
                    c,
                    IDENTITY_BY_USERNAME,
                    &[
                        &username,
                        &self.sizes.fold(Table::Identity, place),
                        &PLACEHOLDER_IDENTITY_ID,
                    ],
                    IdentityAddressRow::from_row,
                ),
            }
        })?;
        let found = IdentityAddressRow::collect(rows).context("the placeholder identity is missing")?;
        Ok(IdentityAddressRow::named_by(found, login))
    }

    async fn identity_with_addresses(
        &self,
        identity_id: &str,
    ) -> anyhow::Result<Option<(IdentityRecord, Vec<AddressRecord>)>> {
        let rows = self.readers.read("reading identity", |c| {
            all(
                c,
                IDENTITY_WITH_ADDRESSES,
                &[&identity_id, &PLACEHOLDER_IDENTITY_ID],
                IdentityAddressRow::from_row,
            )
        })?;
        Ok(IdentityAddressRow::collect(rows))
    }

    async fn addresses(&self, identity_id: &str) -> anyhow::Result<Vec<AddressRecord>> {
        self.readers.read("reading addresses", |c| {
            all(c, ADDRESSES, &[&identity_id], AddressRecord::from_row)
        })
    }

    async fn list_identities(&self, limit: i64, offset: i64) -> anyhow::Result<Vec<IdentityRecord>> {
        self.readers.read("listing identities", |c| {
            all(
                c,
                LIST_IDENTITIES,
                &[&limit, &offset, &PLACEHOLDER_IDENTITY_ID],
                IdentityRecord::from_row,
            )
        })
    }

    async fn delete_identity(&self, identity_id: &str, audit: &AuditEventRecord) -> anyhow::Result<bool> {
        let (id, audit) = (identity_id.to_owned(), audit.clone());
        Ok(self
            .writer
            .write(move |c| {
                let deleted =
                    execute(c, DELETE_IDENTITY, &[&id, &PLACEHOLDER_IDENTITY_ID]).or_fail("deleting identity")?;
                // Flows have no foreign key: a start that raced an earlier delete left one.
                execute(c, CLOSE_IDENTITY_FLOWS, &[&id]).or_fail("closing the identity's recovery flows")?;
                execute(c, DETACH_IDENTITY_FLOWS, &[&id]).or_fail("detaching the identity's recovery flows")?;
                if deleted == 0 {
                    return Ok(false);
                }
                insert_audit(c, &audit)?;
                Ok(true)
            })
            .await?)
    }

    async fn update_password_hash(
        &self,
        identity_id: &str,
        expected: &str,
        new_hash: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let (id, expected, new_hash) = (identity_id.to_owned(), expected.to_owned(), new_hash.to_owned());
        self.writer
            .write(move |c| {
                execute(c, UPDATE_PASSWORD_HASH, &[&id, &expected, &new_hash, &now]).or_fail("updating password hash")
            })
            .await?;
        Ok(())
    }

    async fn update_identity(
        &self,
        identity_id: &str,
        changes: &IdentityChanges,
        now: i64,
        audit: &[AuditEventRecord],
    ) -> StoreResult<bool> {
        let (id, changes, audit) = (identity_id.to_owned(), changes.clone(), audit.to_vec());
        self.writer
            .write(move |c| {
                let updated = execute(
                    c,
                    UPDATE_IDENTITY,
                    &[
                        &id,
                        &changes.username.is_some(),
                        &changes.username.clone().flatten(),
                        &changes.roles,
                        &changes.password_hash,
                        &now,
                        &PLACEHOLDER_IDENTITY_ID,
                    ],
                )
                .map_err(conflict_or("username", "updating identity"))?;
                if updated == 0 {
                    return Ok(false);
                }
                if changes.password_hash.is_some() {
                    // In the same transaction, so no session of the old password survives.
                    execute(c, REVOKE_IDENTITY_SESSIONS, &[&id, &now]).or_fail("revoking sessions")?;
                }
                audit.iter().try_for_each(|event| insert_audit(c, event))?;
                Ok(true)
            })
            .await
    }

    async fn insert_address(&self, address: &AddressRecord, audit: &AuditEventRecord) -> StoreResult<()> {
        let (address, audit) = (address.clone(), audit.clone());
        self.writer
            .write(move |c| insert_address(c, &address).and_then(|()| insert_audit(c, &audit)))
            .await
    }

    async fn set_address_verified(
        &self,
        identity_id: &str,
        kind: AddressKind,
        value: &str,
        verified: bool,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool> {
        let (id, value, audit) = (identity_id.to_owned(), value.to_owned(), audit.clone());
        Ok(self
            .writer
            .write(move |c| {
                let changed = execute(c, SET_ADDRESS_VERIFIED, &[&id, &kind.as_str(), &value, &verified])
                    .or_fail("marking address verification")?;
                if changed == 0 {
                    return Ok(false);
                }
                insert_audit(c, &audit)?;
                Ok(true)
            })
            .await?)
    }

    async fn create_recovery_flow(&self, new: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
        let new = new.clone();
        Ok(self.writer.write(move |c| start(c, &new)).await?)
    }

    async fn code_attempts(&self, of: AttemptsOf<'_>, since: i64) -> anyhow::Result<i64> {
        let (sql, whose) = of.statement();
        self.readers.read("counting recent code attempts", |c| {
            Ok(optional(c, sql, &[&whose, &since], |row| row.get(0))?.unwrap_or(0))
        })
    }

    async fn recovery_flow_by_cookie(&self, cookie_hash: &str) -> anyhow::Result<Option<RecoveryFlowRecord>> {
        self.readers.read("reading recovery flow", |c| {
            optional(c, FLOW_BY_COOKIE, &[&cookie_hash], RecoveryFlowRecord::from_row)
        })
    }

    async fn recovery_flow(&self, flow_id: &str) -> anyhow::Result<Option<RecoveryFlowRecord>> {
        self.readers.read("reading recovery flow", |c| {
            optional(c, FLOW_BY_ID, &[&flow_id], RecoveryFlowRecord::from_row)
        })
    }

    async fn reserve_code_attempt(
        &self,
        flow_id: &str,
        max_attempts: u32,
        now: i64,
    ) -> anyhow::Result<Option<RecoveryFlowRecord>> {
        let (id, limit) = (flow_id.to_owned(), attempt_limit(max_attempts));
        Ok(self
            .writer
            .write(move |c| {
                optional(
                    c,
                    RESERVE_CODE_ATTEMPT,
                    &[&id, &limit, &now],
                    RecoveryFlowRecord::from_row,
                )
                .or_fail("reserving a code attempt")
            })
            .await?)
    }

    async fn kill_flow(&self, flow_id: &str, audit: &AuditEventRecord) -> anyhow::Result<()> {
        let (id, audit) = (flow_id.to_owned(), audit.clone());
        self.writer
            .write(move |c| {
                if execute(c, KILL_FLOW, &[&id]).or_fail("killing flow")? > 0 {
                    insert_audit(c, &audit)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn mark_flow_verified(
        &self,
        flow_id: &str,
        old_cookie_hash: &str,
        new_cookie_hash: &str,
        now: i64,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool> {
        let (id, old, new, audit) = (
            flow_id.to_owned(),
            old_cookie_hash.to_owned(),
            new_cookie_hash.to_owned(),
            audit.clone(),
        );
        Ok(self
            .writer
            .write(move |c| {
                let verified =
                    execute(c, MARK_FLOW_VERIFIED, &[&id, &old, &new, &now]).or_fail("marking flow verified")? == 1;
                if verified {
                    insert_audit(c, &audit)?;
                }
                Ok(verified)
            })
            .await?)
    }

    async fn continue_flow(
        &self,
        flow_id: &str,
        cookie_hash: &str,
        new_cookie_hash: &str,
        decoy_id: &str,
        now: i64,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool> {
        let (id, old, new, decoy, audit) = (
            flow_id.to_owned(),
            cookie_hash.to_owned(),
            new_cookie_hash.to_owned(),
            decoy_id.to_owned(),
            audit.clone(),
        );
        Ok(self
            .writer
            .write(move |c| {
                if execute(c, MARK_FLOW_VERIFIED, &[&id, &old, &new, &now]).or_fail("marking flow verified")? != 1 {
                    return Ok(false);
                }
                execute(c, DECOY_FOR_CONTINUED_FLOW, &[&id, &decoy, &old]).or_fail("leaving a decoy")?;
                execute(c, FLOW_OFF_ITS_LOGIN, &[&id]).or_fail("taking the flow off its login")?;
                insert_audit(c, &audit)?;
                Ok(true)
            })
            .await?)
    }

    async fn cancel_recovery(&self, cancel: &CancelledRecovery) -> anyhow::Result<bool> {
        let r = cancel.clone();
        Ok(self
            .writer
            .write(move |c| {
                if !spend_link(c, &r.link, r.now)? {
                    return Ok(false);
                }
                execute(c, CLOSE_IDENTITY_FLOWS, &[&r.link.identity_id]).or_fail("closing flows")?;
                execute(c, PAUSE_RECOVERY, &[&r.link.identity_id, &r.paused_until]).or_fail("pausing recovery")?;
                insert_audit(c, &r.audit)?;
                Ok(true)
            })
            .await?)
    }

    async fn secure_identity(&self, secure: &SecuredIdentity) -> anyhow::Result<bool> {
        let r = secure.clone();
        Ok(self
            .writer
            .write(move |c| {
                if !spend_link(c, &r.link, r.now)? {
                    return Ok(false);
                }
                let id = &r.link.identity_id;
                execute(c, FREEZE_IDENTITY, &[id, &r.now, &PLACEHOLDER_IDENTITY_ID]).or_fail("freezing identity")?;
                end_access(c, id, r.now)?;
                r.notices.iter().try_for_each(|notice| insert_outbox(c, notice))?;
                r.audit.iter().try_for_each(|event| insert_audit(c, event))?;
                Ok(true)
            })
            .await?)
    }

    async fn unfreeze_identity(&self, identity_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<bool> {
        let (id, audit) = (identity_id.to_owned(), audit.clone());
        Ok(self
            .writer
            .write(move |c| {
                if execute(c, UNFREEZE_IDENTITY, &[&id, &now]).or_fail("unfreezing identity")? != 1 {
                    return Ok(false);
                }
                insert_audit(c, &audit)?;
                Ok(true)
            })
            .await?)
    }

    async fn complete_recovery(&self, reset: &CompletedRecovery) -> anyhow::Result<bool> {
        let r = reset.clone();
        Ok(self
            .writer
            .write(move |c| {
                let spent = execute(c, SPEND_FLOW, &[&r.flow_id, &r.identity_id, &r.now, &r.from_state])
                    .or_fail("spending recovery flow")?;
                if spent != 1 {
                    return Ok(false);
                }
                execute(c, RESET_PASSWORD, &[&r.identity_id, &r.password_hash, &r.now])
                    .or_fail("storing new password hash")?;
                end_access(c, &r.identity_id, r.now)?;
                insert_session(c, &r.session)?;
                r.notices.iter().try_for_each(|notice| insert_outbox(c, notice))?;
                r.audit.iter().try_for_each(|event| insert_audit(c, event))?;
                clear_throttle(c, &r.clear_throttle)?;
                Ok(true)
            })
            .await?)
    }

    async fn create_session(
        &self,
        session: &SessionRecord,
        audit: &AuditEventRecord,
        credential_epoch: i64,
        clear_throttle_keys: &[String],
    ) -> anyhow::Result<bool> {
        let (session, audit, keys) = (session.clone(), audit.clone(), clear_throttle_keys.to_vec());
        Ok(self
            .writer
            .write(move |c| {
                let current: Option<i64> = optional(c, IDENTITY_EPOCH_SQL, &[&session.identity_id], |row| row.get(0))
                    .or_fail("reading the credential epoch")?;
                if current != Some(credential_epoch) {
                    return Ok(false);
                }
                insert_session(c, &session)?;
                insert_audit(c, &audit)?;
                clear_throttle(c, &keys)?;
                Ok(true)
            })
            .await?)
    }

    async fn session(&self, session_id: &str) -> anyhow::Result<Option<SessionRecord>> {
        self.readers.read("reading session", |c| {
            optional(c, SESSION, &[&session_id], SessionRecord::from_row)
        })
    }

    async fn session_with_identity(&self, lookup: SessionLookup<'_>) -> anyhow::Result<Option<SessionWithIdentity>> {
        let (sql, key) = match lookup {
            SessionLookup::TokenHash(hash) => (SESSION_WITH_IDENTITY_BY_TOKEN, hash),
            SessionLookup::Id(id) => (SESSION_WITH_IDENTITY_BY_ID, id),
        };
        let rows = self.readers.read("reading a session with its identity", |c| {
            all(
                c,
                sql,
                &[&key, &PLACEHOLDER_IDENTITY_ID],
                SessionIdentityRow::from_listed_row,
            )
        })?;
        Ok(SessionIdentityRow::collect(rows))
    }

    async fn revoke_session(&self, session_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<bool> {
        let (id, audit) = (session_id.to_owned(), audit.clone());
        Ok(self
            .writer
            .write(move |c| {
                let revoked = execute(c, REVOKE_SESSION, &[&id, &now]).or_fail("revoking session")? > 0;
                if revoked {
                    insert_audit(c, &audit)?;
                }
                Ok(revoked)
            })
            .await?)
    }

    async fn revoke_identity_sessions(
        &self,
        identity_id: &str,
        now: i64,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<u64> {
        let (id, audit) = (identity_id.to_owned(), audit.clone());
        Ok(self
            .writer
            .write(move |c| {
                let revoked =
                    execute(c, REVOKE_IDENTITY_SESSIONS, &[&id, &now]).or_fail("revoking identity sessions")?;
                insert_audit(c, &audit)?;
                Ok(revoked as u64)
            })
            .await?)
    }

    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        reset_before: i64,
        policy: LoginLockPolicy,
    ) -> anyhow::Result<LoginReservation> {
        let key = key.to_owned();
        Ok(self
            .writer
            .write(move |c| reserve_login_attempt(c, &key, now, reset_before, policy))
            .await?)
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> anyhow::Result<()> {
        let token = token.clone();
        Ok(self.writer.write(move |c| insert_refresh(c, &token)).await?)
    }

    async fn refresh_token_by_hash(&self, token_hash: &str) -> anyhow::Result<Option<RefreshTokenRecord>> {
        self.readers.read("reading refresh token", |c| {
            optional(c, REFRESH_BY_HASH, &[&token_hash], RefreshTokenRecord::from_row)
        })
    }

    async fn rotate_refresh_token(&self, spent_id: &str, next: &RefreshTokenRecord, now: i64) -> anyhow::Result<bool> {
        let (id, next) = (spent_id.to_owned(), next.clone());
        Ok(self
            .writer
            .write(move |c| {
                if execute(c, SPEND_REFRESH, &[&id, &now]).or_fail("spending refresh token")? != 1 {
                    return Ok(false);
                }
                insert_refresh(c, &next)?;
                Ok(true)
            })
            .await?)
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<()> {
        let (id, audit) = (family_id.to_owned(), audit.clone());
        self.writer
            .write(move |c| {
                // The session first, then the tokens: the order every writer uses.
                let session =
                    execute(c, REVOKE_FAMILY_SESSION, &[&id, &now]).or_fail("revoking the family's session")?;
                let tokens = execute(c, REVOKE_REFRESH_FAMILY, &[&id, &now]).or_fail("revoking refresh family")?;
                if session + tokens > 0 {
                    insert_audit(c, &audit)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn claim_outbox(&self, now: i64, lease_until: i64, limit: i64) -> anyhow::Result<Vec<OutboxMessageRecord>> {
        Ok(self
            .writer
            .write(move |c| {
                all(
                    c,
                    CLAIM_OUTBOX_SQL,
                    &[&now, &lease_until, &limit],
                    OutboxMessageRecord::from_row,
                )
                .or_fail("claiming outbox messages")
            })
            .await?)
    }

    async fn undispatched_events(&self, limit: i64) -> anyhow::Result<Vec<AuditEventRecord>> {
        self.readers.read("reading undispatched events", |c| {
            all(c, UNDISPATCHED_EVENTS, &[&limit], AuditEventRecord::from_row)
        })
    }

    async fn dispatch_events(&self, events: &[(String, Vec<WebhookDeliveryRecord>)]) -> anyhow::Result<usize> {
        let events = events.to_vec();
        Ok(self
            .writer
            .write(move |c| {
                let mut dispatched = 0;
                for (id, deliveries) in &events {
                    if execute(c, MARK_DISPATCHED, &[id]).or_fail("marking an event dispatched")? == 0 {
                        continue;
                    }
                    dispatched += 1;
                    for d in deliveries {
                        execute(
                            c,
                            INSERT_WEBHOOK_DELIVERY,
                            &[
                                &d.webhook_delivery_id,
                                &d.endpoint,
                                &d.event_id,
                                &d.event_type,
                                &d.payload,
                                &d.next_attempt_at,
                                &d.give_up_at,
                                &d.created_at,
                            ],
                        )
                        .or_fail("inserting a webhook delivery")?;
                    }
                }
                Ok(dispatched)
            })
            .await?)
    }

    async fn claim_webhook_deliveries(
        &self,
        endpoint: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<WebhookDeliveryRecord>> {
        let endpoint = endpoint.to_owned();
        Ok(self
            .writer
            .write(move |c| {
                all(
                    c,
                    CLAIM_WEBHOOKS_SQL,
                    &[&endpoint, &now, &lease_until, &limit],
                    WebhookDeliveryRecord::from_row,
                )
                .or_fail("claiming webhook deliveries")
            })
            .await?)
    }

    async fn finish_webhook_delivery(
        &self,
        claimed: &WebhookDeliveryRecord,
        attempt: &WebhookAttempt,
        now: i64,
    ) -> anyhow::Result<bool> {
        let (id, attempts, lease) = (
            claimed.webhook_delivery_id.clone(),
            claimed.attempts,
            claimed.lease_until,
        );
        let attempt = attempt.clone();
        Ok(self
            .writer
            .write(move |c| {
                let changed = match &attempt {
                    WebhookAttempt::Sent { status } => {
                        execute(c, FINISH_WEBHOOK_SENT, &[&id, &now, status, &attempts, &lease])
                    }
                    WebhookAttempt::Retry {
                        next_attempt_at,
                        error,
                        status,
                    } => execute(
                        c,
                        FINISH_WEBHOOK_RETRY,
                        &[&id, next_attempt_at, error, status, &attempts, &lease],
                    ),
                    WebhookAttempt::Failed { error, status } => {
                        execute(c, FINISH_WEBHOOK_FAILED, &[&id, error, status, &attempts, &lease])
                    }
                }
                .or_fail("recording a webhook delivery")?;
                Ok(changed > 0)
            })
            .await?)
    }

    async fn expire_webhook_deliveries(&self, now: i64, stale_before: i64) -> anyhow::Result<Vec<String>> {
        Ok(self
            .writer
            .write(move |c| {
                let expired =
                    all(c, EXPIRE_WEBHOOK_DELIVERIES, &[&now], |r| r.get(0)).or_fail("expiring webhook deliveries")?;
                execute(c, SKIP_STALE_EVENTS, &[&stale_before]).or_fail("skipping stale events")?;
                Ok(expired)
            })
            .await?)
    }

    async fn disable_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpointRecord,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool> {
        let (e, audit) = (endpoint.clone(), audit.clone());
        Ok(self
            .writer
            .write(move |c| {
                let disabled = execute(c, DISABLE_WEBHOOK_ENDPOINT, &[&e.endpoint, &e.disabled_at, &e.reason])
                    .or_fail("disabling a webhook endpoint")?;
                execute(c, DISABLE_WEBHOOK_DELIVERIES, &[&e.endpoint]).or_fail("disabling webhook deliveries")?;
                if disabled == 0 {
                    return Ok(false);
                }
                insert_audit(c, &audit)?;
                Ok(true)
            })
            .await?)
    }

    async fn failed_webhook_deliveries(&self, limit: i64) -> anyhow::Result<Vec<WebhookDeliveryRecord>> {
        self.readers.read("reading failed webhook deliveries", |c| {
            all(c, FAILED_WEBHOOK_DELIVERIES, &[&limit], WebhookDeliveryRecord::from_row)
        })
    }

    async fn replay_webhook_delivery(&self, delivery_id: &str, now: i64, give_up_at: i64) -> anyhow::Result<bool> {
        let id = delivery_id.to_owned();
        Ok(self
            .writer
            .write(move |c| {
                let endpoint: Option<String> =
                    optional(c, REPLAY_WEBHOOK_DELIVERY, &[&id, &now, &give_up_at], |r| r.get(0))
                        .or_fail("replaying a webhook delivery")?;
                let Some(endpoint) = endpoint else {
                    return Ok(false);
                };
                execute(c, ENABLE_WEBHOOK_ENDPOINT, &[&endpoint]).or_fail("enabling a webhook endpoint")?;
                Ok(true)
            })
            .await?)
    }

    async fn replay_all_webhook_deliveries(&self, now: i64, give_up_at: i64) -> anyhow::Result<u64> {
        Ok(self
            .writer
            .write(move |c| {
                let replayed = execute(c, REPLAY_ALL_WEBHOOK_DELIVERIES, &[&now, &give_up_at])
                    .or_fail("replaying webhook deliveries")?;
                execute(c, ENABLE_ALL_WEBHOOK_ENDPOINTS, &[]).or_fail("enabling webhook endpoints")?;
                Ok(replayed as u64)
            })
            .await?)
    }

    async fn webhook_queue_depth(&self, endpoint: &str) -> anyhow::Result<i64> {
        self.readers.read("counting webhook deliveries", |c| {
            Ok(optional(c, WEBHOOK_QUEUE_DEPTH, &[&endpoint], |r| r.get(0))?.unwrap_or(0))
        })
    }

    async fn mark_outbox_sent(&self, sent: &[SentMessage]) -> anyhow::Result<()> {
        let sent = sent.to_vec();
        self.writer
            .write(move |c| {
                for message in &sent {
                    execute(c, MARK_OUTBOX_SENT, &[&message.message_id, &message.sent_at])
                        .or_fail("marking message sent")?;
                    insert_audit(c, &message.event)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn mark_outbox_retry(
        &self,
        message_id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> anyhow::Result<()> {
        let (id, error) = (message_id.to_owned(), error.to_owned());
        self.writer
            .write(move |c| {
                execute(c, MARK_OUTBOX_RETRY, &[&id, &next_attempt_at, &error, &attempts])
                    .or_fail("scheduling message retry")
            })
            .await?;
        Ok(())
    }

    async fn mark_outbox_failed(&self, message_id: &str, attempts: i64, error: &str) -> anyhow::Result<()> {
        let (id, error) = (message_id.to_owned(), error.to_owned());
        self.writer
            .write(move |c| execute(c, MARK_OUTBOX_FAILED, &[&id, &error, &attempts]).or_fail("marking message failed"))
            .await?;
        Ok(())
    }

    async fn outbox_stats(&self) -> anyhow::Result<OutboxStats> {
        self.readers.read("reading outbox stats", |c| {
            c.query_row(OUTBOX_STATS, [], |row| {
                Ok(OutboxStats {
                    pending: row.get(0)?,
                    oldest_pending_created_at: row.get(1)?,
                })
            })
        })
    }

    async fn purge(&self, rows_before: i64, audit_before: i64, now: i64) -> anyhow::Result<Purged> {
        let mut purged = Purged {
            recovery_flows: self.drain(PURGE_FLOWS, rows_before, now).await?,
            login_throttles: self.drain(PURGE_THROTTLES, rows_before, now).await?,
            outbox_messages: self.drain(PURGE_OUTBOX, rows_before, now).await?,
            sessions: self.drain(PURGE_SESSIONS, rows_before, now).await?,
            audit_events: 0,
            webhook_deliveries: self.drain(PURGE_WEBHOOKS, rows_before, now).await?,
        };
        if audit_before > 0 {
            purged.audit_events = self.drain(PURGE_AUDIT, audit_before, now).await?;
            purged.webhook_deliveries += self.drain(PURGE_UNSENT_WEBHOOKS, audit_before, now).await?;
        }
        Ok(purged)
    }

    async fn insert_audit_event(&self, event: &AuditEventRecord) -> anyhow::Result<()> {
        let event = event.clone();
        Ok(self.writer.write(move |c| insert_audit(c, &event)).await?)
    }

    async fn audit_events(
        &self,
        identity_id: Option<&str>,
        since: Option<i64>,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditEventRecord>> {
        self.readers.read("reading audit events", |c| {
            all(
                c,
                AUDIT_EVENTS_SQL,
                &[&identity_id, &since.unwrap_or(0), &limit],
                AuditEventRecord::from_row,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn opcodes(c: &Connection, sql: &str, params: usize) -> anyhow::Result<Vec<String>> {
        let mut statement = c.prepare(&format!("explain {sql}"))?;
        for i in 1..=params {
            statement.raw_bind_parameter(i, 1)?;
        }
        let mut rows = statement.raw_query();
        let mut ops = Vec::new();
        while let Some(row) = rows.next()? {
            ops.push(row.get::<_, String>(1)?);
        }
        Ok(ops)
    }

    /// The session statements name every column they return, in the order
    /// `SessionIdentityRow::from_listed_row` reads them by position, and
    /// the identity's columns are all there.
    #[test]
    fn the_session_statements_list_the_columns_in_field_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut c = conn::open(&dir.path().join("l.db"), Duration::from_secs(5), true)?;
        conn::migrate(&mut c, &MIGRATOR)?;
        let expected: Vec<&str> = SessionIdentityRow::columns().collect();
        for sql in [SESSION_WITH_IDENTITY_BY_TOKEN, SESSION_WITH_IDENTITY_BY_ID] {
            assert!(!sql.contains('*'), "{sql}");
            assert_eq!(c.prepare(sql)?.column_names(), expected, "{sql}");
        }
        let mut identity: Vec<String> = c
            .prepare("select name from pragma_table_info('identity')")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        identity.sort();
        let mut fields = IdentityRecord::FIELDS.to_vec();
        fields.sort();
        assert_eq!(identity, fields);

        // Every column carries a value of its own, so one read into the
        // wrong field shows.
        c.execute_batch(
            "insert into identity (identity_id, username, password_hash, roles, created_at, updated_at, \
               credential_epoch, frozen_at, recovery_paused_until) \
             values ('i1', 'ann', 'phc', '[\"admin\"]', 11, 12, 13, 14, 15); \
             insert into address (address_id, identity_id, kind, value, verified, created_at) \
             values ('a1', 'i1', 'email', 'ann@example.com', 1, 21); \
             insert into session (session_id, identity_id, token_hash, authenticated_at, expires_at, \
               revoked_at, ip_address, user_agent, created_at) \
             values ('s1', 'i1', 'th', 31, 32, 33, '192.0.2.1', 'ua', 34);",
        )?;
        let rows = conn::all(
            &c,
            SESSION_WITH_IDENTITY_BY_ID,
            &[&"s1", &PLACEHOLDER_IDENTITY_ID],
            SessionIdentityRow::from_listed_row,
        )?;
        let (session, identity, addresses) = SessionIdentityRow::collect(rows).context("the session's row")?;
        let read = (
            (
                session.session_id.as_str(),
                session.identity_id.as_str(),
                session.token_hash.as_str(),
            ),
            (
                session.authenticated_at,
                session.expires_at,
                session.revoked_at,
                session.created_at,
            ),
            (session.ip_address.as_deref(), session.user_agent.as_deref()),
        );
        let expected = (
            ("s1", "i1", "th"),
            (31, 32, Some(33), 34),
            (Some("192.0.2.1"), Some("ua")),
        );
        assert_eq!(read, expected);
        let read = (
            (identity.identity_id.as_str(), identity.username.as_deref()),
            (identity.password_hash.as_deref(), identity.roles.as_str()),
            (identity.created_at, identity.updated_at, identity.credential_epoch),
            (identity.frozen_at, identity.recovery_paused_until),
        );
        let expected = (
            ("i1", Some("ann")),
            (Some("phc"), "[\"admin\"]"),
            (11, 12, 13),
            (Some(14), Some(15)),
        );
        assert_eq!(read, expected);
        let address = addresses.first().context("the address")?;
        let read = (
            address.address_id.as_str(),
            address.kind.as_str(),
            address.value.as_str(),
        );
        assert_eq!(read, ("a1", "email", "ann@example.com"));
        assert_eq!((address.verified, address.created_at), (true, 21));
        Ok(())
    }

    /// Migration 0009 rebuilds the flow and outbox tables: a database made
    /// before it keeps its rows, its indexes and its rules, and writing a
    /// flow or a message no longer builds a temporary B-tree.
    #[test]
    fn the_tables_rebuilt_for_their_checks_keep_rows_indexes_and_rules() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut c = conn::open(&dir.path().join("l.db"), Duration::from_secs(5), true)?;
        let before = Migrator {
            migrations: Cow::Owned(MIGRATOR.iter().filter(|m| m.version < 9).cloned().collect()),
            ..Migrator::DEFAULT
        };
        conn::migrate(&mut c, &before)?;
        let indexes = |c: &Connection| -> anyhow::Result<Vec<String>> {
            let mut statement = c.prepare(
                "select name || ':' || coalesce(sql, '') from sqlite_master \
                 where type = 'index' and tbl_name in ('recovery_flow', 'outbox_message') order by name",
            )?;
            let names = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
            Ok(names)
        };
        let old_indexes = indexes(&c)?;
        c.execute_batch(
            "insert into recovery_flow (recovery_flow_id, identity_id, decoy, address_key, channel, cookie_hash, \
               code_hash, state, code_attempts, locale, expires_at, created_at) \
             values ('f1', 'i1', 0, 'k1', 'email', 'c1', 'h1', 'sent', 2, 'vi', 99, 1), \
                    ('f2', 'i2', 1, 'k2', 'sms', 'c2', null, 'dead', 0, 'en', 98, 2); \
             insert into outbox_message (outbox_message_id, identity_id, channel, sealed_payload, status, attempts, \
               next_attempt_at, created_at) values ('m1', 'i1', 'email', x'0102', 'pending', 1, 5, 3);",
        )?;
        // Through the rebuild and the migration after it, before 0011 adds an index.
        let rebuilt = Migrator {
            migrations: Cow::Owned(MIGRATOR.iter().filter(|m| m.version < 11).cloned().collect()),
            ..Migrator::DEFAULT
        };
        conn::migrate(&mut c, &rebuilt)?;

        assert_eq!(indexes(&c)?, old_indexes);
        let flows: Vec<(String, String, i64, String, Option<String>)> = c
            .prepare("select recovery_flow_id, state, code_attempts, locale, code_hash from recovery_flow order by 1")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<_, _>>()?;
        assert_eq!(
            flows,
            vec![
                ("f1".into(), "sent".into(), 2, "vi".into(), Some("h1".into())),
                ("f2".into(), "dead".into(), 0, "en".into(), None)
            ]
        );
        let message: (Vec<u8>, String, i64) = c.query_row(
            "select sealed_payload, status, attempts from outbox_message where outbox_message_id = 'm1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        assert_eq!(message, (vec![1, 2], "pending".into(), 1));
        // The rules hold as before.
        assert!(
            c.execute(
                "update recovery_flow set state = 'lost' where recovery_flow_id = 'f1'",
                []
            )
            .is_err()
        );
        assert!(c.execute("update outbox_message set status = 'gone'", []).is_err());
        assert!(c.execute("update outbox_message set channel = 'fax'", []).is_err());
        assert!(
            c.execute(
                "update recovery_flow set cookie_hash = 'c2' where recovery_flow_id = 'f1'",
                []
            )
            .is_err()
        );
        // And cost no temporary B-tree.
        for (sql, params) in [
            (INSERT_FLOW_ROW_SQL, 11),
            (INSERT_OUTBOX, 11),
            (KILL_FLOW, 1),
            (MARK_OUTBOX_SENT, 2),
        ] {
            let ops = opcodes(&c, sql, params)?;
            assert!(!ops.iter().any(|op| op == "OpenEphemeral"), "{sql}: {ops:?}");
        }
        // 0011 adds the index of attempted flows, and only it.
        conn::migrate(&mut c, &MIGRATOR)?;
        let mut with_attempted = old_indexes;
        with_attempted.push(
            "recovery_flow_attempted_idx:CREATE INDEX recovery_flow_attempted_idx on recovery_flow \
             (identity_id, created_at) where code_attempts > 0"
                .into(),
        );
        with_attempted.sort();
        assert_eq!(indexes(&c)?, with_attempted);
        Ok(())
    }
}
