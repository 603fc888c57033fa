//! The census of stored password hashes: how many there are per algorithm
//! (the `latchkey_password_hashes{algorithm}` gauge, how far a migration to
//! Argon2id has come) and the hasher's failure floor — the time the slowest
//! kind of stored hash takes to check, so that a wrong password for an
//! imported bcrypt account costs what an unknown login costs. `serve` takes
//! it at start and every `INTERVAL`; and every password check first looks
//! whether an import (by this server, another instance or the CLI) wrote
//! identities since the census it has, and takes a new one before it checks
//! anything (`cover_imports`), so no imported hash is ever checked under a
//! floor that was set without it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::legacy::LegacyHash;
use super::password_hasher::current_prefix;
use crate::error::Result;
use crate::services::Services;
use crate::store::HASHES_IMPORTED_SETTING;

/// How often `serve` takes the census (the gauge follows rehashes at login within this).
pub const INTERVAL: Duration = Duration::from_secs(60);

/// How many imports the current floor covers (the count in
/// `HASHES_IMPORTED_SETTING`, read before the census read the hashes).
#[derive(Debug, Default)]
pub struct Covered(std::sync::atomic::AtomicU64);

impl Covered {
    fn covers(&self, mark: u64) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire) >= mark
    }

    fn set(&self, mark: u64) {
        self.0.fetch_max(mark, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The import count, 0 before any import.
async fn import_mark(services: &Services) -> Result<u64> {
    let mark = services.store.stored_setting(HASHES_IMPORTED_SETTING).await?;
    Ok(mark.and_then(|m| m.parse().ok()).unwrap_or(0))
}

/// Every label the gauge has, so one that drops to zero is shown as zero.
const ALGORITHMS: [&str; 15] = [
    "argon2id",
    "argon2i",
    "argon2d",
    "scrypt",
    "pbkdf2-sha256",
    "pbkdf2-sha512",
    "bcrypt",
    "md5-crypt",
    "sha256-crypt",
    "sha512-crypt",
    "ssha",
    "ssha256",
    "ssha512",
    "firebase-scrypt",
    "unknown",
];

/// The floor while the census cannot be taken (the database cannot be read):
/// safe for every cost an import accepts.
const FLOOR_WITHOUT_CENSUS: Duration = Duration::from_secs(2);

/// One census at a time per process: a census that read the hashes before
/// an import must not overwrite the floor the import's census set.
static TAKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The floor's margin over the slowest check measured: a check's time
/// varies, and the padded answers must not be the faster ones.
fn with_margin(slowest: Duration) -> Duration {
    slowest + slowest / 4 + Duration::from_millis(2)
}

/// Counts the stored hashes, sets the gauge, and calibrates the failure
/// floor: zero when every hash is latchkey's own, else the slowest of the
/// Argon2id check and a check of the costliest hash of each imported
/// algorithm (each measured once per process, with the longest password an
/// imported hash is checked against), with a margin. When the hashes cannot
/// be read, the floor becomes `FLOOR_WITHOUT_CENSUS` unless it is higher.
pub async fn take(services: &Services) -> Result<BTreeMap<&'static str, i64>> {
    let _one = TAKING.lock().await;
    take_alone(services).await
}

/// Takes the census first if an import wrote identities since the last one.
/// Called before every password check, known account or not (so the wait,
/// once after an import, says nothing about the account), and after the
/// account was read: an imported account that read saw has its import's
/// count visible here too. The census runs in a task of its own, so a
/// request that gives up (its client left, its time ran out) does not
/// abort one that others wait on; checks that waited for it do not take it
/// again. If it fails, the floor goes up to `FLOOR_WITHOUT_CENSUS` (above
/// every cost an import accepts) until the minute's census succeeds.
pub async fn cover_imports(services: &Services) -> Result<()> {
    let mark = import_mark(services).await?;
    if services.census.covers(mark) {
        return Ok(());
    }
    let services = services.clone();
    let taking = tokio::spawn(async move {
        let _one = TAKING.lock().await;
        if services.census.covers(mark) {
            return;
        }
        if let Err(e) = take_alone(&services).await {
            services.census.set(mark);
            tracing::error!(error = %e, "taking the password hash census after an import failed");
        }
    });
    taking
        .await
        .map_err(|e| anyhow::anyhow!("the password hash census stopped: {e}"))?;
    Ok(())
}

/// The census under `TAKING`; when any part of it fails, the floor becomes
/// `FLOOR_WITHOUT_CENSUS` unless it is higher.
async fn take_alone(services: &Services) -> Result<BTreeMap<&'static str, i64>> {
    let taken = count_and_calibrate(services).await;
    if taken.is_err() {
        let hasher = &services.hasher;
        hasher.set_failure_floor(hasher.failure_floor().max(FLOOR_WITHOUT_CENSUS));
    }
    taken
}

async fn count_and_calibrate(services: &Services) -> Result<BTreeMap<&'static str, i64>> {
    let mark = import_mark(services).await?;
    let current_like = format!("{}%", current_prefix());
    let census = services.store.password_hash_census(&current_like).await?;
    let mut counts: BTreeMap<&'static str, i64> = ALGORITHMS.iter().map(|a| (*a, 0)).collect();
    *counts.entry("argon2id").or_default() += census.current;
    // The costliest hash of each algorithm: at most one check per algorithm.
    let mut costliest: HashMap<&'static str, (u64, &str)> = HashMap::new();
    for stored in &census.others {
        match LegacyHash::parse(stored) {
            Ok(parsed) => {
                *counts.entry(parsed.algorithm()).or_default() += 1;
                let cost = parsed.cost();
                let entry = costliest.entry(parsed.algorithm()).or_insert((cost, stored));
                if cost > entry.0 {
                    *entry = (cost, stored);
                }
            }
            Err(_) => *counts.entry("unknown").or_default() += 1,
        }
    }
    for (algorithm, count) in &counts {
        metrics::gauge!("latchkey_password_hashes", "algorithm" => *algorithm).set(*count as f64);
    }
    let hasher = &services.hasher;
    let floor = if costliest.is_empty() {
        Duration::ZERO
    } else {
        let mut slowest = hasher.calibrate("argon2id:current", None).await?;
        for (algorithm, (cost, stored)) in costliest {
            let kind = format!("{algorithm}:{cost}");
            slowest = slowest.max(hasher.calibrate(&kind, Some(stored)).await?);
        }
        with_margin(slowest)
    };
    hasher.set_failure_floor(floor);
    services.census.set(mark);
    Ok(counts)
}
