//! Argon2id hashing and verification on the blocking pool, with a bound on
//! how many run at once so a flood of logins cannot exhaust memory. Each
//! permit owns one 19 MiB block buffer that is reused from hash to hash:
//! freshly allocating it every time lets the allocator's heaps grow by
//! megabytes per request.

use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use argon2::password_hash::PasswordHash;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::{Algorithm, Argon2, Block, Params, PasswordVerifier as _, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

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
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let out = raw_hash(password.as_bytes(), &salt, blocks)?;
    Ok(format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

fn has_current_cost(parsed: &PasswordHash<'_>) -> bool {
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
    let mut salt = [0u8; 64];
    let valid = match (parsed.salt.map(|s| s.decode_b64(&mut salt)), parsed.hash) {
        (Some(Ok(salt)), Some(expected)) => raw_hash(password.as_bytes(), salt, blocks)
            .is_ok_and(|out| bool::from(out.as_slice().ct_eq(expected.as_bytes()))),
        _ => false,
    };
    Verification {
        valid,
        needs_rehash: false,
    }
}

impl PasswordHasher {
    /// `max_concurrent` hashes at once; 0 means one per CPU.
    pub async fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let permits = if max_concurrent == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            max_concurrent
        };
        let random = crate::domain::SecretToken::generate();
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
        })
    }

    /// Runs `work` on the blocking pool with a permit and a block buffer.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Blocks) -> T + Send + 'static) -> anyhow::Result<T> {
        let queued = std::time::Instant::now();
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        metrics::histogram!("argon2_queue_wait_seconds").record(queued.elapsed().as_secs_f64());
        let mut blocks = self
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(new_blocks);
        let (blocks, out) = tokio::task::spawn_blocking(move || {
            let out = work(&mut blocks);
            (blocks, out)
        })
        .await
        .context("argon2 task")?;
        self.buffers.lock().unwrap_or_else(|e| e.into_inner()).push(blocks);
        Ok(out)
    }

    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        self.run(move |blocks| hash_blocking(password.expose_secret(), blocks))
            .await?
    }

    /// Verifies against `stored`, or against the dummy hash when there is
    /// none (unknown account, no password yet) — always a full Argon2 run.
    pub async fn verify(&self, password: SecretString, stored: Option<&str>) -> anyhow::Result<Verification> {
        let real = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let outcome = self
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
        let hasher = PasswordHasher::new(1).await?;
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
        let hasher = PasswordHasher::new(1).await?;
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
        let salt = argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let weak = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 1, 1, None).unwrap_or_default(),
        );
        let hash = argon2::PasswordHasher::hash_password(&weak, b"pw", &salt).map(|h| h.to_string());
        let outcome = hash.map(|h| verify_blocking("pw", &h, &mut super::new_blocks()));
        assert!(outcome.is_ok_and(|o| o.valid && o.needs_rehash));
    }
}
