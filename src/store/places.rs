//! Where a login without an account reads (`sql::identity_by_login!`): the
//! row (SQLite) or page (PostgreSQL) at the login's keyed place, folded
//! into the table's size so that the place stays where it is while the
//! table grows, and the sizes that fold is taken over, read again at most
//! every ten seconds.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// How long a table size is used before it is read again, in ms.
const REFRESH_MS: u64 = 10_000;

/// `place` (a non-negative keyed number) folded into `0..=last`: its low
/// bits under the smallest all-ones mask that covers `last`, or under one
/// bit fewer when those are past `last`. A table that grows by a row moves
/// only the places whose low bits are that row's number, one in `mask + 1`
/// (growing past a power of two included: the bit that becomes usable was
/// folded away before). Taking `place % (last + 1)` instead moved nearly
/// every place on every insert: an account created between two starts of
/// the same unknown login sent the second to a cold row, while a known
/// login's own rows stayed warm. The places between `last - mask / 2` and
/// `mask / 2` are chosen twice as often as the rest.
pub fn fold(place: i64, last: i64) -> i64 {
    if last <= 0 {
        return 0;
    }
    let mask = (u64::MAX >> last.leading_zeros()) as i64;
    let low = place & mask;
    if low <= last { low } else { place & (mask >> 1) }
}

/// Which table a lookup falls back on.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// `address`, for an email or phone login.
    Address,
    /// `identity`, for a username.
    Identity,
}

/// The last row (SQLite's largest rowid) or page (PostgreSQL's) of the
/// two tables a lookup falls back on. A lookup never waits for them: the
/// one that finds them due claims the read, and the others fold over the
/// sizes they have.
pub struct Sizes {
    address: AtomicI64,
    identity: AtomicI64,
    /// When the sizes are next read, in ms since `epoch`.
    due_ms: AtomicU64,
    epoch: Instant,
}

impl Default for Sizes {
    fn default() -> Self {
        Self {
            address: AtomicI64::new(0),
            identity: AtomicI64::new(0),
            due_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Sizes {
    /// True for the one caller that should read the sizes now (the first,
    /// then one every ten seconds).
    pub fn claim_read(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.due_ms.load(Ordering::Relaxed);
        now >= due
            && self
                .due_ms
                .compare_exchange(due, now.saturating_add(REFRESH_MS), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Lets the next caller read the sizes again (after a failed read).
    pub fn retry(&self) {
        self.due_ms.store(0, Ordering::Relaxed);
    }

    /// Sizes just read. The due time stays as the claim set it: the read
    /// at `migrate` leaves the first lookup its own, after whatever was
    /// written in between.
    pub fn set(&self, address_last: i64, identity_last: i64) {
        self.address.store(address_last, Ordering::Relaxed);
        self.identity.store(identity_last, Ordering::Relaxed);
    }

    /// `place` folded into `table`'s size.
    pub fn fold(&self, table: Table, place: i64) -> i64 {
        let last = match table {
            Table::Address => &self.address,
            Table::Identity => &self.identity,
        };
        fold(place, last.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::fold;

    /// Places spread over the keyed numbers' range, as HMAC outputs would.
    fn places() -> impl Iterator<Item = i64> {
        (0..2_000u64).map(|n| (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1) as i64)
    }

    #[test]
    fn a_place_is_always_inside_the_table() {
        for last in (0..600).chain([1 << 20, (1 << 20) + 1, i64::MAX / 3]) {
            for place in places() {
                let at = fold(place, last);
                assert!((0..=last.max(0)).contains(&at), "fold({place}, {last}) = {at}");
            }
        }
    }

    #[test]
    fn a_growing_table_moves_few_places_per_row() {
        let mut moved = 0;
        let mut steps = 0;
        for last in 1_100..2_000 {
            steps += 1;
            moved += places().filter(|&p| fold(p, last) != fold(p, last + 1)).count();
        }
        // One in 2,048 per row here (mask 2047); `%` moved nearly all.
        let per_row = moved as f64 / f64::from(steps) / 2_000.0;
        assert!(per_row < 0.002, "{per_row:.4} of the places moved per row");
    }

    #[test]
    fn growing_past_a_power_of_two_moves_no_more_places_than_another_row() {
        for last in [1_023, 4_095, 65_535] {
            let moved = places().filter(|&p| fold(p, last) != fold(p, last + 1)).count();
            assert!(moved <= 3, "{moved} of 2,000 places moved from {last} to {}", last + 1);
        }
    }

    #[test]
    fn odd_sizes_and_places_stay_in_range() {
        for (place, last) in [(0, -1), (i64::MAX, -5), (-1, 10), (i64::MIN, 10), (i64::MAX, i64::MAX)] {
            let at = fold(place, last);
            assert!((0..=last.max(0)).contains(&at), "fold({place}, {last}) = {at}");
        }
    }

    #[test]
    fn every_row_of_a_table_is_some_place() {
        let last = 700;
        let hit: std::collections::BTreeSet<i64> = (0..4_096).map(|place| fold(place, last)).collect();
        assert_eq!(hit, (0..=last).collect());
    }
}
