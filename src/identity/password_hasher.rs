//! Argon2id hashing and verification on the blocking pool, with a bound on
//! how many run at once so a flood of logins cannot exhaust memory.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// OWASP Password Storage Cheat Sheet: Argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub valid: bool,
    /// The stored hash used other parameters; store a fresh one.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when an account is
    /// unknown so that path costs the same as a wrong password.
    dummy_hash: Arc<str>,
}

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow!("argon2 hashing: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, stored: &str) -> Verification {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification {
            valid: false,
            needs_rehash: false,
        };
    };
    // Verify with the parameters recorded in the hash itself.
    let valid = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
    let current = Params::try_from(&parsed).ok();
    let needs_rehash = valid
        && (parsed.algorithm.as_str() != "argon2id"
            || current
                .is_none_or(|p| p.m_cost() != MEMORY_KIB || p.t_cost() != ITERATIONS || p.p_cost() != PARALLELISM));
    Verification { valid, needs_rehash }
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
        let dummy = tokio::task::spawn_blocking(move || hash_blocking(random.expose()))
            .await
            .context("dummy hash task")??;
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: dummy.into(),
        })
    }

    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(move || hash_blocking(password.expose_secret()))
            .await
            .context("hash task")?
    }

    /// Verifies against `stored`, or against the dummy hash when there is
    /// none (unknown account, no password yet) — always a full Argon2 run.
    pub async fn verify(&self, password: SecretString, stored: Option<&str>) -> anyhow::Result<Verification> {
        let real = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let outcome = tokio::task::spawn_blocking(move || verify_blocking(password.expose_secret(), &stored))
            .await
            .context("verify task")?;
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
        let outcome = hash.map(|h| verify_blocking("pw", &h));
        assert!(outcome.is_ok_and(|o| o.valid && o.needs_rehash));
    }
}
