//! The PostgreSQL backend, for many stateless instances sharing one database.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, and starts for one login
//! are serialised with a transaction-scoped advisory lock, so limits hold
//! wherever a request lands.

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Transaction};

use super::places::Table;
use super::sql::*;
use super::*;
use crate::config::DatabaseSettings;

mod batches;
mod lookups;
mod places;
mod starts;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const CLAIM_OUTBOX_SQL: &str = "update outbox_message set lease_until = $2, attempts = attempts + 1 \
     where outbox_message_id in (select outbox_message_id from outbox_message \
       where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1) \
       order by next_attempt_at limit $3 for update skip locked) \
     returning *";

const CLAIM_WEBHOOKS_SQL: &str = "update webhook_delivery set lease_until = $3, attempts = attempts + 1 \
     where webhook_delivery_id in (select webhook_delivery_id from webhook_delivery \
       where endpoint = $1 and status = 'pending' and next_attempt_at <= $2 \
       and (lease_until is null or lease_until <= $2) order by next_attempt_at limit $4 for update skip locked) \
       and not exists (select 1 from webhook_endpoint where endpoint = $1) \
     returning *";

/// Delivered messages (`$1` ids, `$2` times) marked sent while pending
/// (`sql::MARK_OUTBOX_SENT`), and their events (`$3`…`$9`, `INSERT_AUDIT`'s
/// columns) written, in one statement: one transaction. Every
/// data-modifying `with` part runs, whatever reads it.
const MARK_OUTBOX_SENT_WITH_EVENTS: &str = "with sent as (update outbox_message m set status = 'sent', \
       sealed_payload = null, sent_at = s.sent_at, lease_until = null, last_error = null \
       from unnest($1::text[], $2::bigint[]) as s(outbox_message_id, sent_at) \
       where m.outbox_message_id = s.outbox_message_id and m.status = 'pending') \
     insert into audit_event (audit_event_id, identity_id, kind, ip_address, user_agent, detail, created_at, \
       dispatched) \
     select audit_event_id, identity_id, kind, ip_address, user_agent, detail, created_at, false \
     from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[]) \
       as e(audit_event_id, identity_id, kind, ip_address, user_agent, detail, created_at)";

/// `MARK_FLOW_VERIFIED` (`$1`…`$4`) and, only if it verified the flow, its
/// audit event (`$5`…`$11`): one statement, one commit. Answers one row
/// changed (the event) when the flow was verified.
static MARK_FLOW_VERIFIED_WITH_EVENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "with verified as ({MARK_FLOW_VERIFIED} returning 1) \
         insert into audit_event (audit_event_id, identity_id, kind, ip_address, user_agent, detail, created_at, \
           dispatched) \
         select $5, $6, $7, $8, $9, $10, $11, false where exists (select 1 from verified)"
    )
});

/// Locks the identity row against a concurrent password change until commit.
const IDENTITY_EPOCH_SQL: &str = "select credential_epoch from identity where identity_id = $1 for share";

/// Rewrites the table, so the deleted row's tuple is not left in its files
/// (WAL archives and base backups are backups: see docs/deploy.md).
async fn scrub_settings(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("vacuum full setting")
        .execute(pool)
        .await
        .context("vacuuming the setting table")?;
    Ok(())
}

/// A login's identity (`sql::identity_by_login!`); for a login without an
/// account, the first row at or after the page of its place
/// (`places::Places::tid`, `$4` for an address, `$2` for a username).
/// A page past the last live row (deleted rows, empty pages at the end)
/// wraps around to the first.
const IDENTITY_BY_ADDRESS: &str = identity_by_login!(
    address_at_login!(),
    "(select identity_id from address where ctid >= $4::tid limit 1), \
     (select identity_id from address where ctid >= '(0,1)'::tid limit 1)"
);
const IDENTITY_BY_USERNAME: &str = identity_by_login!(
    username_at_login!(),
    "(select identity_id from identity where ctid >= $2::tid limit 1), \
     (select identity_id from identity where ctid >= '(0,1)'::tid limit 1)"
);

const AUDIT_EVENTS_SQL: &str = "select * from audit_event \
     where ($1::text is null or identity_id = $1) and created_at >= $2 \
     order by created_at desc, audit_event_id limit $3";

/// Two instances counting one login's starts at once would both see room:
/// a transaction-scoped advisory lock on the key makes them take turns.
async fn lock_start_key(tx: &mut Transaction<'_, sqlx::Postgres>, key: &str) -> anyhow::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(key)
        .execute(&mut **tx)
        .await
        .context("locking the start key")?;
    Ok(())
}

/// A start after its lock, in one statement: the conditional flow insert
/// (`INSERT_FLOW`, `$1`…`$13`), and only if it wrote a row, the superseding
/// of the login's older flows (`LIVE_FLOWS`, ended in place), the audit event
/// (`$14`…`$20`) and the message (`$21`…`$31`, with `START_WITH_MESSAGE`).
/// Answers how many flows it wrote: 0 when the limit refused the start.
/// PostgreSQL runs every data-modifying `with` part exactly once; the parts
/// read the snapshot taken after the lock, so the count cannot be raced.
/// `expires_at + 0` keeps the planner from also scanning
/// `recovery_flow_expires_idx` over every live flow, as in `GROUP_START`
/// (with it, a start alone took 1.4 ms of PostgreSQL's time in a flood).
fn start_statement(with_message: bool) -> String {
    let message = if with_message {
        ", message as (insert into outbox_message (outbox_message_id, channel, sealed_payload, status, \
           attempts, next_attempt_at, lease_until, last_error, created_at, sent_at, identity_id) \
         select $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31 where exists (select 1 from flow))"
    } else {
        ""
    };
    format!(
        "with flow as ({INSERT_FLOW} returning 1), \
         superseded as (update recovery_flow set state = 'dead', code_hash = null \
           where address_key = $3 and state = 'sent' and recovery_flow_id <> $1 and expires_at + 0 > $10 \
           and exists (select 1 from flow)), \
         audit as (insert into audit_event (audit_event_id, identity_id, kind, ip_address, user_agent, \
           detail, created_at, dispatched) select $14, $15, $16, $17, $18, $19, $20, false \
           where exists (select 1 from flow)) \
         {message} select count(*) from flow"
    )
}

static START: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| start_statement(false));
static START_WITH_MESSAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| start_statement(true));

