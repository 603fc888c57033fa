//! Argon2id hashing and verification on a fixed pool of threads (one per
//! CPU unless configured), each owning one 19 MiB block buffer that it reuses
//! from hash to hash (allocating it afresh lets the allocator's heaps grow
//! by megabytes per request). A request first takes a `Slot`: admission to
//! the pool's queue, refused at once with 503 `overloaded` when the work
//! already admitted promises a longer wait than `password.max_queue_wait`.
//! The admitted work is the queue's bound, so a flood of logins cannot grow
//! it, and the threads never sit idle while an admitted request does its
//! database work before its hash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, PasswordVerifier as _, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

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
    /// The stored hash used other parameters, or another algorithm; store a fresh one.
    pub needs_rehash: bool,
    /// When a pool thread began the check (for `Slot::hold_failure`).
    pub began: Instant,
}

type Blocks = Vec<Block>;

/// One piece of work for a pool thread, given that thread's block buffer.
type Job = Box<dyn FnOnce(&mut Blocks) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    /// The pool's queue; the threads end when the last clone is dropped.
    jobs: mpsc::Sender<Job>,
    /// A real hash of a random password, verified against when an account is
    /// unknown so that path costs the same as a wrong password.
    dummy_hash: Arc<str>,
    threads: usize,
    /// Longest wait for a slot; zero means no bound.
    max_wait: Duration,
    /// Slots admitted and not yet dropped: running, queued, or about to queue.
    admitted: Arc<AtomicUsize>,
    /// Recent time one hash takes on a pool thread, in microseconds (moving average).
    recent_us: Arc<AtomicU64>,
    /// The least time a failing check takes, in microseconds: the slowest
    /// imported hash's check (see `identity::census`), so a wrong password
    /// for an account with a slow legacy hash and an unknown login answer
    /// alike. Zero while every hash is latchkey's own Argon2id.
    floor_us: Arc<AtomicU64>,
    /// How long one check of each kind of stored hash took (`calibrate`).
    calibrated: Arc<Mutex<HashMap<String, Duration>>>,
}

/// Counts an admitted slot while it lives.
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts `threads` pool threads sharing one queue.
fn start_pool(threads: usize, recent_us: &Arc<AtomicU64>) -> anyhow::Result<mpsc::Sender<Job>> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..threads {
        let (queue, recent_us) = (queue.clone(), recent_us.clone());
        std::thread::Builder::new()
            .name(format!("argon2-{n}"))
            .spawn(move || {
                let mut blocks = new_blocks();
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { return };
                    let began = Instant::now();
                    job(&mut blocks);
                    // A moving average over about eight hashes, from the first one.
                    let took = micros(began.elapsed());
                    let previous = recent_us.load(Ordering::Relaxed);
                    let average = if previous == 0 {
                        took
                    } else {
                        previous - previous / 8 + took / 8
                    };
                    recent_us.store(average, Ordering::Relaxed);
                }
            })
            .context("starting an argon2 thread")?;
    }
    Ok(jobs)
}

/// The last leg of a failure's wait (`PasswordHasher::hold_failure`): short
/// enough that the kernel's slack is the plain timer slack and tokio keeps
/// it on its finest wheel.
const LAST_LEG: Duration = Duration::from_millis(10);

fn overloaded() -> Error {
    Error::Overloaded { retry_after_secs: 1 }
}

fn params() -> anyhow::Result<Params> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN)).map_err(|e| anyhow!("argon2 params: {e}"))
}

fn new_blocks() -> Blocks {
    let mut blocks: Blocks = Vec::with_capacity(MEMORY_KIB as usize);
    huge_pages(&blocks);
    blocks.resize(MEMORY_KIB as usize, Block::default());
    blocks
}

/// Asks the kernel to back the (not yet touched) block buffer with 2 MiB pages.
fn huge_pages(blocks: &Blocks) {
    const HUGE: usize = 2 << 20;
    let start = blocks.as_ptr() as usize;
    let end = start + blocks.capacity() * std::mem::size_of::<Block>();
    let (first, last) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
    if last > first {
        // SAFETY: the range lies inside the buffer's own allocation, and
        // MADV_HUGEPAGE changes only how its pages are backed, not their contents.
        unsafe {
            libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE);
        }
    }
}

/// Argon2id of `password` and `salt` with the configured cost, into `blocks`.
fn raw_hash(password: &[u8], salt: &[u8], blocks: &mut Blocks) -> anyhow::Result<[u8; OUTPUT_LEN]> {
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params()?)
        .hash_password_into_with_memory(password, salt, &mut out, blocks.as_mut_slice())
        .map_err(|e| anyhow!("argon2 hashing: {e}"))?;
    Ok(out)
}

