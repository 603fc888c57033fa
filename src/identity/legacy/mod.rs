//! Password hashes made by other systems, as an import brings them: which
//! format a stored hash is in, whether its parameters are sane, and checking
//! a password against it in constant time.
//!
//! Every format is verified with a maintained implementation of its
//! primitive (RustCrypto's `argon2`, `scrypt`, `pbkdf2`, `sha-crypt`, `aes`,
//! `ctr`, `md-5`, `sha1`, `sha2`; the `bcrypt` crate); only the md5-crypt
//! loop, which no maintained crate ships, is written here (`md5_crypt`).
//! Parameters that would make one check take seconds or gigabytes are refused
//! when the hash is parsed, so an imported hash can neither hang a login nor
//! raise every login's timing floor without bound.

mod md5_crypt;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use subtle::ConstantTimeEq;

/// Highest bcrypt cost accepted: 2^14 rounds take about a second.
const MAX_BCRYPT_COST: u32 = 14;
/// Highest PBKDF2 iteration count accepted.
const MAX_PBKDF2_ROUNDS: u32 = 2_000_000;
/// Highest SHA-crypt rounds accepted (glibc's default is 5,000, passlib's 656,000).
const MAX_SHA_CRYPT_ROUNDS: u32 = 1_000_000;
/// Most memory one scrypt or Argon2 check may take.
const MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// Most scrypt work (N · r · p) accepted: about a second.
const MAX_SCRYPT_WORK: u64 = (1 << 20) * 8;
/// Most Argon2 passes accepted.
const MAX_ARGON2_PASSES: u32 = 16;
/// Most Argon2 work (memory in KiB × passes) accepted: about half a second
/// (latchkey's own is 19,456 × 2).
const MAX_ARGON2_WORK: u64 = 1024 * 1024;
/// Most lanes (Argon2) or parallel blocks (scrypt p) accepted.
const MAX_ARGON2_LANES: u32 = 16;
/// Shortest digest accepted, in bytes: a shorter one would let random passwords match.
const MIN_DIGEST_BYTES: usize = 16;
/// Longest password an imported hash is checked against: sha-crypt and
/// md5-crypt hash the password in every round, so their cost grows with
/// its length. A longer password fails against an imported hash (its owner
/// can recover); the failure floor is calibrated at this length.
pub const MAX_LEGACY_PASSWORD_BYTES: usize = 128;
/// Longest salt or digest field accepted, in bytes.
const MAX_FIELD_BYTES: usize = 1024;

/// Why a hash cannot be imported; the text names the format and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HashError(String);

fn malformed(format: &str, what: &str) -> HashError {
    HashError(format!("{format} hash: {what}"))
}

