//! Compact JWS with EdDSA (Ed25519, RFC 8037) on `ring`: what every JWT
//! latchkey issues is, and the only form it accepts.
//!
//! Verification is strict about types, the gap behind jsonwebtoken's
//! GHSA-h395-gr6q-cpjc: `alg` must be `EdDSA`, `exp` an integer in the
//! future, `nbf` (if any) an integer not in the future, `iss` and `sub`
//! strings, and `aud` exactly what the caller expects — present and equal
//! for a session token, absent for a recovery token.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
    /// Whether `exp` must be in the future. A recovery token is opened
    /// whatever its age: its flow's own expiry decides, and answers
    /// "expired" rather than "no such flow".
    pub check_exp: bool,
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
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).ok()?;
    let header: Header<'_> = object(&header_json)?;
    if header.alg != "EdDSA" || header.crit.0 {
        return None;
    }
    let public_key = keys.get(header.kid.as_ref())?;
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
    let claims_json = URL_SAFE_NO_PAD.decode(claims_b64).ok()?;
    registered_claims_hold(&object(&claims_json)?, expect).then_some(())?;
    object(&claims_json)
}

/// A JSON object (never another JSON value) read into `T`; `None` when it
/// is not one, does not fit `T`, or names a field of `T` twice.
fn object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    (json.trim_ascii_start().first() == Some(&b'{'))
        .then(|| serde_json::from_slice(json).ok())
        .flatten()
}

/// The header fields verification reads, each of the type it must have.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    kid: Cow<'a, str>,
    #[serde(default)]
    crit: Present,
}

/// Whether a field is there at all, whatever its value (`null` too).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

/// The registered claims. A claim of the wrong JSON type fails the whole
/// token: `exp` must be an integer, `iss` and `sub` strings; `nbf` and
/// `aud` are kept as they came (a `null` included) for the checks below.
#[derive(Deserialize)]
struct Registered<'a> {
    exp: i64,
    #[serde(default, deserialize_with = "present")]
    nbf: Option<Value>,
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    #[allow(dead_code)]
    sub: Cow<'a, str>,
    #[serde(default, deserialize_with = "present")]
    aud: Option<Value>,
}

/// `Some` for a field that is there, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn registered_claims_hold(claims: &Registered<'_>, expect: &Expect<'_>) -> bool {
    let exp_ok = !expect.check_exp || claims.exp > expect.now - LEEWAY_SECS;
    let nbf_ok = match &claims.nbf {
        None => true,
        Some(nbf) => nbf.as_i64().is_some_and(|nbf| nbf <= expect.now + LEEWAY_SECS),
    };
    let iss_ok = claims.iss == expect.issuer;
    let aud_ok = match (expect.audience, &claims.aud) {
        (None, None) => true,
        (Some(wanted), Some(Value::String(aud))) => aud == wanted,
        (Some(wanted), Some(Value::Array(auds))) => auds.iter().any(|a| a.as_str() == Some(wanted)),
        _ => false,
    };
    exp_ok && nbf_ok && iss_ok && aud_ok
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
            check_exp: true,
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
        // Unless its age is someone else's to judge (a recovery token's flow).
        let any_age = Expect {
            now: NOW + 3600,
            check_exp: false,
            ..expect(Some("api"))
        };
        assert!(verify::<Value>(&token, &keys, &any_age, Some(&cache)).is_some());
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

    /// A token signed over exactly these header and claims bytes.
    fn signed_raw(header: &str, claims: &str, pair: &Ed25519KeyPair) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref());
        format!("{input}.{signature}")
    }

    /// Validly signed, yet refused: what a typed reading could let through
    /// that a reading of any JSON object would not, and the reverse.
    #[test]
    fn odd_headers_and_claims_are_refused_even_when_signed() {
        let Some(pair) = key() else { return };
        let keys = HashMap::from([("k1".to_owned(), pair.public_key().as_ref().to_vec())]);
        let header = r#"{"alg":"EdDSA","typ":"JWT","kid":"k1"}"#;
        let exp = NOW + 60;
        let good = format!(r#"{{"iss":"https://auth.example.com","sub":"u","aud":"api","exp":{exp}}}"#);
        assert!(verify::<Value>(&signed_raw(header, &good, &pair), &keys, &expect(Some("api")), None).is_some());
        let escaped = r#"{"alg":"Ed\u0044SA","kid":"k\u0031"}"#;
        assert!(verify::<Value>(&signed_raw(escaped, &good, &pair), &keys, &expect(Some("api")), None).is_some());
        for bad_header in [
            r#"{"alg":"EdDSA","kid":"k1","crit":null}"#,
            r#"{"alg":"EdDSA","kid":"k1","crit":["exp"]}"#,
            r#"{"alg":"none","kid":"k1","alg":"EdDSA"}"#,
            r#"["EdDSA","k1"]"#,
            r#"{"alg":"EdDSA","kid":1}"#,
            r#"{"alg":"EdDSA"}"#,
        ] {
            let token = signed_raw(bad_header, &good, &pair);
            assert!(
                verify::<Value>(&token, &keys, &expect(Some("api")), None).is_none(),
                "{bad_header}"
            );
        }
        for bad_claims in [
            format!(r#"{{"iss":"https://auth.example.com","sub":"u","aud":"api","exp":{exp},"nbf":null}}"#),
            format!(r#"{{"iss":"https://auth.example.com","sub":"u","aud":null,"exp":{exp}}}"#),
            format!(r#"{{"iss":"https://auth.example.com","sub":"u","aud":"api","exp":{exp}.0}}"#),
            format!(r#"{{"iss":"https://auth.example.com","sub":"u","aud":"api","exp":{exp},"sub":"admin"}}"#),
            format!(r#"{{"iss":"https://auth.example.com","aud":"api","exp":{exp}}}"#),
            format!(r#"["https://auth.example.com","u","api",{exp}]"#),
        ] {
            let token = signed_raw(header, &bad_claims, &pair);
            assert!(
                verify::<Value>(&token, &keys, &expect(Some("api")), None).is_none(),
                "{bad_claims}"
            );
        }
        // No audience where none is expected, and none where one is.
        let no_aud = format!(r#"{{"iss":"https://auth.example.com","sub":"u","exp":{exp}}}"#);
        assert!(verify::<Value>(&signed_raw(header, &no_aud, &pair), &keys, &expect(None), None).is_some());
        assert!(verify::<Value>(&signed_raw(header, &no_aud, &pair), &keys, &expect(Some("api")), None).is_none());
    }
}