/// `BEGIN` and the start key's lock in one round trip. Starts for one login
/// queue on the lock, so the count of its recent starts cannot be raced. The
/// key is a keyed hash in hex, written into the statement only after that
/// is checked (anything else takes the lock with a bound parameter).
async fn begin_start(pool: &PgPool, key: &str) -> anyhow::Result<Transaction<'static, sqlx::Postgres>> {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        let statement = format!("begin; select pg_advisory_xact_lock(hashtextextended('{key}', 0))");
        return pool
            .begin_with(sqlx::AssertSqlSafe(statement))
            .await
            .context("beginning a start");
    }
    let mut tx = pool.begin().await.context("beginning transaction")?;
    lock_start_key(&mut tx, key).await?;
    Ok(tx)
}

/// Binds an outbox message's columns, in `INSERT_OUTBOX`'s order, to any
/// sqlx query (`Query` or `QueryScalar`).
macro_rules! bind_outbox {
    ($query:expr, $m:expr) => {{
        let m = $m;
        $query
            .bind(&m.outbox_message_id)
            .bind(&m.channel)
            .bind(&m.sealed_payload)
            .bind(&m.status)
            .bind(m.attempts)
            .bind(m.next_attempt_at)
            .bind(m.lease_until)
            .bind(&m.last_error)
            .bind(m.created_at)
            .bind(m.sent_at)
            .bind(&m.identity_id)
    }};
}

/// Binds an audit event's columns, in `INSERT_AUDIT`'s order.
macro_rules! bind_audit {
    ($query:expr, $e:expr) => {{
        let e = $e;
        $query
            .bind(&e.audit_event_id)
            .bind(&e.identity_id)
            .bind(&e.kind)
            .bind(&e.ip_address)
            .bind(&e.user_agent)
            .bind(&e.detail)
            .bind(e.created_at)
    }};
}

/// A start in its own transaction: `BEGIN` with the lock, the one statement,
/// `COMMIT` (three round trips).
async fn start_in(pool: &PgPool, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
    let mut tx = begin_start(pool, &start.flow.address_key).await?;
    let statement = if start.message.is_some() {
        &*START_WITH_MESSAGE
    } else {
        &*START
    };
    let mut query = bind_audit!(
        bind_flow(sqlx::query_scalar(sqlx::AssertSqlSafe(statement.as_str())), start),
        &start.audit
    );
    if let Some(m) = &start.message {
        query = bind_outbox!(query, m);
    }
    let written: i64 = query.fetch_one(&mut *tx).await.context("inserting recovery flow")?;
    let outcome = if written == 0 {
        refused_start(&mut tx, start).await?
    } else {
        StartOutcome::Created
    };
    tx.commit().await.context("committing recovery flow")?;
    Ok(outcome)
}

pub struct PostgresStore {
    pool: PgPool,
    starts: starts::Starts,
    /// Address logins' identities, read in groups.
    lookups: lookups::Lookups,
    /// Reads share the one pool: PostgreSQL runs writers concurrently.
    readers: PgPool,
    places: Arc<places::Places>,
}

impl PostgresStore {
    pub async fn connect(database_url: &str, settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let timeout_ms = settings.statement_timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(database_url)
            .with_context(|| format!("invalid PostgreSQL URL {}", redact(database_url)))?
            .options([("statement_timeout", timeout_ms.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(database_url)))?;
        // A login lookup reads one page by TID range (`places`); before 14
        // that is a sequential scan as long as the page's place, a timing
        // difference between known and unknown logins (SECURITY.md).
        let version: i32 = sqlx::query_scalar("select current_setting('server_version_num')::int")
            .fetch_one(&pool)
            .await
            .context("reading the PostgreSQL server's version")?;
        anyhow::ensure!(
            version >= 140_000,
            "latchkey needs PostgreSQL 14 or later; the server at {} is version {version}",
            redact(database_url)
        );
        Ok(Self {
            readers: pool.clone(),
            starts: starts::Starts::spawn(pool.clone()),
            lookups: lookups::Lookups::spawn(pool.clone()),
            places: Arc::default(),
            pool,
        })
    }
}

/// The URL without its user, password or query string (which may hold a
/// `password=` or `sslpassword=`), for error messages.
fn redact(url: &str) -> String {
    let without_query = url.split_once('?').map_or(url, |(base, _)| base);
    let shown = match (without_query.find("://"), without_query.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &without_query[..scheme], &without_query[at..]),
        _ => without_query.to_owned(),
    };
    if without_query.len() < url.len() {
        shown + "?…"
    } else {
        shown
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A unique violation as the `Conflict` it means, anything else as itself.
fn conflict_or(what: &'static str, context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match is_unique_violation(&e) {
        true => StoreError::Conflict(what),
        false => StoreError::Other(anyhow::Error::new(e).context(context)),
    }
}

type Tx<'c> = Transaction<'c, sqlx::Postgres>;
/// The start statement, answering how many flows it wrote.
type StartQuery<'q> = sqlx::query::QueryScalar<'q, sqlx::Postgres, i64, sqlx::postgres::PgArguments>;

/// Binds a start's flow row and limit as `$1`…`$13` (see `INSERT_FLOW`).
fn bind_flow<'q>(query: StartQuery<'q>, start: &'q NewRecoveryFlow) -> StartQuery<'q> {
    let f = &start.flow;
    query
        .bind(&f.recovery_flow_id)
        .bind(&f.identity_id)
        .bind(&f.address_key)
        .bind(&f.channel)
        .bind(&f.cookie_hash)
        .bind(&f.code_hash)
        .bind(&f.state)
        .bind(&f.locale)
        .bind(f.expires_at)
        .bind(f.created_at)
        .bind(start.window_start)
        .bind(start.start_limit())
        .bind(f.decoy)
}

/// Forgets the failed-login streaks of `keys`, one statement per key, on
/// `conn` (a transaction's, or a pooled connection's, where each commits alone).
async fn clear_throttle(conn: &mut sqlx::PgConnection, keys: &[String]) -> anyhow::Result<()> {
    for key in keys {
        sqlx::query(CLEAR_LOGIN_THROTTLE)
            .bind(key)
            .execute(&mut *conn)
            .await
            .context("clearing login throttle")?;
    }
    Ok(())
}

/// Ends every way into an account: its sessions, then their refresh tokens
/// (the order every writer locks them in), then its recovery flows. A reset
/// and "this wasn't me" both do this.
async fn end_access(tx: &mut Tx<'_>, identity_id: &str, now: i64) -> anyhow::Result<()> {
    for (sql, what) in [
        (REVOKE_IDENTITY_SESSIONS, "revoking sessions"),
        (REVOKE_IDENTITY_REFRESH, "revoking refresh tokens"),
    ] {
        sqlx::query(sql)
            .bind(identity_id)
            .bind(now)
            .execute(&mut **tx)
            .await
            .context(what)?;
    }
    sqlx::query(CLOSE_IDENTITY_FLOWS)
        .bind(identity_id)
        .execute(&mut **tx)
        .await
        .context("closing flows")?;
    Ok(())
}

async fn insert_outbox(tx: &mut Tx<'_>, m: &OutboxMessageRecord) -> anyhow::Result<()> {
    bind_outbox!(sqlx::query(INSERT_OUTBOX), m)
        .execute(&mut **tx)
        .await
        .context("inserting outbox message")?;
    Ok(())
}

async fn insert_audit<'e, E>(executor: E, e: &AuditEventRecord) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    bind_audit!(sqlx::query(INSERT_AUDIT), e)
        .execute(executor)
        .await
        .context("inserting audit event")?;
    Ok(())
}

