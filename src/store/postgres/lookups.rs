//! The identities of address logins read in groups: the lookups waiting at
//! one moment are read by one statement. A lookup alone costs PostgreSQL
//! about 90 µs of CPU, most of it the statement's round trip; in a group of
//! 16, about 35 µs (`pgbench`, BENCHMARKS.md). Each login in a group reads
//! exactly what it reads alone (`IDENTITY_BY_ADDRESS`), so a known and an
//! unknown login still cost the same.

use anyhow::Context;
use sqlx::{FromRow, PgPool, Row};

use super::IDENTITY_BY_ADDRESS;
use super::batches::{Batches, Pending};
use crate::store::{IdentityAddressRow, PLACEHOLDER_IDENTITY_ID};

/// An address login to look up: its kind, its value, and the first tuple
/// of the page of its place (`places::Places::tid`) for a login without an
/// account.
pub struct Lookup {
    pub kind: &'static str,
    pub value: String,
    pub place: String,
}

/// `IDENTITY_BY_ADDRESS` for each login of `$1`…`$3`, in order, its rows
/// numbered by the login's ordinal (`n`, from 1). `offset 0` keeps the
/// planner from flattening the lateral part: flattened, a generic plan
/// (which expects ten logins) joins by hashing the whole identity table.
const IDENTITIES_BY_ADDRESS: &str = "select l.n, r.* \
     from unnest($1::text[], $2::text[], $3::tid[]) with ordinality as l(kind, value, place, n) \
     cross join lateral (select i.*, a.address_id, a.kind, a.value, a.verified, \
         a.created_at as address_created_at \
       from identity i left join address a on a.identity_id = i.identity_id \
       where i.identity_id = coalesce((select identity_id from address where kind = l.kind and value = l.value), \
         (select identity_id from address where ctid >= l.place limit 1), \
         (select identity_id from address where ctid >= '(0,1)'::tid limit 1), $4) \
       offset 0) as r \
     order by l.n, r.address_created_at, r.kind, r.value";

/// The handle lookups are read through; its batchers stop when it is dropped.
pub struct Lookups {
    batches: Batches<Lookup, Vec<IdentityAddressRow>>,
}

impl Lookups {
    pub fn spawn(pool: PgPool) -> Self {
        let batches = Batches::spawn("lookup", move |group| {
            let pool = pool.clone();
            async move { read(&pool, group).await }
        });
        Self { batches }
    }

    /// The rows of `lookup` (`IDENTITY_BY_ADDRESS`), read in the next group.
    pub async fn identity(&self, lookup: Lookup) -> anyhow::Result<Vec<IdentityAddressRow>> {
        self.batches.run(lookup).await
    }
}

/// Reads a group and answers each lookup; if the group's statement fails,
/// each lookup is read again alone, as a start's is written.
async fn read(pool: &PgPool, group: Vec<Pending<Lookup, Vec<IdentityAddressRow>>>) {
    if group.len() > 1 {
        let lookups: Vec<&Lookup> = group.iter().map(|p| &p.request).collect();
        match read_group(pool, &lookups).await {
            Ok(found) => {
                for (pending, rows) in group.into_iter().zip(found) {
                    pending.answer(Ok(rows));
                }
                return;
            }
            Err(e) => tracing::debug!(error = %e, "a group of login lookups failed; each runs again alone"),
        }
    }
    for pending in group {
        let rows = read_one(pool, &pending.request).await;
        pending.answer(rows);
    }
}

/// `IDENTITY_BY_ADDRESS` for one login.
async fn read_one(pool: &PgPool, lookup: &Lookup) -> anyhow::Result<Vec<IdentityAddressRow>> {
    sqlx::query_as::<_, IdentityAddressRow>(IDENTITY_BY_ADDRESS)
        .bind(lookup.kind)
        .bind(&lookup.value)
        .bind(PLACEHOLDER_IDENTITY_ID)
        .bind(&lookup.place)
        .fetch_all(pool)
        .await
        .context("reading identity for login")
}

/// `IDENTITIES_BY_ADDRESS`: the rows of each lookup of `group`, in its order.
async fn read_group(pool: &PgPool, group: &[&Lookup]) -> anyhow::Result<Vec<Vec<IdentityAddressRow>>> {
    let rows = sqlx::query(IDENTITIES_BY_ADDRESS)
        .bind(group.iter().map(|l| l.kind).collect::<Vec<_>>())
        .bind(group.iter().map(|l| l.value.as_str()).collect::<Vec<_>>())
        .bind(group.iter().map(|l| l.place.as_str()).collect::<Vec<_>>())
        .bind(PLACEHOLDER_IDENTITY_ID)
        .fetch_all(pool)
        .await
        .context("reading identities for logins")?;
    let mut found: Vec<Vec<IdentityAddressRow>> = group.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let n: i64 = row.try_get("n").context("reading a login's ordinal")?;
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .context("a row of no login in the group")?;
        slot.push(IdentityAddressRow::from_row(&row).context("reading identity for login")?);
    }
    Ok(found)
}
