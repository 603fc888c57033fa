//! The page a login without an account reads (`store::places`): the
//! sizes of `address` and `identity` in pages, read at the end of the
//! migration and then in the background at most every ten seconds, never
//! by the lookup itself (`pg_relation_size` costs about 10 µs, and
//! `relpages` in `pg_class` is 0 until the table's first vacuum).

use std::sync::Arc;

use sqlx::PgPool;

use crate::store::places::{Sizes, Table};

const TABLE_PAGES: &str = "select pg_relation_size('address') / current_setting('block_size')::bigint, \
     pg_relation_size('identity') / current_setting('block_size')::bigint";

#[derive(Default)]
pub struct Places {
    sizes: Sizes,
}

impl Places {
    /// The first tuple of the page at `place` in `table`, as a `tid`
    /// literal; asks for the table sizes again when they are old.
    pub fn tid(self: &Arc<Self>, pool: &PgPool, table: Table, place: i64) -> String {
        if self.sizes.claim_read() {
            let (places, pool) = (Arc::clone(self), pool.clone());
            tokio::spawn(async move {
                if let Err(error) = places.read(&pool).await {
                    tracing::warn!(%error, "reading the sizes of the login tables");
                }
            });
        }
        format!("({},1)", self.sizes.fold(table, place))
    }

    /// Reads the sizes now.
    pub async fn read(&self, pool: &PgPool) -> sqlx::Result<()> {
        let (address, identity) = sqlx::query_as::<_, (i64, i64)>(TABLE_PAGES).fetch_one(pool).await?;
        self.sizes.set(address - 1, identity - 1);
        Ok(())
    }
}
