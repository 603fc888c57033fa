//! Retention: rows that only matter for a while — expired flows, ended
//! sessions, idle login throttles, delivered or decoy outbox rows, old audit
//! events — are deleted once they are older than `retention.flows` /
//! `retention.audit`, so attacker-chosen keys cannot grow the database
//! without bound. Run hourly by `serve` and on demand by `latchkey purge`.

use std::time::Duration;

use crate::error::Result;
use crate::services::Services;
use crate::store::Purged;
use crate::time::{ms, now_ms};

/// Flows are kept at least this long, whatever is configured: the daily
/// guess budgets and the hourly start limit count them.
const MIN_FLOW_RETENTION: Duration = Duration::from_secs(2 * 24 * 3600);

/// How often `serve` purges.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

pub async fn purge(services: &Services) -> Result<Purged> {
    let now = now_ms();
    let settings = &services.settings.retention;
    let rows_before = if settings.flows.is_zero() {
        0
    } else {
        now - ms(settings.flows.max(MIN_FLOW_RETENTION))
    };
    let audit_before = if settings.audit.is_zero() {
        0
    } else {
        now - ms(settings.audit)
    };
    Ok(services.store.purge(rows_before, audit_before, now).await?)
}
