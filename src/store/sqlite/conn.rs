//! SQLite connections: how one is opened, the pool of reading connections,
//! statements with `$n` parameters, and rows as records.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rusqlite::types::{FromSql, ToSql};
use rusqlite::{CachedStatement, Connection, OpenFlags, Row};

use crate::store::records::*;
use crate::store::{StoreError, StoreResult};

/// Idle reading connections kept open; more are opened when more threads read at once.
const IDLE_READERS: usize = 16;
/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

/// Where a `sqlite://` URL points. Query parameters (`?mode=rwc`) are
/// accepted and ignored: the file is always created when missing.
pub fn path_of(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("a SQLite URL starts with sqlite://")?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    anyhow::ensure!(
        !path.is_empty() && path != ":memory:",
        "a SQLite database must be a file (sqlite://latchkey.db), not {url}"
    );
    Ok(PathBuf::from(path))
}

/// Opens a connection with latchkey's settings: WAL, `synchronous=normal`
/// (a commit survives the process being killed), foreign keys,
/// `secure_delete` so deleted rows (a forgotten secret, purged flows) are
/// overwritten, not just unlinked, and the file memory-mapped, so reads
/// between two commits map the pages instead of copying them. (SQLite drops
/// a connection's whole map when another connection has committed, so
/// under a write flood each read maps its pages again; copying them with
/// `pread` instead measured the same: BENCHMARKS.md, 2026-12-06, later.)
/// The mapping covers the first 16 MiB, and pages beyond it are read into
/// the connection's own cache. Each connection maps the file on its own:
/// 64 MiB put the peak RSS of a reset flood after a verify flood at
/// 152–170 MB, against 104 MB, with no measurable gain in starts, verifies
/// or session checks (BENCHMARKS.md, 2026-12-05, night).
pub fn open(path: &Path, busy_timeout: Duration, create: bool) -> anyhow::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // One plan per statement, whatever is bound to it. Without this SQLite
    // (3.51) folds a bound `limit $n` into the plan and compiles the
    // statement again on every later execution (the courier's claim did, at
    // about 176,000 instructions each). No query here needs a plan that
    // depends on a bound value: partial indexes are matched on literals.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.execute_batch(
        "pragma journal_mode = wal; pragma synchronous = normal; pragma foreign_keys = on; \
         pragma secure_delete = on; pragma mmap_size = 16777216;",
    )
    .with_context(|| format!("configuring SQLite database {}", path.display()))?;
    Ok(conn)
}

/// Connections for reads outside the writer. A read is a point lookup or a
/// bounded page of a few microseconds, so it runs on the calling thread:
/// cheaper than handing it to another thread and back. WAL lets reads run
/// beside the writer without waiting for it.
pub struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: PathBuf, busy_timeout: Duration) -> Self {
        Self {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn read<T>(
        &self,
        what: &'static str,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let conn = match self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            Some(conn) => conn,
            None => open(&self.path, self.busy_timeout, false)?,
        };
        let outcome = read(&conn).context(what);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        outcome
    }
}

/// `$1`…`$32`, the names SQLite gives the shared statements' parameters.
const PARAMETERS: [&str; 32] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16", "$17",
    "$18", "$19", "$20", "$21", "$22", "$23", "$24", "$25", "$26", "$27", "$28", "$29", "$30", "$31", "$32",
];

/// `sql` prepared (from the connection's cache) with `$n` bound to
/// `params[n - 1]`, by name: SQLite numbers named parameters in the order
/// they first appear, which need not be `$n`'s.
pub fn statement<'c>(conn: &'c Connection, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    for (name, value) in PARAMETERS.iter().zip(params) {
        if let Some(index) = statement.parameter_index(name)? {
            statement.raw_bind_parameter(index, value)?;
        }
    }
    Ok(statement)
}

/// Runs a statement; the rows it changed.
pub fn execute(conn: &Connection, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<usize> {
    statement(conn, sql, params)?.raw_execute()
}

/// The first row, if any.
pub fn optional<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut statement = statement(conn, sql, params)?;
    let mut rows = statement.raw_query();
    rows.next()?.map(map).transpose()
}

/// Every row.
pub fn all<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = statement(conn, sql, params)?;
    let mut rows = statement.raw_query();
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(map(row)?);
    }
    Ok(found)
}

/// A write's error: a unique value already taken is a `Conflict` on `what`.
pub fn conflict_or(what: &'static str, context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation)
            if matches!(
                e.sqlite_error().map(|e| e.extended_code),
                Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
            ) =>
        {
            StoreError::Conflict(what)
        }
        _ => StoreError::Other(anyhow::Error::new(e).context(context)),
    }
}

