//! The census of stored password hashes: how many there are per algorithm
//! (the `latchkey_password_hashes{algorithm}` gauge, how far a migration to
//! Argon2id has come) and the hasher's failure floor — the time the slowest
//! kind of stored hash takes to check, so that a wrong password for an
//! imported bcrypt account costs what an unknown login costs. `serve` takes
//! it at start, every `INTERVAL`, and after an import through the admin API.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::legacy::LegacyHash;
use super::password_hasher::current_prefix;
use crate::error::Result;
use crate::services::Services;

/// How often `serve` takes the census (an import by the CLI shows within this).
pub const INTERVAL: Duration = Duration::from_secs(60);

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
    let current_like = format!("{}%", current_prefix());
    let census = match services.store.password_hash_census(&current_like).await {
        Ok(census) => census,
        Err(e) => {
            let hasher = &services.hasher;
            hasher.set_failure_floor(hasher.failure_floor().max(FLOOR_WITHOUT_CENSUS));
            return Err(e.into());
        }
    };
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
    Ok(counts)
}
