//! Recovery starts written in groups: the starts waiting at one moment are
//! written by one statement, in one transaction with one commit.
//!
//! A start alone costs three round trips (`BEGIN` with its key's lock, the
//! start statement, `COMMIT`), a statement's planning and execution, and a
//! WAL flush. A group costs five round trips and one statement whatever its
//! size: it takes every key's lock (in one order, so groups on any instance
//! never wait for each other in a cycle), bounds its row-lock waits, then
//! `GROUP_START` admits each
//! start whose login has room under the start limit, counting the starts
//! before it in the group, and writes the admitted ones as a start alone
//! would, superseding older flows of the same login (in the group too). A
//! start is answered only after the commit. If the group fails, it is
//! rolled back and each start runs again in a transaction of its own, so
//! one start's failure never becomes another's.

use std::collections::HashSet;

use anyhow::Context;
use sqlx::PgPool;

use super::batches::{Batches, Pending};
use super::{Tx, refused_start, start_in};
use crate::store::{NewRecoveryFlow, StartOutcome};

/// The handle starts are written through; its batchers stop when it is dropped.
pub struct Starts {
    batches: Batches<NewRecoveryFlow, StartOutcome>,
}

impl Starts {
    pub fn spawn(pool: PgPool) -> Self {
        let batches = Batches::spawn("start", move |group| {
            let pool = pool.clone();
            async move { write(&pool, group).await }
        });
        Self { batches }
    }

    /// Writes `start` in the next group, answering once it has committed.
    pub async fn start(&self, start: &NewRecoveryFlow) -> anyhow::Result<StartOutcome> {
        self.batches.run(start.clone()).await
    }
}

