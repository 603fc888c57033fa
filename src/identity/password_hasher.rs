//! Argon2id hashing and verification on the blocking pool, with a bound on
//! how many run at once so a flood of logins cannot exhaust memory, and a
//! bound on how long a request waits for a slot (`password.max_queue_wait`):
//! past it, or when the queue ahead already promises a longer wait, the
//! request is answered 503 `overloaded` at once instead of waiting behind a
//! flood. Each
//! permit owns one 19 MiB block buffer that is reused from hash to hash:
//! freshly allocating it every time lets the allocator's heaps grow by
//! megabytes per request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, PasswordVerifier as _, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// OWASP Password Storage Cheat Sheet: Argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub valid: bool,
    /// The stored hash used other parameters; store a fresh one.
    pub needs_rehash: bool,
}

type Blocks = Vec<Block>;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// One reusable block buffer per permit.
    buffers: Arc<Mutex<Vec<Blocks>>>,
    /// A real hash of a random password, verified against when an account is
    /// unknown so that path costs the same as a wrong password.
    dummy_hash: Arc<str>,
    slots: usize,
    /// Longest wait for a slot; zero means no bound.
    max_wait: Duration,
    /// Requests waiting for a slot now.
    waiting: Arc<AtomicUsize>,
    /// Recent time one hash takes, in microseconds (moving average).
    recent_us: Arc<AtomicU64>,
}

/// Counts a waiting request while it lives.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn overloaded() -> Error {
    Error::Overloaded { retry_after_secs: 1 }
}

fn params() -> anyhow::Result<Params> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN)).map_err(|e| anyhow!("argon2 params: {e}"))
}

fn new_blocks() -> Blocks {
    vec![Block::default(); MEMORY_KIB as usize]
}

/// Argon2id of `password` and `salt` with the configured cost, into `blocks`.
fn raw_hash(password: &[u8], salt: &[u8], blocks: &mut Blocks) -> anyhow::Result<[u8; OUTPUT_LEN]> {
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params()?)
        .hash_password_into_with_memory(password, salt, &mut out, blocks.as_mut_slice())
        .map_err(|e| anyhow!("argon2 hashing: {e}"))?;
    Ok(out)
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for a new password.
fn hash_blocking(password: &str, blocks: &mut Blocks) -> anyhow::Result<String> {
    let salt = crate::random::bytes::<SALT_LEN>();
    let out = raw_hash(password.as_bytes(), &salt, blocks)?;
    Ok(format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

fn has_current_cost(parsed: &PasswordHash) -> bool {
    parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && Params::try_from(parsed)
            .is_ok_and(|p| p.m_cost() == MEMORY_KIB && p.t_cost() == ITERATIONS && p.p_cost() == PARALLELISM)
        && parsed.hash.is_some_and(|h| h.len() == OUTPUT_LEN)
}

fn verify_blocking(password: &str, stored: &str, blocks: &mut Blocks) -> Verification {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification {
            valid: false,
            needs_rehash: false,
        };
    };
    if !has_current_cost(&parsed) {
        // An older cost: verify with the parameters recorded in the hash, then ask for a rehash.
        let valid = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        return Verification {
            valid,
            needs_rehash: valid,
        };
    }
    let valid = match (&parsed.salt, &parsed.hash) {
        (Some(salt), Some(expected)) => raw_hash(password.as_bytes(), salt.as_ref(), blocks)
            .is_ok_and(|out| bool::from(out.as_slice().ct_eq(expected.as_bytes()))),
        _ => false,
    };
    Verification {
        valid,
        needs_rehash: false,
    }
}

impl PasswordHasher {
    /// `max_concurrent` hashes at once (0 means one per CPU), each waiting at
    /// most `max_wait` for its turn (zero: no bound).
    pub async fn new(max_concurrent: usize, max_wait: Duration) -> anyhow::Result<Self> {
        let permits = if max_concurrent == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            max_concurrent
        };
        let random = crate::domain::SecretToken::generate();
        let began = Instant::now();
        let (dummy, blocks) = tokio::task::spawn_blocking(move || {
            let mut blocks = new_blocks();
            hash_blocking(random.expose(), &mut blocks).map(|hash| (hash, blocks))
        })
        .await
        .context("dummy hash task")??;
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits)),
            buffers: Arc::new(Mutex::new(vec![blocks])),
            dummy_hash: dummy.into(),
            slots: permits,
            max_wait,
            waiting: Arc::new(AtomicUsize::new(0)),
            recent_us: Arc::new(AtomicU64::new(micros(began.elapsed()))),
        })
    }

    /// The wait the queue ahead promises: every slot's share of the waiting
    /// requests, each taking about as long as recent hashes took.
    fn expected_wait(&self, ahead: usize) -> Duration {
        let rounds = u64::try_from(ahead / self.slots.max(1)).unwrap_or(u64::MAX);
        Duration::from_micros(self.recent_us.load(Ordering::Relaxed).saturating_mul(rounds))
    }

    /// A turn at the hasher, waited for at most `max_wait` — refused at once
    /// when the queue ahead already promises a longer wait. Take it before
    /// committing anything the hash is for (a reserved login attempt, a spent
    /// code), so an `overloaded` answer costs the client nothing.
    pub async fn slot(&self) -> Result<Slot> {
        let queued = Instant::now();
        let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(self.waiting.clone());
        let acquire = self.permits.clone().acquire_owned();
        let permit = if self.max_wait.is_zero() {
            acquire.await.context("hasher closed")?
        } else {
            if self.expected_wait(ahead) > self.max_wait {
                metrics::counter!("latchkey_argon2_overloaded_total").increment(1);
                return Err(overloaded());
            }
            match tokio::time::timeout(self.max_wait, acquire).await {
                Ok(permit) => permit.context("hasher closed")?,
                Err(_) => {
                    metrics::counter!("latchkey_argon2_overloaded_total").increment(1);
                    return Err(overloaded());
                }
            }
        };
        drop(waiting);
        metrics::histogram!("latchkey_argon2_queue_wait_seconds").record(queued.elapsed().as_secs_f64());
        Ok(Slot {
            hasher: self.clone(),
            _permit: permit,
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String> {
        self.slot().await?.hash(password).await
    }

    pub async fn verify(&self, password: SecretString, stored: Option<&str>) -> Result<Verification> {
        self.slot().await?.verify(password, stored).await
    }

    /// Runs `work` on the blocking pool with a block buffer (the caller holds a permit).
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Blocks) -> T + Send + 'static) -> Result<T> {
        let mut blocks = self
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(new_blocks);
        let began = Instant::now();
        let (blocks, out) = tokio::task::spawn_blocking(move || {
            let out = work(&mut blocks);
            (blocks, out)
        })
        .await
        .context("argon2 task")?;
        let took = micros(began.elapsed());
        // A moving average over about eight hashes.
        let previous = self.recent_us.load(Ordering::Relaxed);
        self.recent_us
            .store(previous - previous / 8 + took / 8, Ordering::Relaxed);
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).push(blocks);
        Ok(out)
    }
}

