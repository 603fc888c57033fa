//! The PostgreSQL backend, for many stateless instances sharing one database.
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, and starts for one login
//! are serialised with a transaction-scoped advisory lock, so limits hold
//! wherever a request lands.

use std::str::FromStr;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Transaction};

use super::sql::{impl_store, streak};
use super::*;
use crate::config::DatabaseSettings;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const CLAIM_OUTBOX_SQL: &str = "update outbox_message set lease_until = $2, attempts = attempts + 1 \
     where outbox_message_id in (select outbox_message_id from outbox_message \
       where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1) \
       order by next_attempt_at limit $3 for update skip locked) \
     returning *";

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

/// A start's statements inside `tx`. When the limit refuses it nothing
/// has been written (the insert is conditional), so the caller may
/// commit `tx` either way.
async fn start_in(tx: &mut Transaction<'_, sqlx::Postgres>, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
    let f = &start.flow;
    // Serialise starts for one login so the count below cannot be raced.
    lock_start_key(tx, &f.address_key).await?;
    let insert = sqlx::query(
        "insert into recovery_flow (recovery_flow_id, identity_id, address_key, channel, cookie_hash, code_hash, \
         state, code_attempts, locale, expires_at, created_at, decoy) \
         select $1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $13 \
         where (select count(*) from recovery_flow where address_key = $3 and created_at > $11) < $12",
    );
    let inserted = bind_flow(insert, start)
        .execute(&mut **tx)
        .await
        .context("inserting recovery flow")?;
    if inserted.rows_affected() == 0 {
        return refused_start(tx, start).await;
    }
    // A new flow supersedes the older flows of the same typed login, whether
    // or not it names an account, so what happens to them tells nothing.
    sqlx::query(
        "update recovery_flow set state = 'dead', code_hash = null \
         where address_key = $1 and state = 'sent' and recovery_flow_id <> $2",
    )
    .bind(&f.address_key)
    .bind(&f.recovery_flow_id)
    .execute(&mut **tx)
    .await
    .context("superseding older flows")?;
    if let Some(message) = &start.message {
        insert_outbox(tx, message).await?;
    }
    insert_audit(&mut **tx, &start.audit).await?;
    Ok(StartOutcome::Created)
}

pub struct PostgresStore {
    pool: PgPool,
    /// Reads share the one pool: PostgreSQL runs writers concurrently.
    readers: PgPool,
}

impl PostgresStore {
    /// A start in its own transaction; starts for one login queue on its advisory lock.
    async fn run_start(&self, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
        let mut tx = self.pool.begin().await.context("beginning transaction")?;
        let outcome = start_in(&mut tx, start).await?;
        tx.commit().await.context("committing recovery flow")?;
        Ok(outcome)
    }

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
        Ok(Self {
            readers: pool.clone(),
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_logged_url_shows_neither_the_password_nor_the_query_string() {
        let shown = super::redact("postgres://app:hunter2@db:5432/lk?sslmode=require&password=hunter3");
        assert_eq!(shown, "postgres://…@db:5432/lk?…");
        assert_eq!(super::redact("postgres://db/lk"), "postgres://db/lk");
    }
}

impl_store!(PostgresStore, sqlx::Postgres);