/// Ends a check of a hash that is not latchkey's own (imported, or Argon2
/// under other parameters, which runs in memory of its own) the way every
/// Argon2id check ends: one Argon2id run over the thread's 19 MiB of
/// blocks, under a random salt, its result dropped. What
/// a check leaves behind shows in what follows it: an Argon2id run evicts
/// the caches the answer's own work then misses in, a bcrypt run (4 KiB of
/// state) does not, and the timing tests told a wrong password for an
/// imported bcrypt account from an unknown login by the ~0.1 ms the answer
/// took after the same failure floor. The floor covers this run too (it is
/// measured with it).
fn argon2_tail(password: &str, blocks: &mut Blocks) {
    let salt = crate::random::bytes::<SALT_LEN>();
    std::hint::black_box(raw_hash(password.as_bytes(), &salt, blocks).ok());
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

/// The start of every hash made under the current parameters.
pub fn current_prefix() -> String {
    format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}$")
}

fn has_current_cost(parsed: &PasswordHash) -> bool {
    parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && Params::try_from(parsed)
            .is_ok_and(|p| p.m_cost() == MEMORY_KIB && p.t_cost() == ITERATIONS && p.p_cost() == PARALLELISM)
        && parsed.hash.is_some_and(|h| h.len() == OUTPUT_LEN)
}

/// Whether `stored` is an Argon2 PHC string (latchkey's own format).
fn is_argon2(stored: &str) -> bool {
    stored.starts_with("$argon2")
}

/// Whether latchkey made `stored`: Argon2id under the current parameters,
/// which latchkey has used since its first release, of the NFKC form of the
/// password. Any other hash was imported, made by another system from the
/// password as it was typed.
pub fn is_own(stored: &str) -> bool {
    stored.starts_with(&current_prefix())
}

/// (valid, needs a rehash)
fn verify_blocking(password: &str, stored: &str, blocks: &mut Blocks) -> (bool, bool) {
    let outcome = verify_against(password, stored, blocks);
    if !is_own(stored) {
        argon2_tail(password, blocks);
    }
    outcome
}

fn verify_against(password: &str, stored: &str, blocks: &mut Blocks) -> (bool, bool) {
    if !is_argon2(stored) {
        // An imported hash: always replaced once the password is known.
        let valid = super::legacy::LegacyHash::parse(stored).is_ok_and(|h| h.verify(password.as_bytes()));
        return (valid, valid);
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return (false, false);
    };
    if !has_current_cost(&parsed) {
        // An older cost: verify with the parameters recorded in the hash, then ask for a rehash.
        let valid = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        return (valid, valid);
    }
    let valid = match (&parsed.salt, &parsed.hash) {
        (Some(salt), Some(expected)) => raw_hash(password.as_bytes(), salt.as_ref(), blocks)
            .is_ok_and(|out| bool::from(out.as_slice().ct_eq(expected.as_bytes()))),
        _ => false,
    };
    (valid, false)
}