/// Runs one statement and, when it changed a row (or `always`), writes
/// `audit` in the same transaction; how many rows it changed.
async fn changed_with_audit(
    pool: &PgPool,
    statement: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    audit: &AuditEventRecord,
    always: bool,
    what: &'static str,
) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await.context("beginning transaction")?;
    let changed = statement.execute(&mut *tx).await.context(what)?.rows_affected();
    if changed > 0 || always {
        insert_audit(&mut *tx, audit).await?;
    }
    tx.commit().await.context(what)?;
    Ok(changed)
}

/// One try of an import batch (see `Store::import_identities`).
async fn import_batch(
    pool: &sqlx::PgPool,
    items: &[ImportedIdentityRecord],
    commit: bool,
) -> anyhow::Result<Vec<ImportOutcome>> {
    let mut tx = pool.begin().await.context("beginning an import batch")?;
    if commit {
        // First: the marker's row lock queues concurrent imports one behind
        // another (a bump at the end made one more lock to deadlock on). A
        // batch that writes nothing bumps it too: one census more.
        sqlx::query(BUMP_SETTING)
            .bind(super::HASHES_IMPORTED_SETTING)
            .bind(crate::time::now_ms())
            .execute(&mut *tx)
            .await
            .context("marking the import")?;
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let i = &item.identity;
        let taken: Option<String> = sqlx::query_scalar(IMPORT_CONFLICT)
            .bind(&i.identity_id)
            .bind(item.address(AddressKind::Email))
            .bind(&i.username)
            .bind(item.address(AddressKind::Phone))
            .fetch_one(&mut *tx)
            .await
            .context("checking an imported identity")?;
        if let Some(field) = taken {
            outcomes.push(Some(super::conflict_field(&field)));
            continue;
        }
        // A savepoint: another instance may take one of its keys meanwhile.
        let mut one = sqlx::Acquire::begin(&mut *tx)
            .await
            .context("beginning an imported identity")?;
        let written = match insert_identity(&mut one, i, &item.addresses).await {
            Ok(()) => insert_audit(&mut *one, &item.audit).await.map_err(StoreError::Other),
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                one.commit().await.context("ending an imported identity")?;
                outcomes.push(None);
            }
            Err(StoreError::Conflict(field)) => {
                one.rollback().await.context("rolling back an imported identity")?;
                outcomes.push(Some(field));
            }
            Err(StoreError::Other(e)) => return Err(e),
        }
    }
    if commit {
        tx.commit().await.context("committing an import batch")?;
    } else {
        tx.rollback().await.context("rolling back a dry run")?;
    }
    Ok(outcomes)
}

fn is_deadlock(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|db| db.code())
            .is_some_and(|code| code == "40P01")
    })
}

async fn insert_identity(tx: &mut Tx<'_>, identity: &IdentityRecord, addresses: &[AddressRecord]) -> StoreResult<()> {
    sqlx::query(INSERT_IDENTITY)
        .bind(&identity.identity_id)
        .bind(&identity.username)
        .bind(&identity.password_hash)
        .bind(&identity.roles)
        .bind(identity.created_at)
        .bind(identity.updated_at)
        .execute(&mut **tx)
        .await
        .map_err(conflict_or("username", "inserting identity"))?;
    for a in addresses {
        sqlx::query(INSERT_ADDRESS)
            .bind(&a.address_id)
            .bind(&a.identity_id)
            .bind(&a.kind)
            .bind(&a.value)
            .bind(a.verified)
            .bind(a.created_at)
            .execute(&mut **tx)
            .await
            .map_err(conflict_or("address", "inserting address"))?;
    }
    Ok(())
}

/// Writes a report link's digest; `false` when it was spent before.
async fn spend_link(tx: &mut Tx<'_>, link: &SpentLink, now: i64) -> anyhow::Result<bool> {
    let written = sqlx::query(SPEND_LINK)
        .bind(&link.digest)
        .bind(&link.identity_id)
        .bind(link.kind)
        .bind(link.expires_at)
        .bind(now)
        .execute(&mut **tx)
        .await
        .context("spending report link")?;
    Ok(written.rows_affected() == 1)
}

/// The answer to a start the limit refused: when the oldest start in the
/// window was made, so the caller can say when to retry.
async fn refused_start(tx: &mut Tx<'_>, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
    let (oldest_start,): (i64,) = sqlx::query_as(OLDEST_START)
        .bind(&start.flow.address_key)
        .bind(start.window_start)
        .fetch_one(&mut **tx)
        .await
        .context("reading oldest start")?;
    Ok(StartOutcome::RateLimited { oldest_start })
}

async fn insert_session<'e, E>(executor: E, s: &SessionRecord) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(INSERT_SESSION)
        .bind(&s.session_id)
        .bind(&s.identity_id)
        .bind(&s.token_hash)
        .bind(s.authenticated_at)
        .bind(s.expires_at)
        .bind(s.revoked_at)
        .bind(&s.ip_address)
        .bind(&s.user_agent)
        .bind(s.created_at)
        .execute(executor)
        .await
        .context("inserting session")?;
    Ok(())
}

