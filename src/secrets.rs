//! Everything derived from the server secret: keyed hashes of codes and
//! tokens at rest, and sealing (authenticated encryption) of payloads the
//! database must keep but must not be able to read.
//!
//! This module never logs, and never returns key material.

use anyhow::{Context, anyhow};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// What a keyed hash is for; each purpose gets an independent digest, so a
/// code hash can never be replayed as a session-token hash.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    RecoveryCode,
    RecoveryCookie,
    SessionToken,
    RefreshToken,
    RateLimitKey,
    RecoveryLink,
    ReportLink,
    LookupPlace,
    DecoyOwner,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::RecoveryCode => b"latchkey/recovery-code",
            Purpose::RecoveryCookie => b"latchkey/recovery-cookie",
            Purpose::SessionToken => b"latchkey/session-token",
            Purpose::RefreshToken => b"latchkey/refresh-token",
            Purpose::RateLimitKey => b"latchkey/rate-limit-key",
            Purpose::RecoveryLink => b"latchkey/recovery-link",
            Purpose::ReportLink => b"latchkey/report-link",
            Purpose::LookupPlace => b"latchkey/lookup-place",
            Purpose::DecoyOwner => b"latchkey/decoy-owner",
        }
    }
}

#[derive(Clone)]
pub struct ServerSecret {
    /// HMAC-SHA-256 already keyed: each hash starts from a copy of it
    /// instead of hashing the key's two padded blocks again.
    keyed: HmacSha256,
    seal_key: [u8; 32],
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(…)")
    }
}

impl ServerSecret {
    /// Derives independent sub-keys from the configured or stored secret.
    pub fn new(material: &str) -> Self {
        let hmac_key = derive(material.as_bytes(), b"latchkey/hmac");
        Self {
            keyed: <HmacSha256 as hmac::KeyInit>::new_from_slice(&hmac_key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
            seal_key: derive(material.as_bytes(), b"latchkey/seal"),
        }
    }

    /// Fresh secret material for a first start: 32 bytes from the OS, hex.
    pub fn generate_material() -> String {
        hex::encode(crate::random::bytes::<32>())
    }

    /// HMAC-SHA-256 of `parts` under this secret, hex encoded. Parts are
    /// length-prefixed so `("ab","c")` and `("a","bc")` differ.
    pub fn keyed_hash(&self, purpose: Purpose, parts: &[&[u8]]) -> String {
        lower_hex(&self.digest(purpose, parts))
    }

    /// The first 63 bits of the same HMAC, as a number: a place no one
    /// without the secret can predict or choose.
    pub fn keyed_number(&self, purpose: Purpose, parts: &[&[u8]]) -> i64 {
        let digest = self.digest(purpose, parts);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first) & i64::MAX
    }

    /// The first 128 bits of the same HMAC, as a version 4 UUID: an id no
    /// one without the secret can tell from a random one, the same for the
    /// same parts.
    pub fn keyed_uuid(&self, purpose: Purpose, parts: &[&[u8]]) -> String {
        let digest = self.digest(purpose, parts);
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(first).into_uuid().to_string()
    }

    fn digest(&self, purpose: Purpose, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(purpose.label());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Recomputes the keyed hash and compares it with `stored` in constant time.
    pub fn verify_keyed_hash(&self, purpose: Purpose, parts: &[&[u8]], stored: &str) -> bool {
        let computed = self.keyed_hash(purpose, parts);
        computed.as_bytes().ct_eq(stored.as_bytes()).into()
    }

    /// Encrypts and authenticates `plaintext`; the nonce travels with it.
    pub fn seal(&self, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let cipher = XChaCha20Poly1305::new(&self.seal_key.into());
        let nonce = crate::random::bytes::<24>();
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), plaintext)
            .map_err(|_| anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn unseal(&self, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > 24, "sealed value is truncated");
        let (nonce, body) = sealed.split_at(24);
        XChaCha20Poly1305::new(&self.seal_key.into())
            .decrypt(&XNonce::try_from(nonce).map_err(|_| anyhow!("bad nonce"))?, body)
            .map_err(|_| anyhow!("sealed value does not open under this secret"))
            .context("unsealing failed (was the server secret changed?)")
    }
}

fn derive(material: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(material)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// `bytes` in lowercase hex, as `hex::encode` writes it. That one collects
/// an iterator of chars; this fills a string of the right size (a keyed
/// hash is made several times per request).
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Purpose, ServerSecret};

    #[test]
    fn keyed_hashes_depend_on_purpose_and_part_boundaries() {
        let secret = ServerSecret::new("0123456789abcdef0123456789abcdef");
        let a = secret.keyed_hash(Purpose::RecoveryCode, &[b"ab", b"c"]);
        assert_ne!(a, secret.keyed_hash(Purpose::RecoveryCode, &[b"a", b"bc"]));
        assert_ne!(a, secret.keyed_hash(Purpose::SessionToken, &[b"ab", b"c"]));
        assert!(secret.verify_keyed_hash(Purpose::RecoveryCode, &[b"ab", b"c"], &a));
    }

    #[test]
    fn a_keyed_number_is_the_keyed_hash_s_first_63_bits_and_depends_on_the_secret() {
        let secret = ServerSecret::new("0123456789abcdef0123456789abcdef");
        let place = secret.keyed_number(Purpose::LookupPlace, &[b"email:a@example.com"]);
        let hash = secret.keyed_hash(Purpose::LookupPlace, &[b"email:a@example.com"]);
        let first = u64::from_str_radix(&hash[..16], 16).map(|n| (n & i64::MAX as u64) as i64);
        assert_eq!(first, Ok(place));
        assert!(place >= 0);
        let other = ServerSecret::new("fedcba9876543210fedcba9876543210");
        assert_ne!(
            place,
            other.keyed_number(Purpose::LookupPlace, &[b"email:a@example.com"])
        );
    }

    /// Hashes stored by earlier versions must still match: the pre-keyed
    /// state gives exactly HMAC-SHA-256 under the derived key, every time.
    #[test]
    fn keyed_hashes_are_hmac_under_the_derived_key_and_repeatable() -> anyhow::Result<()> {
        use hmac::{KeyInit, Mac};
        let secret = ServerSecret::new("0123456789abcdef0123456789abcdef");
        let key = super::derive(b"0123456789abcdef0123456789abcdef", b"latchkey/hmac");
        let mut mac = super::HmacSha256::new_from_slice(&key)?;
        mac.update(b"latchkey/session-token");
        mac.update(&5u64.to_be_bytes());
        mac.update(b"token");
        let expected = hex::encode(mac.finalize().into_bytes());
        for _ in 0..2 {
            assert_eq!(secret.keyed_hash(Purpose::SessionToken, &[b"token"]), expected);
        }
        Ok(())
    }

    #[test]
    fn sealed_values_open_only_under_the_same_secret() -> anyhow::Result<()> {
        let secret = ServerSecret::new("0123456789abcdef0123456789abcdef");
        let sealed = secret.seal(b"123456")?;
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_eq!(secret.unseal(&sealed)?, b"123456");
        let other = ServerSecret::new("fedcba9876543210fedcba9876543210");
        assert!(other.unseal(&sealed).is_err());
        Ok(())
    }
}
