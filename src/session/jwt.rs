//! Compact JWS with EdDSA (Ed25519, RFC 8037) on `ring`: what every JWT
//! latchkey issues is, and the only form it accepts.
//!
//! Verification is strict about types, the gap behind jsonwebtoken's
//! GHSA-h395-gr6q-cpjc: `alg` must be `EdDSA`, `exp` an integer in the
//! future, `nbf` (if any) an integer not in the future, `iss` and `sub`
//! strings, and `aud` exactly what the caller expects — present and equal
//! for a session token, absent for a recovery token.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 5;
/// Longer tokens are refused unread.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

pub fn sign<T: Serialize>(claims: &T, kid: &str, key: &Ed25519KeyPair) -> anyhow::Result<String> {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let signature = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

/// What a token must say besides its signature.
pub struct Expect<'a> {
    pub issuer: &'a str,
    /// `Some`: `aud` must name it. `None`: `aud` must be absent.
    pub audience: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
}

/// Tokens whose signature was already checked, by the SHA-256 of the whole
/// token, with the public key that checked it: a client sends one JWT many
/// times in its lifetime, and the Ed25519 check is most of what a JWT costs.
/// Only the signature is remembered — every claim is checked on every use,
/// and the caller still reads the session — and an entry counts only while
/// its `kid` still names the same public key, so a removed key ends it.
#[derive(Default)]
pub struct SignatureCache {
    seen: Mutex<HashMap<[u8; 32], Vec<u8>>>,
}

/// Entries kept before the cache starts again empty.
const CACHED_SIGNATURES: usize = 16_384;

impl SignatureCache {
    fn digest(token: &str) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    fn checked(&self, token: &str, public_key: &[u8]) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&Self::digest(token))
            .is_some_and(|key| key.as_slice() == public_key)
    }

    fn remember(&self, token: &str, public_key: &[u8]) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= CACHED_SIGNATURES {
            seen.clear();
        }
        seen.insert(Self::digest(token), public_key.to_vec());
    }
}

/// The claims of a token signed by one of `keys` (by `kid`, raw Ed25519
/// public keys) that meets `expect`; `None` for anything else. A signature
/// `cache` already checked is not checked again.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &HashMap<String, Vec<u8>>,
    expect: &Expect<'_>,
    cache: Option<&SignatureCache>,
) -> Option<T> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (header_b64, claims_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "EdDSA" || header.contains_key("crit") {
        return None;
    }
    let public_key = keys.get(header.get("kid")?.as_str()?)?;
    if !cache.is_some_and(|c| c.checked(token, public_key)) {
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
        let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(signing_input.as_bytes(), &signature)
            .ok()?;
        if let Some(cache) = cache {
            cache.remember(token, public_key);
        }
    }
    let claims: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_b64).ok()?).ok()?;
    registered_claims_hold(&claims, expect).then_some(())?;
    serde_json::from_value(Value::Object(claims)).ok()
}

