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

/// The floor's margin over the slowest check measured: a check's time
/// varies, and the padded answers must not be the faster ones.
fn with_margin(slowest: Duration) -> Duration {
    slowest + slowest / 4 + Duration::from_millis(2)
}

/// Counts the stored hashes, sets the gauge, and calibrates the failure
/// floor: zero when every hash is latchkey's own, else the slowest of the
/// Argon2id check and one check of each kind of imported hash (each kind
/// measured once per process), with a margin.
pub async fn take(services: &Services) -> Result<BTreeMap<&'static str, i64>> {
    let current_like = format!("{}%", current_prefix());
    let census = services.store.password_hash_census(&current_like).await?;
    let mut counts: BTreeMap<&'static str, i64> = ALGORITHMS.iter().map(|a| (*a, 0)).collect();
    *counts.entry("argon2id").or_default() += census.current;
    let mut kinds: HashMap<String, &str> = HashMap::new();
    for stored in &census.others {
        match LegacyHash::parse(stored) {
            Ok(parsed) => {
                *counts.entry(parsed.algorithm()).or_default() += 1;
                kinds.entry(parsed.cost_class()).or_insert(stored);
            }
            Err(_) => *counts.entry("unknown").or_default() += 1,
        }
    }
    for (algorithm, count) in &counts {
        metrics::gauge!("latchkey_password_hashes", "algorithm" => *algorithm).set(*count as f64);
    }
    let hasher = &services.hasher;
    let floor = if kinds.is_empty() {
        Duration::ZERO
    } else {
        let mut slowest = hasher.calibrate("argon2id:current", None).await?;
        for (kind, stored) in kinds {
            slowest = slowest.max(hasher.calibrate(&kind, Some(stored)).await?);
        }
        with_margin(slowest)
    };
    hasher.set_failure_floor(floor);
    Ok(counts)
}
