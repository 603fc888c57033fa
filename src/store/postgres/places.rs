//! Where a login without an account reads: the page of `address` (or of
//! `identity`, for a username) at the login's keyed place, modulo the
//! table's size in pages (`sql::identity_by_login!`). The sizes are read
//! in the background at most every ten seconds, never by the lookup
//! itself: `pg_relation_size` costs about 10 µs, and `relpages` in
//! `pg_class` is 0 until the table's first vacuum.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use sqlx::PgPool;

/// How long a table size is used before it is read again, in ms.
const REFRESH_MS: u64 = 10_000;

const TABLE_PAGES: &str = "select pg_relation_size('address') / current_setting('block_size')::bigint, \
     pg_relation_size('identity') / current_setting('block_size')::bigint";

pub struct Places {
    address_pages: AtomicI64,
    identity_pages: AtomicI64,
    /// When the sizes are next read, in ms since `epoch`: the first lookup
    /// reads them, and the lookup that takes a due read moves it on.
    due_ms: AtomicU64,
    epoch: Instant,
}

impl Default for Places {
    fn default() -> Self {
        Self {
            address_pages: AtomicI64::new(0),
            identity_pages: AtomicI64::new(0),
            due_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// Which table a lookup falls back on.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Address,
    Identity,
}

impl Places {
    /// The first tuple of the page at `place` in `table`, as a `tid`
    /// literal; asks for the table sizes again when they are old.
    pub fn tid(self: &Arc<Self>, pool: &PgPool, table: Table, place: i64) -> String {
        self.refresh_if_old(pool);
        let pages = match table {
            Table::Address => &self.address_pages,
            Table::Identity => &self.identity_pages,
        };
        format!("({},1)", place.rem_euclid(pages.load(Ordering::Relaxed).max(1)))
    }

    fn refresh_if_old(self: &Arc<Self>, pool: &PgPool) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.due_ms.load(Ordering::Relaxed);
        // One lookup of those that find the read due takes it.
        if now < due
            || self
                .due_ms
                .compare_exchange(due, now.saturating_add(REFRESH_MS), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let (places, pool) = (Arc::clone(self), pool.clone());
        tokio::spawn(async move {
            match sqlx::query_as::<_, (i64, i64)>(TABLE_PAGES).fetch_one(&pool).await {
                Ok((address, identity)) => {
                    places.address_pages.store(address, Ordering::Relaxed);
                    places.identity_pages.store(identity, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(%error, "reading the sizes of the login tables"),
            }
        });
    }
}