fn registered_claims_hold(claims: &Map<String, Value>, expect: &Expect<'_>) -> bool {
    let exp_ok = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp > expect.now - LEEWAY_SECS);
    let nbf_ok = match claims.get("nbf") {
        None => true,
        Some(nbf) => nbf.as_i64().is_some_and(|nbf| nbf <= expect.now + LEEWAY_SECS),
    };
    let iss_ok = claims.get("iss").and_then(Value::as_str) == Some(expect.issuer);
    let sub_ok = claims.get("sub").is_some_and(Value::is_string);
    let aud_ok = match (expect.audience, claims.get("aud")) {
        (None, None) => true,
        (Some(wanted), Some(Value::String(aud))) => aud == wanted,
        (Some(wanted), Some(Value::Array(auds))) => auds.iter().any(|a| a.as_str() == Some(wanted)),
        _ => false,
    };
    exp_ok && nbf_ok && iss_ok && sub_ok && aud_ok
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::{Value, json};

    use super::{Expect, sign, verify};

    fn key() -> Option<Ed25519KeyPair> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).ok()?;
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).ok()
    }

    const NOW: i64 = 1_800_000_000;

    fn expect(audience: Option<&str>) -> Expect<'_> {
        Expect {
            issuer: "https://auth.example.com",
            audience,
            now: NOW,
        }
    }

    #[test]
    fn a_remembered_signature_counts_only_under_the_key_that_checked_it() {
        let (Some(pair), Some(other)) = (key(), key()) else {
            return;
        };
        let keys = HashMap::from([("k1".to_owned(), pair.public_key().as_ref().to_vec())]);
        let cache = super::SignatureCache::default();
        let claims = json!({"iss": "https://auth.example.com", "sub": "u", "aud": "api", "exp": NOW + 60});
        let token = sign(&claims, "k1", &pair).unwrap_or_default();
        assert!(verify::<Value>(&token, &keys, &expect(Some("api")), Some(&cache)).is_some());
        assert!(verify::<Value>(&token, &keys, &expect(Some("api")), Some(&cache)).is_some());
        // Claims are still checked on a remembered token.
        assert!(verify::<Value>(&token, &keys, &expect(Some("other")), Some(&cache)).is_none());
        let later = Expect {
            now: NOW + 3600,
            ..expect(Some("api"))
        };
        assert!(verify::<Value>(&token, &keys, &later, Some(&cache)).is_none());
        // The key removed, or another key under the same kid: refused.
        assert!(verify::<Value>(&token, &HashMap::new(), &expect(Some("api")), Some(&cache)).is_none());
        let replaced = HashMap::from([("k1".to_owned(), other.public_key().as_ref().to_vec())]);
        assert!(verify::<Value>(&token, &replaced, &expect(Some("api")), Some(&cache)).is_none());
        // A token changed by one character is a new token, checked in full.
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(verify::<Value>(&forged, &keys, &expect(Some("api")), Some(&cache)).is_none());
    }

    #[test]
    fn only_well_typed_claims_under_a_known_key_pass() {
        let Some(pair) = key() else { return };
        let keys = HashMap::from([("k1".to_owned(), pair.public_key().as_ref().to_vec())]);
        let good = json!({"iss": "https://auth.example.com", "sub": "u", "aud": "api", "exp": NOW + 60});
        let token = sign(&good, "k1", &pair).unwrap_or_default();
        assert!(verify::<Value>(&token, &keys, &expect(Some("api")), None).is_some());
        // The wrong audience, or an audience where none is expected.
        assert!(verify::<Value>(&token, &keys, &expect(Some("other")), None).is_none());
        assert!(verify::<Value>(&token, &keys, &expect(None), None).is_none());
        // Claims of the wrong JSON type are refused, not skipped.
        for bad in [
            json!({"iss": "https://auth.example.com", "sub": "u", "aud": "api", "exp": (NOW + 60).to_string()}),
            json!({"iss": ["https://auth.example.com"], "sub": "u", "aud": "api", "exp": NOW + 60}),
            json!({"iss": "https://auth.example.com", "sub": 7, "aud": "api", "exp": NOW + 60}),
            json!({"iss": "https://auth.example.com", "sub": "u", "aud": {"x": 1}, "exp": NOW + 60}),
            json!({"iss": "https://auth.example.com", "sub": "u", "aud": "api", "exp": NOW - 60}),
            json!({"iss": "https://auth.example.com", "sub": "u", "aud": "api", "exp": NOW + 60, "nbf": "0"}),
        ] {
            let token = sign(&bad, "k1", &pair).unwrap_or_default();
            assert!(
                verify::<Value>(&token, &keys, &expect(Some("api")), None).is_none(),
                "{bad}"
            );
        }
        // An unknown kid, another algorithm, a tampered payload.
        let unknown = sign(&good, "k2", &pair).unwrap_or_default();
        assert!(verify::<Value>(&unknown, &keys, &expect(Some("api")), None).is_none());
        let parts: Vec<&str> = token.split('.').collect();
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#),
            parts.get(1).copied().unwrap_or("")
        );
        assert!(verify::<Value>(&none_alg, &keys, &expect(Some("api")), None).is_none());
        let forged = json!({"iss": "https://auth.example.com", "sub": "admin", "aud": "api", "exp": NOW + 60});
        let tampered = format!(
            "{}.{}.{}",
            parts.first().copied().unwrap_or(""),
            URL_SAFE_NO_PAD.encode(forged.to_string()),
            parts.get(2).copied().unwrap_or("")
        );
        assert!(verify::<Value>(&tampered, &keys, &expect(Some("api")), None).is_none());
    }
}
