//! The SQLite backend: one file, WAL journal, foreign keys on.
//!
//! Writers are serialised by SQLite itself; every multi-statement operation
//! begins with its conditional write so the transaction holds the write lock
//! before it reads anything it decides on.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlitePool, Transaction};

use super::sql::impl_store;
use super::*;
use crate::config::DatabaseSettings;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const CLAIM_OUTBOX_SQL: &str = "update outbox_message set lease_until = $2, attempts = attempts + 1 \
     where outbox_message_id in (select outbox_message_id from outbox_message \
       where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1) \
       order by next_attempt_at limit $3) \
     returning *";

const AUDIT_EVENTS_SQL: &str = "select * from audit_event \
     where ($1 is null or identity_id = $1) and created_at >= $2 \
     order by created_at desc, audit_event_id limit $3";

/// SQLite has one writer at a time: the start's insert already serialises.
async fn lock_start_key(_tx: &mut Transaction<'_, sqlx::Sqlite>, _key: &str) -> anyhow::Result<()> {
    Ok(())
}

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(database_url: &str, settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url)
            .with_context(|| format!("invalid SQLite URL {database_url}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(settings.statement_timeout.max(Duration::from_secs(1)))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open SQLite database {database_url}"))?;
        Ok(Self { pool })
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);
