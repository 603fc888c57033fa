//! The SQLite backend: one file, WAL journal, foreign keys on.
//!
//! SQLite allows one writer at a time, and a connection that finds the write
//! lock taken sleeps in its busy handler (1, 2, 5, 10 … ms). So every write
//! goes through a pool of one connection, where writers queue without
//! sleeping, and reads use a pool of their own (WAL lets them run beside the
//! writer). Every multi-statement operation begins with its conditional
//! write, so the transaction holds the write lock before it reads anything
//! it decides on.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::sql::{impl_store, streak};
use super::*;
use crate::config::DatabaseSettings;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const CLAIM_OUTBOX_SQL: &str = "update outbox_message set lease_until = $2, attempts = attempts + 1 \
     where outbox_message_id in (select outbox_message_id from outbox_message \
       where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1) \
       order by next_attempt_at limit $3) \
     returning *";

/// Every write runs on the one writer connection, so a plain read inside the
/// transaction cannot be overtaken by another write.
const IDENTITY_EPOCH_SQL: &str = "select credential_epoch from identity where identity_id = $1";

/// `secure_delete` zeroed the deleted row's page; a checkpoint writes that
/// page back into the main file and truncates the WAL that held the old one.
/// Readers of a running `serve` can keep it busy for a moment: retried.
async fn scrub_settings(pool: &SqlitePool) -> anyhow::Result<()> {
    for _ in 0..50 {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("pragma wal_checkpoint(truncate)")
            .fetch_one(pool)
            .await
            .context("checkpointing the WAL")?;
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "the WAL could not be checkpointed (readers are busy); the deleted row may remain in the -wal file until \
         the next checkpoint: stop `latchkey serve` and run `sqlite3 latchkey.db 'pragma wal_checkpoint(truncate)'`"
    )
}

const AUDIT_EVENTS_SQL: &str = "select * from audit_event \
     where ($1 is null or identity_id = $1) and created_at >= $2 \
     order by created_at desc, audit_event_id limit $3";

pub struct SqliteStore {
    /// The one writer connection.
    pool: SqlitePool,
    /// Connections for reads outside a transaction.
    readers: SqlitePool,
    /// Recovery starts, committed in groups by `start_writer`.
    starts: mpsc::Sender<StartJob>,
}

type StartJob = (NewRecoveryFlow, oneshot::Sender<anyhow::Result<StartOutcome>>);

/// Most starts one transaction commits.
const MAX_STARTS_PER_COMMIT: usize = 64;

/// Group commit for recovery starts, the busiest write: every start waiting
/// when the writer is free goes into one transaction, so the commit's WAL
/// write is shared. A start is answered only after its transaction commits,
/// so no answered start is lost. If a group fails, each of its starts is
/// retried alone, so one start's error is never another's.
async fn start_writer(pool: SqlitePool, mut jobs: mpsc::Receiver<StartJob>) {
    let mut batch = Vec::with_capacity(MAX_STARTS_PER_COMMIT);
    while jobs.recv_many(&mut batch, MAX_STARTS_PER_COMMIT).await > 0 {
        match commit_starts(&pool, batch.iter().map(|(start, _)| start)).await {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(_) => {
                for (start, reply) in batch.drain(..) {
                    let outcome = commit_starts(&pool, std::iter::once(&start)).await;
                    let _ = reply.send(outcome.and_then(|mut o| o.pop().context("no outcome")));
                }
            }
        }
    }
}

async fn commit_starts<'a>(
    pool: &SqlitePool,
    starts: impl Iterator<Item = &'a NewRecoveryFlow>,
) -> anyhow::Result<Vec<StartOutcome>> {
    let mut tx = pool.begin().await.context("beginning transaction")?;
    let mut outcomes = Vec::new();
    for start in starts {
        outcomes.push(start_once(&mut tx, start).await?);
    }
    tx.commit().await.context("committing recovery flows")?;
    Ok(outcomes)
}

/// A start's statements (the same as `start_in`'s) as one multi-statement
/// query, which sqlx's SQLite worker runs in one hand-off instead of four.
/// The flow insert is conditional on the start limit; every later statement
/// writes only if the new flow's row exists, so a refused start writes
/// nothing. `$n` parameters are numbered across the statements.
macro_rules! start_sql {
    () => {
        "insert into recovery_flow (recovery_flow_id, identity_id, address_key, channel, cookie_hash, code_hash, \
           state, code_attempts, locale, expires_at, created_at, decoy) \
         select $1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $13 \
         where (select count(*) from recovery_flow where address_key = $3 and created_at > $11) < $12; \
         update recovery_flow set state = 'dead', code_hash = null \
         where address_key = $3 and state = 'sent' and recovery_flow_id <> $1 \
           and exists (select 1 from recovery_flow where recovery_flow_id = $1); \
         insert into audit_event (audit_event_id, identity_id, kind, ip_address, user_agent, detail, created_at) \
         select $14, $15, $16, $17, $18, $19, $20 where exists (select 1 from recovery_flow where recovery_flow_id = $1)"
    };
}
const START_SQL: &str = start_sql!();
const START_WITH_MESSAGE_SQL: &str = concat!(
    start_sql!(),
    "; insert into outbox_message (outbox_message_id, channel, sealed_payload, status, attempts, \
       next_attempt_at, lease_until, last_error, created_at, sent_at, identity_id) \
     select $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31 \
     where exists (select 1 from recovery_flow where recovery_flow_id = $1)"
);

async fn start_once(tx: &mut Transaction<'_, sqlx::Sqlite>, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
    let sql = if start.message.is_some() {
        START_WITH_MESSAGE_SQL
    } else {
        START_SQL
    };
    let mut query = bind_audit(bind_flow(sqlx::query(sql), start), &start.audit);
    if let Some(message) = &start.message {
        query = bind_outbox(query, message);
    }
    let written = query.execute(&mut **tx).await.context("inserting recovery flow")?;
    if written.rows_affected() > 0 {
        Ok(StartOutcome::Created)
    } else {
        refused_start(tx, start).await
    }
}

impl SqliteStore {
    async fn run_start(&self, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.starts
            .send((start.clone(), reply))
            .await
            .map_err(|_| anyhow::anyhow!("the start writer has stopped"))?;
        outcome.await.context("the start writer has stopped")?
    }

    pub async fn connect(database_url: &str, settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url)
            .with_context(|| format!("invalid SQLite URL {database_url}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(settings.statement_timeout.max(Duration::from_secs(1)))
            .foreign_keys(true)
            // Deleted rows (a forgotten secret, purged flows) are overwritten, not just unlinked.
            .pragma("secure_delete", "on");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open SQLite database {database_url}"))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .connect_with(options.create_if_missing(false))
            .await
            .with_context(|| format!("cannot open SQLite database {database_url}"))?;
        let (starts, jobs) = mpsc::channel(4 * MAX_STARTS_PER_COMMIT);
        tokio::spawn(start_writer(pool.clone(), jobs));
        Ok(Self { pool, readers, starts })
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);