/// Context for a write's error, as the store's error.
pub trait WriteContext<T> {
    fn or_fail(self, context: &'static str) -> StoreResult<T>;
}

impl<T> WriteContext<T> for rusqlite::Result<T> {
    fn or_fail(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| StoreError::Other(anyhow::Error::new(e).context(context)))
    }
}

/// A record read from a row by column name (`select *`).
pub trait FromRow: Sized {
    /// The record whose first column is expected at `at` (a join puts it
    /// after another record's).
    fn from_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Self>;
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Self::from_row_at(row, 0)
    }
}

/// Column `name`, looked for first at `at`, where the statement's column
/// list puts it, then by name. `Row::get` by name compares the name with
/// every column before it, which cost a session check 4 % of its CPU.
pub fn get_at<T: FromSql>(row: &Row<'_>, at: usize, name: &str) -> rusqlite::Result<T> {
    let statement: &rusqlite::Statement<'_> = row.as_ref();
    if statement.column_name(at).is_ok_and(|column| column == name) {
        return row.get(at);
    }
    row.get(name)
}

/// Debug builds: the column at `at` is named `name`, as a statement that
/// lists its columns for a positional read must have it.
fn debug_assert_listed(row: &Row<'_>, at: usize, name: &str) {
    if cfg!(debug_assertions) {
        let statement: &rusqlite::Statement<'_> = row.as_ref();
        assert_eq!(
            statement.column_name(at).ok(),
            Some(name),
            "column {at} of a listed statement"
        );
    }
}

macro_rules! from_row {
    ($($record:ident { $($field:ident),* $(,)? })*) => {
        $(impl $record {
            /// The columns the record reads, in order.
            #[allow(dead_code)]
            pub const FIELDS: &[&str] = &[$(stringify!($field)),*];
            /// How many columns the record reads.
            #[allow(dead_code)]
            const COLUMNS: usize = Self::FIELDS.len();

            /// The record from columns `at..` of a statement that names
            /// each of them in its own column list (no `*`), in `FIELDS`
            /// order: the statement fixes their positions, whatever the
            /// table's, so they are read by position, without comparing
            /// names. Only for such statements: a `select *` follows the
            /// table's order (a rebuilt table's can differ), so debug
            /// builds, every test among them, check each name.
            #[allow(dead_code, unused_assignments)]
            fn from_listed_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
                let mut next = at;
                Ok(Self { $($field: {
                    debug_assert_listed(row, next, stringify!($field));
                    let value = row.get(next)?;
                    next += 1;
                    value
                }),* })
            }
        }

        impl FromRow for $record {
            #[allow(unused_assignments)]
            fn from_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
                let mut next = at;
                Ok(Self { $($field: {
                    let value = get_at(row, next, stringify!($field))?;
                    next += 1;
                    value
                }),* })
            }
        })*
    };
}

from_row! {
    SigningKeyRecord { signing_key_id, sealed_private_key, public_key, created_at, retired_at, published_until }
    IdentityRecord {
        identity_id, username, password_hash, roles, created_at, updated_at, credential_epoch, frozen_at,
        recovery_paused_until,
    }
    AddressRecord { address_id, identity_id, kind, value, verified, created_at }
    RecoveryFlowRecord {
        recovery_flow_id, identity_id, decoy, address_key, channel, cookie_hash, code_hash, state,
        code_attempts, locale, expires_at, created_at, verified_at, used_at,
    }
    OutboxMessageRecord {
        outbox_message_id, identity_id, channel, sealed_payload, status, attempts, next_attempt_at,
        lease_until, last_error, created_at, sent_at,
    }
    SessionRecord {
        session_id, identity_id, token_hash, authenticated_at, expires_at, revoked_at, ip_address,
        user_agent, created_at,
    }
    AuditEventRecord { audit_event_id, identity_id, kind, ip_address, user_agent, detail, created_at }
    WebhookDeliveryRecord {
        webhook_delivery_id, endpoint, event_id, event_type, payload, status, attempts, next_attempt_at,
        lease_until, give_up_at, last_error, last_status, created_at, sent_at,
    }
    RefreshTokenRecord {
        refresh_token_id, family_id, session_id, identity_id, token_hash, expires_at, spent_at,
        revoked_at, created_at,
    }
}

impl FromRow for IdentityAddressRow {
    fn from_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        let address = at + IdentityRecord::COLUMNS;
        Ok(Self {
            identity: IdentityRecord::from_row_at(row, at)?,
            address_id: get_at(row, address, "address_id")?,
            kind: get_at(row, address + 1, "kind")?,
            value: get_at(row, address + 2, "value")?,
            verified: get_at(row, address + 3, "verified")?,
            address_created_at: get_at(row, address + 4, "address_created_at")?,
        })
    }
}