fn too_costly(format: &str, what: String) -> HashError {
    HashError(format!(
        "{format} hash: {what}, above what latchkey accepts (a check would take too long or too much memory)"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha512,
}

/// A parsed hash in one of the formats SPEC §5.5 lists.
#[derive(Debug, Clone)]
pub enum LegacyHash {
    /// `$argon2id$`, `$argon2i$`, `$argon2d$` PHC strings (kept whole).
    Argon2 {
        algorithm: &'static str,
        phc: String,
        /// Memory in KiB × passes: what one check costs.
        work: u64,
    },
    /// `$scrypt$ln=…,r=…,p=…$salt$hash` (PHC).
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// PHC `$pbkdf2-sha256$i=…`, passlib `$pbkdf2-sha256$29000$…`, Django `pbkdf2_sha256$…`.
    Pbkdf2 {
        digest: Digest,
        rounds: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `$2a$`, `$2b$`, `$2y$` (kept whole).
    Bcrypt { hash: String, cost: u32 },
    /// `$1$salt$hash`.
    Md5Crypt { salt: Vec<u8>, encoded: String },
    /// `$5$` and `$6$` (kept whole).
    ShaCrypt { digest: Digest, hash: String, rounds: u32 },
    /// LDAP `{SSHA}`, `{SSHA256}`, `{SSHA512}`: base64 of digest ‖ salt.
    Ssha {
        kind: SshaKind,
        digest: Vec<u8>,
        salt: Vec<u8>,
    },
    /// Firebase's modified scrypt.
    FirebaseScrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
        separator: Vec<u8>,
        signer_key: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshaKind {
    Sha1,
    Sha256,
    Sha512,
}

impl SshaKind {
    fn digest_len(self) -> usize {
        match self {
            SshaKind::Sha1 => 20,
            SshaKind::Sha256 => 32,
            SshaKind::Sha512 => 64,
        }
    }
}

/// Base64 with `+/`, padding optional (PHC omits it, LDAP and Firebase keep it).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A digest field: base64 of at least `MIN_DIGEST_BYTES`.
fn digest(format: &str, text: &str) -> Result<Vec<u8>, HashError> {
    let bytes = b64(format, "hash", text)?;
    if bytes.len() < MIN_DIGEST_BYTES {
        return Err(malformed(format, "the hash is shorter than 16 bytes"));
    }
    Ok(bytes)
}

fn b64(format: &str, what: &str, text: &str) -> Result<Vec<u8>, HashError> {
    let bytes = B64
        .decode(text)
        .map_err(|_| malformed(format, &format!("the {what} is not base64")))?;
    if bytes.is_empty() || bytes.len() > MAX_FIELD_BYTES {
        return Err(malformed(format, &format!("the {what} is empty or too long")));
    }
    Ok(bytes)
}

/// passlib's "adapted base64": `.` for `+`, no padding.
fn ab64(format: &str, what: &str, text: &str) -> Result<Vec<u8>, HashError> {
    b64(format, what, &text.replace('.', "+"))
}

/// `name=value` pairs separated by commas (`ln=14,r=8,p=1`), each name once.
fn params<'a>(format: &str, text: &'a str, names: &[&str]) -> Result<Vec<&'a str>, HashError> {
    let mut values = vec![None; names.len()];
    for pair in text.split(',') {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed(format, &format!("parameter {pair:?} is not name=value")))?;
        let slot = names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| malformed(format, &format!("unknown parameter {name:?}")))?;
        if values[slot].replace(value).is_some() {
            return Err(malformed(format, &format!("parameter {name:?} given twice")));
        }
    }
    values
        .into_iter()
        .zip(names)
        .map(|(v, n)| v.ok_or_else(|| malformed(format, &format!("parameter {n:?} is missing"))))
        .collect()
}

fn number<T: std::str::FromStr>(format: &str, name: &str, text: &str) -> Result<T, HashError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
        return Err(malformed(format, &format!("{name} is not a number")));
    }
    text.parse()
        .map_err(|_| malformed(format, &format!("{name} is out of range")))
}

/// Checks scrypt's cost (shared by `$scrypt$` and Firebase).
fn scrypt_cost(format: &str, log_n: u8, r: u32, p: u32) -> Result<(), HashError> {
    if log_n == 0 || r == 0 || p == 0 {
        return Err(malformed(format, "ln, r and p must be positive"));
    }
    let n = 1u64.checked_shl(u32::from(log_n)).unwrap_or(u64::MAX);
    // scrypt holds N·r·128 bytes for its table and p·r·128 for its blocks.
    let memory = n.max(u64::from(p)).saturating_mul(u64::from(r)).saturating_mul(128);
    let work = n.saturating_mul(u64::from(r)).saturating_mul(u64::from(p));
    if log_n > 24 || r > 64 || p > MAX_ARGON2_LANES || memory > MAX_MEMORY_BYTES || work > MAX_SCRYPT_WORK {
        return Err(too_costly(format, format!("ln={log_n}, r={r}, p={p}")));
    }
    Ok(())
}

