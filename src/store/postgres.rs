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

use super::sql::impl_store;
use super::*;
use crate::config::DatabaseSettings;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const CLAIM_OUTBOX_SQL: &str = "update outbox_message set lease_until = $2, attempts = attempts + 1 \
     where outbox_message_id in (select outbox_message_id from outbox_message \
       where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1) \
       order by next_attempt_at limit $3 for update skip locked) \
     returning *";

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

pub struct PostgresStore {
    pool: PgPool,
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
        Ok(Self { pool })
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

impl_store!(PostgresStore, sqlx::Postgres);
