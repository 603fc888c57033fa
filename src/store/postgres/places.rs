//! Where a login without an account reads: the page of `address` (or of
//! `identity`, for a username) at the login's keyed place, modulo the
//! table's size in pages (`sql::identity_by_login!`). The sizes are read
//! in the background at most every ten seconds, never by the lookup
//! itself: `pg_relation_size` costs about 10 µs, and `relpages` in
//! `pg_class` is 0 until the table's first vacuum.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

/// How long a table size is used before it is read again.
const REFRESH: Duration = Duration::from_secs(10);

const TABLE_PAGES: &str = "select pg_relation_size('address') / current_setting('block_size')::bigint, \
     pg_relation_size('identity') / current_setting('block_size')::bigint";

#[derive(Default)]
pub struct Places {
    address_pages: AtomicI64,
    identity_pages: AtomicI64,
    /// When the sizes were last asked for; `None` before the first time.
    asked_at: Mutex<Option<Instant>>,
    asking: AtomicBool,
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
        let now = Instant::now();
        {
            let Ok(mut asked_at) = self.asked_at.lock() else { return };
            if asked_at.is_some_and(|at| now.duration_since(at) < REFRESH) || self.asking.swap(true, Ordering::AcqRel) {
                return;
            }
            *asked_at = Some(now);
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
            places.asking.store(false, Ordering::Release);
        });
    }
}