impl PasswordHasher {
    /// A pool of `threads` Argon2 threads (0 means one per CPU); a slot is
    /// refused when the work ahead promises a wait over `max_wait` (zero: no
    /// bound).
    pub async fn new(threads: usize, max_wait: Duration) -> anyhow::Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let recent_us = Arc::new(AtomicU64::new(0));
        let jobs = start_pool(threads, &recent_us)?;
        let mut hasher = Self {
            jobs,
            dummy_hash: Arc::from(""),
            threads,
            max_wait,
            admitted: Arc::new(AtomicUsize::new(0)),
            recent_us,
            floor_us: Arc::new(AtomicU64::new(0)),
            calibrated: Arc::default(),
        };
        let random = crate::domain::SecretToken::generate();
        let dummy = hasher
            .run(move |blocks| hash_blocking(random.expose(), blocks))
            .await??;
        hasher.dummy_hash = dummy.into();
        Ok(hasher)
    }

    /// The wait the work ahead promises: every thread's share of it, each
    /// hash taking about as long as recent hashes took.
    fn expected_wait(&self, ahead: usize) -> Duration {
        let rounds = u64::try_from(ahead / self.threads.max(1)).unwrap_or(u64::MAX);
        Duration::from_micros(self.recent_us.load(Ordering::Relaxed).saturating_mul(rounds))
    }

    /// Admission to the hasher, refused at once when the work already
    /// admitted promises a wait over `max_wait`. Take it before committing
    /// anything the hash is for (a reserved login attempt, a spent code), so
    /// an `overloaded` answer costs the client nothing; once admitted, the
    /// hash runs.
    pub fn slot(&self) -> Result<Slot> {
        let ahead = self.admitted.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted(self.admitted.clone());
        if !self.max_wait.is_zero() && self.expected_wait(ahead) > self.max_wait {
            metrics::counter!("latchkey_argon2_overloaded_total").increment(1);
            return Err(overloaded());
        }
        Ok(Slot {
            hasher: self.clone(),
            _admitted: admitted,
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String> {
        self.slot()?.hash(password).await
    }

    pub async fn verify(&self, password: SecretString, stored: Option<&str>) -> Result<Verification> {
        self.slot()?.verify(password, stored).await
    }

    /// Runs `work` on a pool thread with that thread's block buffer.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Blocks) -> T + Send + 'static) -> Result<T> {
        Ok(self.run_timed(work).await?.0)
    }

    /// `run`, also answering when the pool thread began the work and how long it took.
    async fn run_timed<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Blocks) -> T + Send + 'static,
    ) -> Result<(T, Instant, Duration)> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        let job: Job = Box::new(move |blocks| {
            metrics::histogram!("latchkey_argon2_queue_wait_seconds").record(queued.elapsed().as_secs_f64());
            let began = Instant::now();
            let out = work(blocks);
            // Nobody may be waiting any more (a client that hung up).
            let _ = answer.send((out, began, began.elapsed()));
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("the argon2 pool has stopped"))?;
        Ok(answered.await.context("an argon2 thread dropped its job")?)
    }

    /// Waits until the failure floor has passed since `began` (when a pool
    /// thread began the check): every failed password check is answered no
    /// sooner, whichever hash it ran against. Call it after dropping the
    /// slot, so the wait holds no place in the queue.
    ///
    /// The wait ends with a leg of at most `LAST_LEG`, whatever came before
    /// it. How late a sleeping thread wakes grows with how long it slept:
    /// the kernel lets an `epoll_wait` timeout run late by 0.1 % of its
    /// length (at least the 50 µs timer slack), and tokio files a sleep of
    /// more than 64 ms on a coarser wheel. A wrong password for an imported
    /// hash sleeps a short remainder after its slow check, an unknown login
    /// most of the floor after a fast one: in one piece, the unknown login
    /// woke about 0.1 ms later, and the timing tests told them apart.
    pub async fn hold_failure(&self, began: Instant) {
        let deadline = began + self.failure_floor();
        if let Some(last_leg) = deadline.checked_sub(LAST_LEG)
            && Instant::now() < last_leg
        {
            tokio::time::sleep_until(last_leg.into()).await;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }

    /// The least time a failing check takes (see `floor_us`).
    pub fn failure_floor(&self) -> Duration {
        Duration::from_micros(self.floor_us.load(Ordering::Relaxed))
    }

    /// Sets the failure floor (the census calibrates it from the stored hashes).
    pub fn set_failure_floor(&self, floor: Duration) {
        self.floor_us.store(micros(floor), Ordering::Relaxed);
        metrics::gauge!("latchkey_password_failure_floor_seconds").set(floor.as_secs_f64());
    }

    /// How long checking a wrong password against hashes of one `kind`
    /// takes on a pool thread, measured (the slower of two checks against
    /// `stored`, or the dummy hash when `None`) the first time a kind is
    /// asked for and remembered after. Not admitted through a slot: the
    /// census asks, not a client.
    pub async fn calibrate(&self, kind: &str, stored: Option<&str>) -> Result<Duration> {
        if let Some(known) = self.calibrated.lock().unwrap_or_else(|e| e.into_inner()).get(kind) {
            return Ok(*known);
        }
        let stored: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let mut slowest = Duration::ZERO;
        for _ in 0..2 {
            // The longest password an imported hash is checked against: the costliest check.
            let random: String = hex::encode(crate::random::bytes::<64>());
            debug_assert_eq!(random.len(), super::legacy::MAX_LEGACY_PASSWORD_BYTES);
            let stored = stored.clone();
            let (_, _, took) = self
                .run_timed(move |blocks| verify_blocking(&random, &stored, blocks))
                .await?;
            slowest = slowest.max(took);
        }
        self.calibrated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind.to_owned(), slowest);
        Ok(slowest)
    }
}

/// One admission to the hasher (see `PasswordHasher::slot`); its hashes are
/// queued without being refused again.
pub struct Slot {
    hasher: PasswordHasher,
    _admitted: Admitted,
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
    /// A check of an imported hash that took longer than the failure floor
    /// raises the floor to it (the census lowers it again once such hashes
    /// are gone).
    pub async fn verify(&self, password: SecretString, stored: Option<&str>) -> Result<Verification> {
        let real = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.hasher.dummy_hash.clone(), Arc::from);
        let imported = !is_own(&stored);
        let ((valid, needs_rehash), began, took) = self
            .hasher
            .run_timed(move |blocks| verify_blocking(password.expose_secret(), &stored, blocks))
            .await?;
        if imported {
            self.hasher.floor_us.fetch_max(micros(took), Ordering::Relaxed);
        }
        Ok(Verification {
            valid: real && valid,
            needs_rehash: real && needs_rehash,
            began,
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
        assert!(outcome.is_ok_and(|(valid, needs_rehash)| valid && needs_rehash));
    }
}