async fn insert_refresh<'e, E>(executor: E, t: &RefreshTokenRecord) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(INSERT_REFRESH)
        .bind(&t.refresh_token_id)
        .bind(&t.family_id)
        .bind(&t.session_id)
        .bind(&t.identity_id)
        .bind(&t.token_hash)
        .bind(t.expires_at)
        .bind(t.spent_at)
        .bind(t.revoked_at)
        .bind(t.created_at)
        .execute(executor)
        .await
        .context("inserting refresh token")?;
    Ok(())
}

/// Runs one purge statement batch after batch until a batch comes back short.
async fn drain(pool: &PgPool, sql: &'static str, before: i64, now: i64) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let done = sqlx::query(sql)
            .bind(before)
            .bind(PURGE_BATCH)
            .bind(now)
            .execute(pool)
            .await
            .context("purging old rows")?;
        total += done.rows_affected();
        if done.rows_affected() < PURGE_BATCH as u64 {
            return Ok(total);
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("applying migrations")?;
        // Before the first lookup, so none reads page 0 for want of a size.
        self.read_lookup_sizes().await
    }

    async fn read_lookup_sizes(&self) -> anyhow::Result<()> {
        self.places
            .read(&self.pool)
            .await
            .context("reading the sizes of the login tables")
    }

    async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("select 1")
            .execute(&self.readers)
            .await
            .context("database ping")?;
        Ok(())
    }

    async fn stored_setting(&self, key: &str) -> anyhow::Result<Option<String>> {
        let found: Option<(String,)> = sqlx::query_as(SETTING)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .context("reading setting")?;
        Ok(found.map(|(value,)| value))
    }

    async fn link_spent(&self, digest: &str) -> anyhow::Result<bool> {
        let count: i64 = sqlx::query_scalar(LINK_SPENT)
            .bind(digest)
            .fetch_one(&self.readers)
            .await
            .context("reading a spent link")?;
        Ok(count > 0)
    }

    async fn delete_setting(&self, key: &str) -> anyhow::Result<bool> {
        let done = sqlx::query(DELETE_SETTING)
            .bind(key)
            .execute(&self.pool)
            .await
            .context("deleting setting")?;
        // Leave no copy of the deleted row in the database's files.
        scrub_settings(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn setting_or_insert(&self, key: &str, value: &str, now: i64) -> anyhow::Result<String> {
        sqlx::query(INSERT_SETTING)
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(&self.pool)
            .await
            .context("storing setting")?;
        let (stored,): (String,) = sqlx::query_as(SETTING)
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .context("reading setting")?;
        Ok(stored)
    }

    async fn signing_keys(&self) -> anyhow::Result<Vec<SigningKeyRecord>> {
        sqlx::query_as(SIGNING_KEYS)
            .fetch_all(&self.readers)
            .await
            .context("reading signing keys")
    }

    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> anyhow::Result<()> {
        sqlx::query(INSERT_SIGNING_KEY)
            .bind(&k.signing_key_id)
            .bind(&k.sealed_private_key)
            .bind(&k.public_key)
            .bind(k.created_at)
            .bind(k.retired_at)
            .bind(k.published_until)
            .execute(&self.pool)
            .await
            .context("storing signing key")?;
        Ok(())
    }

    async fn retire_signing_keys_except(&self, keep: &str, now: i64, published_until: i64) -> anyhow::Result<()> {
        sqlx::query(RETIRE_SIGNING_KEYS)
            .bind(keep)
            .bind(now)
            .bind(published_until)
            .execute(&self.pool)
            .await
            .context("retiring signing keys")?;
        Ok(())
    }

    async fn retire_signing_key_now(&self, id: &str, now: i64) -> anyhow::Result<()> {
        sqlx::query(RETIRE_SIGNING_KEY_NOW)
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .context("retiring a signing key")?;
        Ok(())
    }

    async fn create_identity(
        &self,
        identity: &IdentityRecord,
        addresses: &[AddressRecord],
        audit: &AuditEventRecord,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        insert_identity(&mut tx, identity, addresses).await?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await.context("committing identity")?;
        Ok(())
    }

    async fn import_identities(
        &self,
        items: &[ImportedIdentityRecord],
        commit: bool,
    ) -> anyhow::Result<Vec<ImportOutcome>> {
        // Two imports writing the same keys in other orders can deadlock;
        // PostgreSQL aborts one, which then runs again and skips what the other wrote.
        let mut attempts = 0;
        loop {
            match import_batch(&self.pool, items, commit).await {
                Err(e) if attempts < 3 && is_deadlock(&e) => attempts += 1,
                outcome => return outcome,
            }
        }
    }

    async fn password_hash_census(&self, current_like: &str) -> anyhow::Result<HashCensusRecord> {
        let current: i64 = sqlx::query_scalar(COUNT_CURRENT_HASHES)
            .bind(current_like)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .fetch_one(&self.readers)
            .await
            .context("counting password hashes")?;
        let others: Vec<String> = sqlx::query_scalar(OTHER_HASHES)
            .bind(current_like)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .fetch_all(&self.readers)
            .await
            .context("reading password hashes")?;
        Ok(HashCensusRecord { current, others })
    }

    async fn identity(&self, identity_id: &str) -> anyhow::Result<Option<IdentityRecord>> {
        sqlx::query_as(IDENTITY)
            .bind(identity_id)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .fetch_optional(&self.readers)
            .await
            .context("reading identity")
    }

    async fn identity_for_login(
        &self,
        login: LoginLookup<'_>,
        place: i64,
    ) -> anyhow::Result<Option<(IdentityRecord, Vec<AddressRecord>)>> {
        let rows = match login {
            LoginLookup::Address(kind, value) => {
                let lookup = lookups::Lookup {
                    kind: kind.as_str(),
                    value: value.to_owned(),
                    place: self.places.tid(&self.readers, Table::Address, place),
                };
                self.lookups.identity(lookup).await?
            }
            LoginLookup::Username(username) => sqlx::query_as::<_, IdentityAddressRow>(IDENTITY_BY_USERNAME)
                .bind(username)
                .bind(self.places.tid(&self.readers, Table::Identity, place))
                .bind(PLACEHOLDER_IDENTITY_ID)
                .fetch_all(&self.readers)
                .await
                .context("reading identity for login")?,
        };
        let found = IdentityAddressRow::collect(rows).context("the placeholder identity is missing")?;
        Ok(IdentityAddressRow::named_by(found, login))
    }

    async fn identity_with_addresses(
        &self,
        identity_id: &str,
    ) -> anyhow::Result<Option<(IdentityRecord, Vec<AddressRecord>)>> {
        let rows = sqlx::query_as::<_, IdentityAddressRow>(IDENTITY_WITH_ADDRESSES)
            .bind(identity_id)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .fetch_all(&self.readers)
            .await
            .context("reading identity")?;
        Ok(IdentityAddressRow::collect(rows))
    }

    async fn addresses(&self, identity_id: &str) -> anyhow::Result<Vec<AddressRecord>> {
        sqlx::query_as(ADDRESSES)
            .bind(identity_id)
            .fetch_all(&self.readers)
            .await
            .context("reading addresses")
    }

    async fn list_identities(&self, limit: i64, offset: i64) -> anyhow::Result<Vec<IdentityRecord>> {
        sqlx::query_as(LIST_IDENTITIES)
            .bind(limit)
            .bind(offset)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .fetch_all(&self.readers)
            .await
            .context("listing identities")
    }

    async fn delete_identity(&self, identity_id: &str, audit: &AuditEventRecord) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let done = sqlx::query(DELETE_IDENTITY)
            .bind(identity_id)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .execute(&mut *tx)
            .await
            .context("deleting identity")?;
        // Flows have no foreign key: a start that raced an earlier delete left one.
        for (sql, what) in [
            (CLOSE_IDENTITY_FLOWS, "closing the identity's recovery flows"),
            (DETACH_IDENTITY_FLOWS, "detaching the identity's recovery flows"),
        ] {
            sqlx::query(sql)
                .bind(identity_id)
                .execute(&mut *tx)
                .await
                .context(what)?;
        }
        let deleted = done.rows_affected() > 0;
        if deleted {
            insert_audit(&mut *tx, audit).await?;
        }
        tx.commit().await.context("committing identity deletion")?;
        Ok(deleted)
    }

    async fn update_password_hash(
        &self,
        identity_id: &str,
        expected: &str,
        new_hash: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(UPDATE_PASSWORD_HASH)
            .bind(identity_id)
            .bind(expected)
            .bind(new_hash)
            .bind(now)
            .execute(&self.pool)
            .await
            .context("updating password hash")?;
        Ok(())
    }

    async fn update_identity(
        &self,
        identity_id: &str,
        changes: &IdentityChanges,
        now: i64,
        audit: &[AuditEventRecord],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let done = sqlx::query(UPDATE_IDENTITY)
            .bind(identity_id)
            .bind(changes.username.is_some())
            .bind(changes.username.clone().flatten())
            .bind(&changes.roles)
            .bind(&changes.password_hash)
            .bind(now)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or("username", "updating identity"))?;
        if done.rows_affected() == 0 {
            tx.rollback().await.context("rolling back")?;
            return Ok(false);
        }
        if changes.password_hash.is_some() {
            // In the same transaction, so no session of the old password survives.
            sqlx::query(REVOKE_IDENTITY_SESSIONS)
                .bind(identity_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("revoking sessions")?;
        }
        for event in audit {
            insert_audit(&mut *tx, event).await?;
        }
        tx.commit().await.context("committing identity update")?;
        Ok(true)
    }

    async fn insert_address(&self, a: &AddressRecord, audit: &AuditEventRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        sqlx::query(INSERT_ADDRESS)
            .bind(&a.address_id)
            .bind(&a.identity_id)
            .bind(&a.kind)
            .bind(&a.value)
            .bind(a.verified)
            .bind(a.created_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or("address", "inserting address"))?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await.context("committing address")?;
        Ok(())
    }

    async fn set_address_verified(
        &self,
        identity_id: &str,
        kind: AddressKind,
        value: &str,
        verified: bool,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool> {
        let statement = sqlx::query(SET_ADDRESS_VERIFIED)
            .bind(identity_id)
            .bind(kind.as_str())
            .bind(value)
            .bind(verified);
        Ok(changed_with_audit(&self.pool, statement, audit, false, "marking address verification").await? > 0)
    }

    async fn create_recovery_flow(&self, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
        self.starts.start(start).await
    }

    async fn code_attempts(&self, of: AttemptsOf<'_>, since: i64) -> anyhow::Result<i64> {
        let (sql, whose) = of.statement();
        sqlx::query_scalar(sql)
            .bind(whose)
            .bind(since)
            .fetch_one(&self.readers)
            .await
            .context("counting recent code attempts")
    }

    async fn recovery_flow_by_cookie(&self, cookie_hash: &str) -> anyhow::Result<Option<RecoveryFlowRecord>> {
        sqlx::query_as(FLOW_BY_COOKIE)
            .bind(cookie_hash)
            .fetch_optional(&self.readers)
            .await
            .context("reading recovery flow")
    }

    async fn recovery_flow(&self, flow_id: &str) -> anyhow::Result<Option<RecoveryFlowRecord>> {
        sqlx::query_as(FLOW_BY_ID)
            .bind(flow_id)
            .fetch_optional(&self.readers)
            .await
            .context("reading recovery flow")
    }

    async fn reserve_code_attempt(
        &self,
        flow_id: &str,
        max_attempts: u32,
        now: i64,
    ) -> anyhow::Result<Option<RecoveryFlowRecord>> {
        sqlx::query_as(RESERVE_CODE_ATTEMPT)
            .bind(flow_id)
            .bind(attempt_limit(max_attempts))
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .context("reserving a code attempt")
    }

    async fn kill_flow(&self, flow_id: &str, audit: &AuditEventRecord) -> anyhow::Result<()> {
        let statement = sqlx::query(KILL_FLOW).bind(flow_id);
        changed_with_audit(&self.pool, statement, audit, false, "killing flow").await?;
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
        let query = sqlx::query(sqlx::AssertSqlSafe(MARK_FLOW_VERIFIED_WITH_EVENT.as_str()))
            .bind(flow_id)
            .bind(old_cookie_hash)
            .bind(new_cookie_hash)
            .bind(now);
        let done = bind_audit!(query, audit)
            .execute(&self.pool)
            .await
            .context("marking flow verified")?;
        Ok(done.rows_affected() == 1)
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
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        // Verified in place, so a cancel, freeze or reset that commits
        // meanwhile finds (and ends) this very row; the decoy it may miss
        // can never succeed anyway.
        let verified = sqlx::query(MARK_FLOW_VERIFIED)
            .bind(flow_id)
            .bind(cookie_hash)
            .bind(new_cookie_hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("marking flow verified")?;
        if verified.rows_affected() != 1 {
            tx.rollback().await.context("rolling back")?;
            return Ok(false);
        }
        sqlx::query(DECOY_FOR_CONTINUED_FLOW)
            .bind(flow_id)
            .bind(decoy_id)
            .bind(cookie_hash)
            .execute(&mut *tx)
            .await
            .context("leaving a decoy")?;
        sqlx::query(FLOW_OFF_ITS_LOGIN)
            .bind(flow_id)
            .execute(&mut *tx)
            .await
            .context("taking the flow off its login")?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await.context("committing the continued flow")?;
        Ok(true)
    }

    async fn cancel_recovery(&self, r: &CancelledRecovery) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        if !spend_link(&mut tx, &r.link, r.now).await? {
            tx.rollback().await.context("rolling back")?;
            return Ok(false);
        }
        let id = &r.link.identity_id;
        sqlx::query(CLOSE_IDENTITY_FLOWS)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("closing flows")?;
        sqlx::query(PAUSE_RECOVERY)
            .bind(id)
            .bind(r.paused_until)
            .execute(&mut *tx)
            .await
            .context("pausing recovery")?;
        insert_audit(&mut *tx, &r.audit).await?;
        tx.commit().await.context("committing cancel")?;
        Ok(true)
    }

    async fn secure_identity(&self, r: &SecuredIdentity) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        if !spend_link(&mut tx, &r.link, r.now).await? {
            tx.rollback().await.context("rolling back")?;
            return Ok(false);
        }
        let id = &r.link.identity_id;
        sqlx::query(FREEZE_IDENTITY)
            .bind(id)
            .bind(r.now)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .execute(&mut *tx)
            .await
            .context("freezing identity")?;
        end_access(&mut tx, id, r.now).await?;
        for notice in &r.notices {
            insert_outbox(&mut tx, notice).await?;
        }
        for event in &r.audit {
            insert_audit(&mut *tx, event).await?;
        }
        tx.commit().await.context("committing secure")?;
        Ok(true)
    }

    async fn unfreeze_identity(&self, identity_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<bool> {
        let statement = sqlx::query(UNFREEZE_IDENTITY).bind(identity_id).bind(now);
        Ok(changed_with_audit(&self.pool, statement, audit, false, "unfreezing identity").await? == 1)
    }

    async fn complete_recovery(&self, r: &CompletedRecovery) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let spent = sqlx::query(SPEND_FLOW)
            .bind(&r.flow_id)
            .bind(&r.identity_id)
            .bind(r.now)
            .bind(r.from_state)
            .execute(&mut *tx)
            .await
            .context("spending recovery flow")?;
        if spent.rows_affected() != 1 {
            tx.rollback().await.context("rolling back")?;
            return Ok(false);
        }
        sqlx::query(RESET_PASSWORD)
            .bind(&r.identity_id)
            .bind(&r.password_hash)
            .bind(r.now)
            .execute(&mut *tx)
            .await
            .context("storing new password hash")?;
        end_access(&mut tx, &r.identity_id, r.now).await?;
        insert_session(&mut *tx, &r.session).await?;
        for notice in &r.notices {
            insert_outbox(&mut tx, notice).await?;
        }
        for event in &r.audit {
            insert_audit(&mut *tx, event).await?;
        }
        tx.commit().await.context("committing reset")?;
        // After the commit, each key on its own: inside the transaction the
        // row locks of old streaks (other logins of the account) could be
        // taken in the opposite order by the purge of old streaks, a deadlock.
        let mut conn = self.pool.acquire().await.context("acquiring a connection")?;
        clear_throttle(&mut conn, &r.clear_throttle).await?;
        Ok(true)
    }

    async fn create_session(
        &self,
        session: &SessionRecord,
        audit: &AuditEventRecord,
        credential_epoch: i64,
        clear_throttle_keys: &[String],
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        // The epoch is read with a row lock (`for share`), so a password
        // change either commits first (and is seen here) or waits for this
        // session and then revokes it.
        let current: Option<(i64,)> = sqlx::query_as(IDENTITY_EPOCH_SQL)
            .bind(&session.identity_id)
            .fetch_optional(&mut *tx)
            .await
            .context("reading the credential epoch")?;
        if current != Some((credential_epoch,)) {
            tx.rollback().await.context("rolling back")?;
            return Ok(false);
        }
        insert_session(&mut *tx, session).await?;
        insert_audit(&mut *tx, audit).await?;
        clear_throttle(&mut tx, clear_throttle_keys).await?;
        tx.commit().await.context("committing session")?;
        Ok(true)
    }

    async fn session_with_identity(&self, lookup: SessionLookup<'_>) -> anyhow::Result<Option<SessionWithIdentity>> {
        let (sql, key) = match lookup {
            SessionLookup::TokenHash(hash) => (SESSION_WITH_IDENTITY_BY_TOKEN, hash),
            SessionLookup::Id(id) => (SESSION_WITH_IDENTITY_BY_ID, id),
        };
        let rows = sqlx::query_as::<_, SessionIdentityRow>(sql)
            .bind(key)
            .bind(PLACEHOLDER_IDENTITY_ID)
            .fetch_all(&self.readers)
            .await
            .context("reading a session with its identity")?;
        Ok(SessionIdentityRow::collect(rows))
    }

    async fn session(&self, session_id: &str) -> anyhow::Result<Option<SessionRecord>> {
        sqlx::query_as(SESSION)
            .bind(session_id)
            .fetch_optional(&self.readers)
            .await
            .context("reading session")
    }

    async fn revoke_session(&self, session_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<bool> {
        let statement = sqlx::query(REVOKE_SESSION).bind(session_id).bind(now);
        Ok(changed_with_audit(&self.pool, statement, audit, false, "revoking session").await? > 0)
    }

    async fn revoke_identity_sessions(
        &self,
        identity_id: &str,
        now: i64,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<u64> {
        // An operator's action is audited even when no session was live.
        let statement = sqlx::query(REVOKE_IDENTITY_SESSIONS).bind(identity_id).bind(now);
        changed_with_audit(&self.pool, statement, audit, true, "revoking identity sessions").await
    }

    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        reset_before: i64,
        policy: LoginLockPolicy,
    ) -> anyhow::Result<LoginReservation> {
        // A refused upsert means the key is locked; if the lock is gone by
        // the time it is read (a right password cleared it meanwhile), the
        // reservation is tried again.
        for _ in 0..3 {
            let reserved: Option<(i64,)> = sqlx::query_as(RESERVE_LOGIN_ATTEMPT)
                .bind(key)
                .bind(now)
                .bind(reset_before)
                .bind(policy.free)
                .bind(policy.doublings())
                .bind(policy.max_lock_ms)
                .bind(policy.first_lock_until(now))
                .fetch_optional(&self.pool)
                .await
                .context("reserving a login attempt")?;
            if let Some((failures,)) = reserved {
                return Ok(LoginReservation::Reserved { failures });
            }
            let lock: Option<(i64,)> = sqlx::query_as(LOGIN_LOCK)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .context("reading a login lock")?;
            if let Some((until,)) = lock {
                return Ok(LoginReservation::Locked { until });
            }
        }
        Ok(LoginReservation::Locked { until: now + 1000 })
    }

    async fn insert_refresh_token(&self, t: &RefreshTokenRecord) -> anyhow::Result<()> {
        insert_refresh(&self.pool, t).await
    }

    async fn refresh_token_by_hash(&self, token_hash: &str) -> anyhow::Result<Option<RefreshTokenRecord>> {
        sqlx::query_as(REFRESH_BY_HASH)
            .bind(token_hash)
            .fetch_optional(&self.readers)
            .await
            .context("reading refresh token")
    }

    async fn rotate_refresh_token(&self, spent_id: &str, next: &RefreshTokenRecord, now: i64) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let spent = sqlx::query(SPEND_REFRESH)
            .bind(spent_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("spending refresh token")?;
        if spent.rows_affected() != 1 {
            tx.rollback().await.context("rolling back")?;
            return Ok(false);
        }
        insert_refresh(&mut *tx, next).await?;
        tx.commit().await.context("committing refresh rotation")?;
        Ok(true)
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: i64, audit: &AuditEventRecord) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        // The session first, then the tokens, as `secure_identity` locks
        // them: two writers taking the rows in opposite orders can deadlock.
        let session = sqlx::query(REVOKE_FAMILY_SESSION)
            .bind(family_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("revoking the family's session")?;
        let tokens = sqlx::query(REVOKE_REFRESH_FAMILY)
            .bind(family_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("revoking refresh family")?;
        if session.rows_affected() + tokens.rows_affected() > 0 {
            insert_audit(&mut *tx, audit).await?;
        }
        tx.commit().await.context("committing family revocation")?;
        Ok(())
    }

    async fn claim_outbox(&self, now: i64, lease_until: i64, limit: i64) -> anyhow::Result<Vec<OutboxMessageRecord>> {
        sqlx::query_as(CLAIM_OUTBOX_SQL)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .context("claiming outbox messages")
    }

    async fn undispatched_events(&self, limit: i64) -> anyhow::Result<Vec<AuditEventRecord>> {
        sqlx::query_as(UNDISPATCHED_EVENTS)
            .bind(limit)
            .fetch_all(&self.readers)
            .await
            .context("reading undispatched events")
    }

    async fn dispatch_events(&self, events: &[(String, Vec<WebhookDeliveryRecord>)]) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await.context("beginning a dispatch")?;
        let mut dispatched = 0;
        // Events in the order they were read, so two dispatchers lock them in one order.
        for (id, deliveries) in events {
            let marked = sqlx::query(MARK_DISPATCHED)
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("marking an event dispatched")?
                .rows_affected();
            if marked == 0 {
                continue;
            }
            dispatched += 1;
            for d in deliveries {
                sqlx::query(INSERT_WEBHOOK_DELIVERY)
                    .bind(&d.webhook_delivery_id)
                    .bind(&d.endpoint)
                    .bind(&d.event_id)
                    .bind(&d.event_type)
                    .bind(&d.payload)
                    .bind(d.next_attempt_at)
                    .bind(d.give_up_at)
                    .bind(d.created_at)
                    .execute(&mut *tx)
                    .await
                    .context("inserting a webhook delivery")?;
            }
        }
        tx.commit().await.context("committing a dispatch")?;
        Ok(dispatched)
    }

    async fn claim_webhook_deliveries(
        &self,
        endpoint: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<WebhookDeliveryRecord>> {
        sqlx::query_as(CLAIM_WEBHOOKS_SQL)
            .bind(endpoint)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .context("claiming webhook deliveries")
    }

    async fn finish_webhook_delivery(
        &self,
        claimed: &WebhookDeliveryRecord,
        attempt: &WebhookAttempt,
        now: i64,
    ) -> anyhow::Result<bool> {
        let id = &claimed.webhook_delivery_id;
        let query = match attempt {
            WebhookAttempt::Sent { status } => sqlx::query(FINISH_WEBHOOK_SENT).bind(id).bind(now).bind(status),
            WebhookAttempt::Retry {
                next_attempt_at,
                error,
                status,
            } => sqlx::query(FINISH_WEBHOOK_RETRY)
                .bind(id)
                .bind(next_attempt_at)
                .bind(error)
                .bind(status),
            WebhookAttempt::Failed { error, status } => {
                sqlx::query(FINISH_WEBHOOK_FAILED).bind(id).bind(error).bind(status)
            }
        };
        let changed = query
            .bind(claimed.attempts)
            .bind(claimed.lease_until)
            .execute(&self.pool)
            .await
            .context("recording a webhook delivery")?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn expire_webhook_deliveries(&self, now: i64, stale_before: i64) -> anyhow::Result<Vec<String>> {
        let expired: Vec<String> = sqlx::query_scalar(EXPIRE_WEBHOOK_DELIVERIES)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .context("expiring webhook deliveries")?;
        sqlx::query(SKIP_STALE_EVENTS)
            .bind(stale_before)
            .execute(&self.pool)
            .await
            .context("skipping stale events")?;
        Ok(expired)
    }

    async fn disable_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpointRecord,
        audit: &AuditEventRecord,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let disabled = sqlx::query(DISABLE_WEBHOOK_ENDPOINT)
            .bind(&endpoint.endpoint)
            .bind(endpoint.disabled_at)
            .bind(&endpoint.reason)
            .execute(&mut *tx)
            .await
            .context("disabling a webhook endpoint")?
            .rows_affected();
        sqlx::query(DISABLE_WEBHOOK_DELIVERIES)
            .bind(&endpoint.endpoint)
            .execute(&mut *tx)
            .await
            .context("disabling webhook deliveries")?;
        if disabled > 0 {
            insert_audit(&mut *tx, audit).await?;
        }
        tx.commit().await.context("committing a disabled endpoint")?;
        Ok(disabled > 0)
    }

    async fn failed_webhook_deliveries(&self, limit: i64) -> anyhow::Result<Vec<WebhookDeliveryRecord>> {
        sqlx::query_as(FAILED_WEBHOOK_DELIVERIES)
            .bind(limit)
            .fetch_all(&self.readers)
            .await
            .context("reading failed webhook deliveries")
    }

    async fn replay_webhook_delivery(&self, delivery_id: &str, now: i64, give_up_at: i64) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let endpoint: Option<String> = sqlx::query_scalar(REPLAY_WEBHOOK_DELIVERY)
            .bind(delivery_id)
            .bind(now)
            .bind(give_up_at)
            .fetch_optional(&mut *tx)
            .await
            .context("replaying a webhook delivery")?;
        let Some(endpoint) = endpoint else {
            return Ok(false);
        };
        sqlx::query(ENABLE_WEBHOOK_ENDPOINT)
            .bind(&endpoint)
            .execute(&mut *tx)
            .await
            .context("enabling a webhook endpoint")?;
        tx.commit().await.context("committing a replay")?;
        Ok(true)
    }

    async fn replay_all_webhook_deliveries(&self, now: i64, give_up_at: i64) -> anyhow::Result<u64> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let replayed = sqlx::query(REPLAY_ALL_WEBHOOK_DELIVERIES)
            .bind(now)
            .bind(give_up_at)
            .execute(&mut *tx)
            .await
            .context("replaying webhook deliveries")?
            .rows_affected();
        sqlx::query(ENABLE_ALL_WEBHOOK_ENDPOINTS)
            .execute(&mut *tx)
            .await
            .context("enabling webhook endpoints")?;
        tx.commit().await.context("committing a replay")?;
        Ok(replayed)
    }

    async fn webhook_queue_depth(&self, endpoint: &str) -> anyhow::Result<i64> {
        sqlx::query_scalar(WEBHOOK_QUEUE_DEPTH)
            .bind(endpoint)
            .fetch_one(&self.readers)
            .await
            .context("counting webhook deliveries")
    }

    async fn mark_outbox_sent(&self, sent: &[SentMessage]) -> anyhow::Result<()> {
        macro_rules! column {
            ($($field:tt)+) => {
                sent.iter().map(|m| m.$($field)+.clone()).collect::<Vec<_>>()
            };
        }
        // One statement: its own transaction, one round trip for the batch.
        sqlx::query(MARK_OUTBOX_SENT_WITH_EVENTS)
            .bind(column!(message_id))
            .bind(column!(sent_at))
            .bind(column!(event.audit_event_id))
            .bind(column!(event.identity_id))
            .bind(column!(event.kind))
            .bind(column!(event.ip_address))
            .bind(column!(event.user_agent))
            .bind(column!(event.detail))
            .bind(column!(event.created_at))
            .execute(&self.pool)
            .await
            .context("marking messages sent")?;
        Ok(())
    }

    async fn mark_outbox_retry(
        &self,
        message_id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(MARK_OUTBOX_RETRY)
            .bind(message_id)
            .bind(next_attempt_at)
            .bind(error)
            .bind(attempts)
            .execute(&self.pool)
            .await
            .context("scheduling message retry")?;
        Ok(())
    }

    async fn mark_outbox_failed(&self, message_id: &str, attempts: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query(MARK_OUTBOX_FAILED)
            .bind(message_id)
            .bind(error)
            .bind(attempts)
            .execute(&self.pool)
            .await
            .context("marking message failed")?;
        Ok(())
    }

    async fn outbox_stats(&self) -> anyhow::Result<OutboxStats> {
        let (pending, oldest): (i64, Option<i64>) = sqlx::query_as(OUTBOX_STATS)
            .fetch_one(&self.readers)
            .await
            .context("reading outbox stats")?;
        Ok(OutboxStats {
            pending,
            oldest_pending_created_at: oldest,
        })
    }

    async fn purge(&self, rows_before: i64, audit_before: i64, now: i64) -> anyhow::Result<Purged> {
        let mut purged = Purged {
            recovery_flows: drain(&self.pool, PURGE_FLOWS, rows_before, now).await?,
            login_throttles: drain(&self.pool, PURGE_THROTTLES, rows_before, now).await?,
            outbox_messages: drain(&self.pool, PURGE_OUTBOX, rows_before, now).await?,
            sessions: drain(&self.pool, PURGE_SESSIONS, rows_before, now).await?,
            audit_events: 0,
            webhook_deliveries: drain(&self.pool, PURGE_WEBHOOKS, rows_before, now).await?,
        };
        if audit_before > 0 {
            purged.audit_events = drain(&self.pool, PURGE_AUDIT, audit_before, now).await?;
            purged.webhook_deliveries += drain(&self.pool, PURGE_UNSENT_WEBHOOKS, audit_before, now).await?;
        }
        Ok(purged)
    }

    async fn insert_audit_event(&self, event: &AuditEventRecord) -> anyhow::Result<()> {
        insert_audit(&self.pool, event).await
    }

    async fn audit_events(
        &self,
        identity_id: Option<&str>,
        since: Option<i64>,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditEventRecord>> {
        sqlx::query_as(AUDIT_EVENTS_SQL)
            .bind(identity_id)
            .bind(since.unwrap_or(0))
            .bind(limit)
            .fetch_all(&self.readers)
            .await
            .context("reading audit events")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_logged_url_shows_neither_the_password_nor_the_query_string() {
        let shown = super::redact("postgres://app:hunter2@db:5432/lk?sslmode=require&password=hunter3");
        assert_eq!(shown, "postgres://…@db:5432/lk?…");
        assert_eq!(super::redact("postgres://db/lk"), "postgres://db/lk");
    }
}