impl LegacyHash {
    /// Parses `stored`, refusing unknown formats, malformed fields and absurd costs.
    pub fn parse(stored: &str) -> Result<Self, HashError> {
        if stored.len() > 4096 {
            return Err(HashError("password_hash is longer than 4,096 characters".into()));
        }
        // No format has one; PostgreSQL cannot store a NUL.
        if stored.chars().any(char::is_control) {
            return Err(HashError("password_hash holds a control character".into()));
        }
        if let Some(rest) = stored.strip_prefix("$argon2") {
            return Self::argon2(stored, rest);
        }
        if let Some(rest) = stored.strip_prefix("$scrypt$") {
            return Self::scrypt(rest);
        }
        if let Some(rest) = stored.strip_prefix("$firescrypt$") {
            return Self::firebase(rest);
        }
        if let Some(rest) = stored.strip_prefix("$pbkdf2-sha256$") {
            return Self::pbkdf2_phc(Digest::Sha256, rest);
        }
        if let Some(rest) = stored.strip_prefix("$pbkdf2-sha512$") {
            return Self::pbkdf2_phc(Digest::Sha512, rest);
        }
        if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            return Self::django(rest);
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p)) {
            return Self::bcrypt(stored);
        }
        if let Some(rest) = stored.strip_prefix("$1$") {
            return Self::md5_crypt(rest);
        }
        if stored.starts_with("$5$") {
            return Self::sha_crypt(Digest::Sha256, stored);
        }
        if stored.starts_with("$6$") {
            return Self::sha_crypt(Digest::Sha512, stored);
        }
        for (prefix, kind) in [
            ("{SSHA}", SshaKind::Sha1),
            ("{SSHA256}", SshaKind::Sha256),
            ("{SSHA512}", SshaKind::Sha512),
        ] {
            if let Some(rest) = stored.strip_prefix(prefix) {
                return Self::ssha(kind, rest);
            }
        }
        Err(HashError(
            "password_hash is in no supported format (argon2, scrypt, pbkdf2, bcrypt, Django pbkdf2_sha256, \
             crypt $1$/$5$/$6$, LDAP {SSHA}/{SSHA512}, Firebase $firescrypt$)"
                .into(),
        ))
    }

    fn argon2(stored: &str, rest: &str) -> Result<Self, HashError> {
        let algorithm = match rest.split('$').next() {
            Some("id") => "argon2id",
            Some("i") => "argon2i",
            Some("d") => "argon2d",
            _ => return Err(malformed("argon2", "unknown variant")),
        };
        let parsed = argon2::password_hash::phc::PasswordHash::new(stored)
            .map_err(|e| malformed(algorithm, &format!("not a PHC string ({e})")))?;
        let cost = argon2::Params::try_from(&parsed).map_err(|e| malformed(algorithm, &format!("parameters: {e}")))?;
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(malformed(algorithm, "the salt or the hash is missing"));
        }
        if u64::from(cost.m_cost()) * 1024 > MAX_MEMORY_BYTES
            || u64::from(cost.m_cost()) * u64::from(cost.t_cost()) > MAX_ARGON2_WORK
            || cost.t_cost() > MAX_ARGON2_PASSES
            || cost.p_cost() > MAX_ARGON2_LANES
        {
            return Err(too_costly(
                algorithm,
                format!("m={}, t={}, p={}", cost.m_cost(), cost.t_cost(), cost.p_cost()),
            ));
        }
        Ok(LegacyHash::Argon2 {
            algorithm,
            phc: stored.to_owned(),
            work: u64::from(cost.m_cost()) * u64::from(cost.t_cost()),
        })
    }

    fn scrypt(rest: &str) -> Result<Self, HashError> {
        const F: &str = "scrypt";
        let fields: Vec<&str> = rest.split('$').collect();
        let [cost, salt, hash] = fields[..] else {
            return Err(malformed(F, "expected $scrypt$ln=…,r=…,p=…$salt$hash"));
        };
        let [ln, r, p] = params(F, cost, &["ln", "r", "p"])?[..] else {
            return Err(malformed(F, "parameters"));
        };
        let (log_n, r, p) = (number(F, "ln", ln)?, number(F, "r", r)?, number(F, "p", p)?);
        scrypt_cost(F, log_n, r, p)?;
        Ok(LegacyHash::Scrypt {
            log_n,
            r,
            p,
            salt: b64(F, "salt", salt)?,
            hash: digest(F, hash)?,
        })
    }

    fn firebase(rest: &str) -> Result<Self, HashError> {
        const F: &str = "firescrypt";
        let fields: Vec<&str> = rest.split('$').collect();
        let [cost, salt, hash, separator, signer_key] = fields[..] else {
            return Err(malformed(
                F,
                "expected $firescrypt$ln=…,r=…,p=…$salt$hash$salt separator$signer key",
            ));
        };
        let [ln, r, p] = params(F, cost, &["ln", "r", "p"])?[..] else {
            return Err(malformed(F, "parameters"));
        };
        let (log_n, r, p) = (number(F, "ln", ln)?, number(F, "r", r)?, number(F, "p", p)?);
        scrypt_cost(F, log_n, r, p)?;
        let hash = digest(F, hash)?;
        let signer_key = b64(F, "signer key", signer_key)?;
        if hash.len() != signer_key.len() {
            return Err(malformed(F, "the hash and the signer key differ in length"));
        }
        Ok(LegacyHash::FirebaseScrypt {
            log_n,
            r,
            p,
            salt: b64(F, "salt", salt)?,
            hash,
            separator: B64
                .decode(separator)
                .map_err(|_| malformed(F, "the salt separator is not base64"))?,
            signer_key,
        })
    }

    fn pbkdf2_phc(digest: Digest, rest: &str) -> Result<Self, HashError> {
        let f = match digest {
            Digest::Sha256 => "pbkdf2-sha256",
            Digest::Sha512 => "pbkdf2-sha512",
        };
        let fields: Vec<&str> = rest.split('$').collect();
        let [cost, salt, hash] = fields[..] else {
            return Err(malformed(f, "expected $pbkdf2-…$i=…$salt$hash"));
        };
        // passlib writes the bare iteration count and its adapted base64.
        let (rounds, salt, hash) = if cost.bytes().all(|b| b.is_ascii_digit()) {
            (
                number(f, "the iteration count", cost)?,
                ab64(f, "salt", salt)?,
                ab64(f, "hash", hash)?,
            )
        } else {
            let values = params(f, cost, &["i", "l"]).or_else(|_| params(f, cost, &["i"]))?;
            let rounds = number(f, "i", values[0])?;
            if rounds > MAX_PBKDF2_ROUNDS {
                return Err(too_costly(f, format!("{rounds} iterations")));
            }
            let hash = b64(f, "hash", hash)?;
            if let Some(l) = values.get(1)
                && number::<usize>(f, "l", l)? != hash.len()
            {
                return Err(malformed(f, "l is not the hash's length"));
            }
            (rounds, b64(f, "salt", salt)?, hash)
        };
        Self::pbkdf2(f, digest, rounds, salt, hash)
    }

    fn django(rest: &str) -> Result<Self, HashError> {
        const F: &str = "Django pbkdf2_sha256";
        let fields: Vec<&str> = rest.split('$').collect();
        let [rounds, salt, hash] = fields[..] else {
            return Err(malformed(F, "expected pbkdf2_sha256$iterations$salt$hash"));
        };
        if salt.is_empty() || salt.len() > MAX_FIELD_BYTES {
            return Err(malformed(F, "the salt is empty or too long"));
        }
        // Django hashes with the salt's text itself, not its decoding.
        let rounds = number(F, "the iteration count", rounds)?;
        Self::pbkdf2(
            F,
            Digest::Sha256,
            rounds,
            salt.as_bytes().to_vec(),
            b64(F, "hash", hash)?,
        )
    }

    fn pbkdf2(f: &str, digest: Digest, rounds: u32, salt: Vec<u8>, hash: Vec<u8>) -> Result<Self, HashError> {
        if rounds == 0 {
            return Err(malformed(f, "the iteration count must be positive"));
        }
        if rounds > MAX_PBKDF2_ROUNDS {
            return Err(too_costly(f, format!("{rounds} iterations")));
        }
        if !(MIN_DIGEST_BYTES..=64).contains(&hash.len()) {
            return Err(malformed(f, "the hash must be 16 to 64 bytes"));
        }
        // Each 32- or 64-byte block of output costs every round again.
        let block = match digest {
            Digest::Sha256 => 32,
            Digest::Sha512 => 64,
        };
        if u64::from(rounds) * hash.len().div_ceil(block) as u64 > u64::from(MAX_PBKDF2_ROUNDS) {
            return Err(too_costly(f, format!("{rounds} iterations for {} bytes", hash.len())));
        }
        Ok(LegacyHash::Pbkdf2 {
            digest,
            rounds,
            salt,
            hash,
        })
    }

    fn bcrypt(stored: &str) -> Result<Self, HashError> {
        const F: &str = "bcrypt";
        // $2b$12$ + 22 characters of salt + 31 of hash.
        let cost = stored
            .get(4..6)
            .filter(|_| stored.len() == 60 && stored.as_bytes()[6] == b'$')
            .ok_or_else(|| malformed(F, "expected $2b$<cost>$ and 53 characters"))?;
        let cost: u32 = cost.parse().map_err(|_| malformed(F, "the cost is not a number"))?;
        if cost < 4 {
            return Err(malformed(F, "the cost is below 4"));
        }
        if cost > MAX_BCRYPT_COST {
            return Err(too_costly(F, format!("cost {cost} (at most {MAX_BCRYPT_COST})")));
        }
        let body = &stored[7..];
        if !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
        {
            return Err(malformed(F, "the salt and hash are not bcrypt's base64"));
        }
        Ok(LegacyHash::Bcrypt {
            hash: stored.to_owned(),
            cost,
        })
    }

    fn md5_crypt(rest: &str) -> Result<Self, HashError> {
        const F: &str = "md5-crypt";
        let (salt, encoded) = rest
            .split_once('$')
            .ok_or_else(|| malformed(F, "expected $1$salt$hash"))?;
        if salt.len() > 8 || salt.contains('$') || encoded.len() != 22 || !md5_crypt::is_crypt64(encoded) {
            return Err(malformed(
                F,
                "expected a salt of up to 8 characters and a 22-character hash",
            ));
        }
        Ok(LegacyHash::Md5Crypt {
            salt: salt.as_bytes().to_vec(),
            encoded: encoded.to_owned(),
        })
    }

    fn sha_crypt(digest: Digest, stored: &str) -> Result<Self, HashError> {
        let f = match digest {
            Digest::Sha256 => "sha256-crypt",
            Digest::Sha512 => "sha512-crypt",
        };
        let fields: Vec<&str> = stored[3..].split('$').collect();
        let (rounds, salt, hash) = match fields[..] {
            [rounds, salt, hash] if rounds.starts_with("rounds=") => {
                (number(f, "rounds", &rounds["rounds=".len()..])?, salt, hash)
            }
            [salt, hash] => (5_000, salt, hash),
            _ => return Err(malformed(f, "expected $5$[rounds=N$]salt$hash")),
        };
        if !(1_000..=MAX_SHA_CRYPT_ROUNDS).contains(&rounds) {
            return Err(too_costly(
                f,
                format!("{rounds} rounds (1,000 to {MAX_SHA_CRYPT_ROUNDS})"),
            ));
        }
        let length = match digest {
            Digest::Sha256 => 43,
            Digest::Sha512 => 86,
        };
        if salt.len() > 16 || hash.len() != length || !md5_crypt::is_crypt64(hash) {
            return Err(malformed(f, "expected a salt of up to 16 characters and the hash"));
        }
        Ok(LegacyHash::ShaCrypt {
            digest,
            hash: stored.to_owned(),
            rounds,
        })
    }

    fn ssha(kind: SshaKind, rest: &str) -> Result<Self, HashError> {
        let f = match kind {
            SshaKind::Sha1 => "{SSHA}",
            SshaKind::Sha256 => "{SSHA256}",
            SshaKind::Sha512 => "{SSHA512}",
        };
        let mut bytes = b64(f, "value", rest)?;
        if bytes.len() <= kind.digest_len() {
            return Err(malformed(f, "no salt after the digest"));
        }
        let salt = bytes.split_off(kind.digest_len());
        Ok(LegacyHash::Ssha {
            kind,
            digest: bytes,
            salt,
        })
    }

    /// The algorithm's name, as import reports and `latchkey_password_hashes` label it.
    pub fn algorithm(&self) -> &'static str {
        match self {
            LegacyHash::Argon2 { algorithm, .. } => algorithm,
            LegacyHash::Scrypt { .. } => "scrypt",
            LegacyHash::Pbkdf2 {
                digest: Digest::Sha256, ..
            } => "pbkdf2-sha256",
            LegacyHash::Pbkdf2 {
                digest: Digest::Sha512, ..
            } => "pbkdf2-sha512",
            LegacyHash::Bcrypt { .. } => "bcrypt",
            LegacyHash::Md5Crypt { .. } => "md5-crypt",
            LegacyHash::ShaCrypt {
                digest: Digest::Sha256, ..
            } => "sha256-crypt",
            LegacyHash::ShaCrypt {
                digest: Digest::Sha512, ..
            } => "sha512-crypt",
            LegacyHash::Ssha {
                kind: SshaKind::Sha1, ..
            } => "ssha",
            LegacyHash::Ssha {
                kind: SshaKind::Sha256, ..
            } => "ssha256",
            LegacyHash::Ssha {
                kind: SshaKind::Sha512, ..
            } => "ssha512",
            LegacyHash::FirebaseScrypt { .. } => "firebase-scrypt",
        }
    }

    /// A number that grows with the time one check takes, comparable
    /// between hashes of one algorithm (the census checks the costliest).
    pub fn cost(&self) -> u64 {
        let scrypt = |log_n: u8, r: u32, p: u32| (1u64 << log_n.min(40)) * u64::from(r) * u64::from(p);
        match self {
            LegacyHash::Argon2 { work, .. } => *work,
            LegacyHash::Scrypt { log_n, r, p, .. } | LegacyHash::FirebaseScrypt { log_n, r, p, .. } => {
                scrypt(*log_n, *r, *p)
            }
            LegacyHash::Pbkdf2 {
                digest, rounds, hash, ..
            } => {
                let block = if *digest == Digest::Sha256 { 32 } else { 64 };
                u64::from(*rounds) * hash.len().div_ceil(block) as u64
            }
            LegacyHash::Bcrypt { cost, .. } => 1u64 << cost,
            LegacyHash::ShaCrypt { rounds, .. } => u64::from(*rounds),
            LegacyHash::Md5Crypt { .. } | LegacyHash::Ssha { .. } => 1,
        }
    }

    /// Whether `password` (the bytes the old system hashed) matches, compared
    /// in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        if password.len() > MAX_LEGACY_PASSWORD_BYTES {
            return false;
        }
        match self {
            LegacyHash::Argon2 { phc, .. } => {
                use argon2::PasswordVerifier as _;
                argon2::password_hash::phc::PasswordHash::new(phc)
                    .is_ok_and(|parsed| argon2::Argon2::default().verify_password(password, &parsed).is_ok())
            }
            LegacyHash::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                scrypt::Params::new(*log_n, *r, *p)
                    .ok()
                    .and_then(|params| scrypt::scrypt(password, salt, &params, &mut out).ok())
                    .is_some()
                    && bool::from(out.ct_eq(hash))
            }
            LegacyHash::FirebaseScrypt {
                log_n,
                r,
                p,
                salt,
                hash,
                separator,
                signer_key,
            } => firebase(
                password,
                (*log_n, *r, *p),
                &[salt.as_slice(), separator].concat(),
                signer_key,
            )
            .is_some_and(|out| bool::from(out.ct_eq(hash))),
            LegacyHash::Pbkdf2 {
                digest,
                rounds,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                match digest {
                    Digest::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, *rounds, &mut out),
                    Digest::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, *rounds, &mut out),
                }
                bool::from(out.ct_eq(hash))
            }
            LegacyHash::Bcrypt { hash, .. } => bcrypt::verify(password, hash).unwrap_or(false),
            LegacyHash::Md5Crypt { salt, encoded } => {
                bool::from(md5_crypt::hash(password, salt).as_bytes().ct_eq(encoded.as_bytes()))
            }
            LegacyHash::ShaCrypt { hash, .. } => {
                use sha_crypt::PasswordVerifier as _;
                sha_crypt::ShaCrypt::default()
                    .verify_password(password, hash.as_str())
                    .is_ok()
            }
            LegacyHash::Ssha { kind, digest, salt } => {
                use sha2::Digest as _;
                let input = [password, salt].concat();
                let computed = match kind {
                    SshaKind::Sha1 => sha1::Sha1::digest(&input).to_vec(),
                    SshaKind::Sha256 => sha2::Sha256::digest(&input).to_vec(),
                    SshaKind::Sha512 => sha2::Sha512::digest(&input).to_vec(),
                };
                bool::from(computed.ct_eq(digest))
            }
        }
    }
}

/// Firebase's scrypt: a 64-byte scrypt key of the password and salt ‖
/// separator, whose first half AES-256-CTR-encrypts the project's signer key
/// (zero IV); the ciphertext is the stored hash.
fn firebase(password: &[u8], (log_n, r, p): (u8, u32, u32), salt: &[u8], signer_key: &[u8]) -> Option<Vec<u8>> {
    use ctr::cipher::{KeyIvInit as _, StreamCipher as _};
    let mut key = [0u8; 64];
    let params = scrypt::Params::new(log_n, r, p).ok()?;
    scrypt::scrypt(password, salt, &params, &mut key).ok()?;
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(&key[..32], &[0u8; 16]).ok()?;
    let mut out = signer_key.to_vec();
    cipher.apply_keystream(&mut out);
    Some(out)
}

/// The algorithm a stored hash is in (`argon2id` for latchkey's own), for
/// `identity show`; `unknown` for a value no format matches.
pub fn algorithm_of(stored: &str) -> &'static str {
    LegacyHash::parse(stored).map_or("unknown", |h| h.algorithm())
}

#[cfg(test)]
mod tests;