/// One turn at the hasher (see `PasswordHasher::slot`); its hashes run
/// without waiting again.
pub struct Slot {
    hasher: PasswordHasher,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Slot {
    pub async fn hash(&self, password: SecretString) -> Result<String> {
        Ok(self
            .hasher
            .run(move |blocks| hash_blocking(password.expose_secret(), blocks))
            .await??)
    }

    /// Verifies against `stored`, or against the dummy hash when there is
    /// none (unknown account, no password yet) — always a full Argon2 run.
    pub async fn verify(&self, password: SecretString, stored: Option<&str>) -> Result<Verification> {
        let real = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.hasher.dummy_hash.clone(), Arc::from);
        let outcome = self
            .hasher
            .run(move |blocks| verify_blocking(password.expose_secret(), &stored, blocks))
            .await?;
        Ok(if real {
            outcome
        } else {
            Verification {
                valid: false,
                needs_rehash: false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{PasswordHasher, verify_blocking};

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_that_the_argon2_crate_verifies() -> anyhow::Result<()> {
        use argon2::PasswordVerifier as _;
        let hasher = PasswordHasher::new(1, std::time::Duration::ZERO).await?;
        let hash = hasher.hash(SecretString::from("a long enough passphrase")).await?;
        let parsed = argon2::PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("{e}"))?;
        assert!(
            argon2::Argon2::default()
                .verify_password(b"a long enough passphrase", &parsed)
                .is_ok()
        );
        Ok(())
    }
    use secrecy::SecretString;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() -> anyhow::Result<()> {
        let hasher = PasswordHasher::new(1, std::time::Duration::ZERO).await?;
        let hash = hasher.hash(SecretString::from("a long enough passphrase")).await?;
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let right = hasher
            .verify(SecretString::from("a long enough passphrase"), Some(&hash))
            .await?;
        assert!(right.valid && !right.needs_rehash);
        let wrong = hasher
            .verify(SecretString::from("another passphrase"), Some(&hash))
            .await?;
        assert!(!wrong.valid);
        let unknown = hasher
            .verify(SecretString::from("a long enough passphrase"), None)
            .await?;
        assert!(!unknown.valid);
        Ok(())
    }

    #[test]
    fn hashes_with_weaker_parameters_ask_for_a_rehash() {
        // m = 4096 KiB, t = 1: verifies, but is below the configured cost.
        let salt = crate::random::bytes::<16>();
        let weak = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 1, 1, None).unwrap_or_default(),
        );
        let hash =
            argon2::password_hash::PasswordHasher::<argon2::password_hash::phc::PasswordHash>::hash_password_with_salt(
                &weak, b"pw", &salt,
            )
            .map(|h| h.to_string());
        let outcome = hash.map(|h| verify_blocking("pw", &h, &mut super::new_blocks()));
        assert!(outcome.is_ok_and(|o| o.valid && o.needs_rehash));
    }
}