/// Writes a group; if it fails, each start runs again alone, answered as
/// soon as its own transaction ends.
async fn write(pool: &PgPool, group: Vec<Pending<NewRecoveryFlow, StartOutcome>>) {
    let starts: Vec<&NewRecoveryFlow> = group.iter().map(|p| &p.request).collect();
    match write_group(pool, &starts).await {
        Ok(outcomes) => {
            for (pending, outcome) in group.into_iter().zip(outcomes) {
                pending.answer(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "a group of starts failed; each runs again alone");
            for pending in group {
                let outcome = start_in(pool, &pending.request).await;
                pending.answer(outcome);
            }
        }
    }
}

/// Locks every start key of a group in the order of its lock number; a
/// start alone takes one lock, which cannot close a cycle either.
const LOCK_KEYS: &str = "select pg_advisory_xact_lock(lock) from \
     (select distinct hashtextextended(key, 0) as lock from unnest($1::text[]) as key order by lock) as locks";

/// A group of starts (`$1`…`$31`: one array per column, in the order of
/// `start_in`'s statement) after their locks. A start is admitted while its
/// login started fewer than its limit since its window began, counting
/// every start before it in the group (so a group refuses, never admits,
/// more than starts one at a time would); of a login's admitted starts,
/// the newest keeps its code and the others are superseded as they are
/// written. Answers the ordinals (from 1) of the admitted starts.
/// The older flows are found through the group's logins (`= any`, on
/// `recovery_flow_address_idx`); `expires_at + 0` keeps the planner from
/// also scanning `recovery_flow_expires_idx` over every live flow, and a
/// join with `admitted` from scanning the table (each took 40 % of
/// PostgreSQL's CPU in a start flood).
const GROUP_START: &str = "with input as (select * from unnest($1::text[], $2::text[], $3::boolean[], \
       $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], \
       $12::bigint[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], \
       $19::text[], $20::bigint[], $21::text[], $22::text[], $23::text[], $24::bytea[], $25::text[], \
       $26::bigint[], $27::bigint[], $28::bigint[], $29::text[], $30::bigint[], $31::bigint[]) \
       with ordinality as i(recovery_flow_id, identity_id, decoy, address_key, channel, cookie_hash, code_hash, \
       state, locale, expires_at, created_at, window_start, start_limit, audit_event_id, audit_identity_id, \
       kind, ip_address, user_agent, detail, audit_created_at, outbox_message_id, message_identity_id, \
       message_channel, sealed_payload, status, attempts, next_attempt_at, lease_until, last_error, \
       message_created_at, sent_at, n)), \
     counted as (select i.*, row_number() over (partition by address_key order by n) as rank, \
       (select count(*) from recovery_flow f where f.address_key = i.address_key \
         and f.created_at > i.window_start) as recent from input i), \
     admitted as (select c.*, rank = max(rank) over (partition by address_key) as newest \
       from counted c where recent + rank - 1 < start_limit), \
     flow as (insert into recovery_flow (recovery_flow_id, identity_id, address_key, channel, cookie_hash, \
         code_hash, state, code_attempts, locale, expires_at, created_at, decoy) \
       select recovery_flow_id, identity_id, address_key, channel, cookie_hash, \
         case when newest or state <> 'sent' then code_hash end, \
         case when newest or state <> 'sent' then state else 'dead' end, \
         0, locale, expires_at, created_at, decoy from admitted), \
     superseded as (update recovery_flow f set state = 'dead', code_hash = null \
       where f.address_key = any($4::text[]) and f.address_key in (select address_key from admitted) \
         and f.state = 'sent' and f.expires_at + 0 > (select min(created_at) from admitted)), \
     audit as (insert into audit_event (audit_event_id, identity_id, kind, ip_address, user_agent, detail, \
         created_at, dispatched) \
       select audit_event_id, audit_identity_id, kind, ip_address, user_agent, detail, audit_created_at, false \
       from admitted), \
     message as (insert into outbox_message (outbox_message_id, channel, sealed_payload, status, attempts, \
         next_attempt_at, lease_until, last_error, created_at, sent_at, identity_id) \
       select outbox_message_id, message_channel, sealed_payload, status, attempts, next_attempt_at, \
         lease_until, last_error, message_created_at, sent_at, message_identity_id \
       from admitted where outbox_message_id is not null) \
     select n from admitted";

async fn write_group(pool: &PgPool, starts: &[&NewRecoveryFlow]) -> anyhow::Result<Vec<StartOutcome>> {
    if let [only] = starts {
        return Ok(vec![start_in(pool, only).await?]);
    }
    // Every row `GROUP_START` reads is found through an index; a plan
    // cached while the table was small would otherwise scan it whole.
    let mut tx = pool
        .begin_with("begin; set local enable_seqscan = off")
        .await
        .context("beginning a group of starts")?;
    let keys: Vec<&str> = starts.iter().map(|s| s.flow.address_key.as_str()).collect();
    sqlx::query(LOCK_KEYS)
        .bind(&keys)
        .execute(&mut *tx)
        .await
        .context("locking the start keys")?;
    // A group locks the live flows of several logins. An account's
    // recovery, freeze or cancellation locks one of its flows and then the
    // others (`CLOSE_IDENTITY_FLOWS`), so when two logins of one account
    // are in a group the two can wait for each other. The group gives way
    // first: it stops waiting long before PostgreSQL's deadlock check
    // (1 s) would pick a side, and its starts run again one at a time.
    sqlx::query("set local lock_timeout = '100ms'")
        .execute(&mut *tx)
        .await
        .context("bounding the group's lock waits")?;
    let admitted = insert_group(&mut tx, starts).await?;
    let mut outcomes = Vec::with_capacity(starts.len());
    for (ordinal, start) in (1..).zip(starts) {
        if admitted.contains(&ordinal) {
            outcomes.push(StartOutcome::Created);
        } else {
            outcomes.push(refused_start(&mut tx, start).await?);
        }
    }
    tx.commit().await.context("committing a group of starts")?;
    Ok(outcomes)
}

/// Runs `GROUP_START`; the ordinals of the admitted starts.
async fn insert_group(tx: &mut Tx<'_>, starts: &[&NewRecoveryFlow]) -> anyhow::Result<HashSet<i64>> {
    macro_rules! column {
        ($($field:tt)+) => {
            starts.iter().map(|s| s.$($field)+.clone()).collect::<Vec<_>>()
        };
    }
    macro_rules! message {
        ($field:ident) => {
            starts
                .iter()
                .map(|s| s.message.as_ref().map(|m| m.$field.clone()))
                .collect::<Vec<_>>()
        };
        (optional $field:ident) => {
            starts
                .iter()
                .map(|s| s.message.as_ref().and_then(|m| m.$field.clone()))
                .collect::<Vec<_>>()
        };
    }
    let limits: Vec<i64> = starts.iter().map(|s| s.start_limit()).collect();
    let rows: Vec<i64> = sqlx::query_scalar(GROUP_START)
        .bind(column!(flow.recovery_flow_id))
        .bind(column!(flow.identity_id))
        .bind(column!(flow.decoy))
        .bind(column!(flow.address_key))
        .bind(column!(flow.channel))
        .bind(column!(flow.cookie_hash))
        .bind(column!(flow.code_hash))
        .bind(column!(flow.state))
        .bind(column!(flow.locale))
        .bind(column!(flow.expires_at))
        .bind(column!(flow.created_at))
        .bind(column!(window_start))
        .bind(limits)
        .bind(column!(audit.audit_event_id))
        .bind(column!(audit.identity_id))
        .bind(column!(audit.kind))
        .bind(column!(audit.ip_address))
        .bind(column!(audit.user_agent))
        .bind(column!(audit.detail))
        .bind(column!(audit.created_at))
        .bind(message!(outbox_message_id))
        .bind(message!(optional identity_id))
        .bind(message!(channel))
        .bind(message!(optional sealed_payload))
        .bind(message!(status))
        .bind(message!(attempts))
        .bind(message!(next_attempt_at))
        .bind(message!(optional lease_until))
        .bind(message!(optional last_error))
        .bind(message!(created_at))
        .bind(message!(optional sent_at))
        .fetch_all(&mut **tx)
        .await
        .context("inserting a group of recovery flows")?;
    Ok(rows.into_iter().collect())
}