impl SessionIdentityRow {
    /// The columns of `SESSION_WITH_IDENTITY_BY_*`, in order.
    pub const SESSION_FIELDS: [&str; 8] = [
        "session_id",
        "token_hash",
        "authenticated_at",
        "expires_at",
        "revoked_at",
        "ip_address",
        "user_agent",
        "session_created_at",
    ];
    pub const ADDRESS_FIELDS: [&str; 5] = ["address_id", "kind", "value", "verified", "address_created_at"];

    /// Every column of `SESSION_WITH_IDENTITY_BY_*`, in order: the
    /// session's, the identity's, the address's.
    pub fn columns() -> impl Iterator<Item = &'static str> {
        (Self::SESSION_FIELDS.iter())
            .chain(IdentityRecord::FIELDS)
            .chain(&Self::ADDRESS_FIELDS)
            .copied()
    }

    /// A row of `SESSION_WITH_IDENTITY_BY_*`. Those statements name every
    /// column they return, so the positions are theirs and no schema
    /// change can move them: the columns are read by position, without
    /// the name comparisons of `get_at` (5 % of a session check's
    /// instructions). `the_session_statements_list_the_columns_in_field_order`
    /// holds the statements to these lists.
    pub fn from_listed_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        if cfg!(debug_assertions) {
            Self::columns()
                .enumerate()
                .for_each(|(at, name)| debug_assert_listed(row, at, name));
        }
        let address = Self::SESSION_FIELDS.len() + IdentityRecord::COLUMNS;
        Ok(Self {
            session_id: row.get(0)?,
            token_hash: row.get(1)?,
            authenticated_at: row.get(2)?,
            expires_at: row.get(3)?,
            revoked_at: row.get(4)?,
            ip_address: row.get(5)?,
            user_agent: row.get(6)?,
            session_created_at: row.get(7)?,
            identity: IdentityAddressRow {
                identity: IdentityRecord::from_listed_row_at(row, Self::SESSION_FIELDS.len())?,
                address_id: row.get(address)?,
                kind: row.get(address + 1)?,
                value: row.get(address + 2)?,
                verified: row.get(address + 3)?,
                address_created_at: row.get(address + 4)?,
            },
        })
    }
}

/// Applies the migrations sqlx's migrator would, keeping its
/// `_sqlx_migrations` table, so a database made by an earlier latchkey
/// carries on where it was.
pub fn migrate(conn: &mut Connection, migrator: &sqlx::migrate::Migrator) -> anyhow::Result<()> {
    conn.execute_batch(
        "create table if not exists _sqlx_migrations (version bigint primary key, description text not null, \
         installed_on timestamp not null default current_timestamp, success boolean not null, \
         checksum blob not null, execution_time bigint not null)",
    )
    .context("creating the migrations table")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let dirty: Option<i64> = tx
        .query_row(
            "select version from _sqlx_migrations where success = false limit 1",
            [],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if let Some(version) = dirty {
        anyhow::bail!("migration {version} was left partly applied; restore the database from a backup");
    }
    for migration in migrator.iter() {
        let applied: Option<Vec<u8>> = tx
            .query_row(
                "select checksum from _sqlx_migrations where version = ?1",
                [migration.version],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        match applied {
            Some(checksum) if checksum == *migration.checksum => continue,
            Some(_) => anyhow::bail!(
                "migration {} was changed after it was applied to this database",
                migration.version
            ),
            None => {}
        }
        let started = std::time::Instant::now();
        tx.execute_batch(migration.sql.as_str())
            .with_context(|| format!("applying migration {} ({})", migration.version, migration.description))?;
        tx.execute(
            "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
             values (?1, ?2, true, ?3, ?4)",
            rusqlite::params![
                migration.version,
                &*migration.description,
                &*migration.checksum,
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
            ],
        )?;
    }
    tx.commit().context("committing migrations")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record is read by name whichever order the columns come in: the
    /// position is only where it looks first.
    #[test]
    fn records_are_read_by_name_in_any_column_order() -> anyhow::Result<()> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "create table session (created_at integer, user_agent text, ip_address text, revoked_at integer, \
             expires_at integer, authenticated_at integer, token_hash text, identity_id text, session_id text); \
             insert into session values (9, 'agent', null, null, 5, 4, 'hash', 'identity', 'session');",
        )?;
        let read = conn.query_row("select * from session", [], SessionRecord::from_row)?;
        assert_eq!(
            (
                read.session_id.as_str(),
                read.identity_id.as_str(),
                read.token_hash.as_str()
            ),
            ("session", "identity", "hash")
        );
        assert_eq!((read.authenticated_at, read.expires_at, read.created_at), (4, 5, 9));
        assert_eq!(
            (read.revoked_at, read.ip_address, read.user_agent.as_deref()),
            (None, None, Some("agent"))
        );
        Ok(())
    }
}
