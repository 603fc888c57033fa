//! The Ed25519 keys that sign every JWT latchkey issues, kept (sealed) in the
//! database so all instances share them, and the JWKS that publishes them.
//!
//! Only public halves ever leave this module; no symmetric key is published.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::secrets::ServerSecret;
use crate::store::{DynStore, SigningKeyRecord};
use crate::time::now_ms;

struct Keys {
    active_kid: String,
    active: Ed25519KeyPair,
    /// Raw Ed25519 public keys by `kid`.
    verifying: HashMap<String, Vec<u8>>,
    jwks: Value,
}

#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<RwLock<Keys>>,
    issuer: Arc<str>,
    checked: Arc<super::jwt::SignatureCache>,
}

fn generate(secret: &ServerSecret, now: i64) -> anyhow::Result<SigningKeyRecord> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| anyhow!("Ed25519 key generation failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow!("generated key does not parse"))?;
    Ok(SigningKeyRecord {
        signing_key_id: uuid::Uuid::new_v4().simple().to_string(),
        sealed_private_key: secret.seal(pkcs8.as_ref())?,
        public_key: pair.public_key().as_ref().to_vec(),
        created_at: now,
        retired_at: None,
        published_until: None,
    })
}

fn build(records: &[SigningKeyRecord], secret: &ServerSecret, now: i64) -> anyhow::Result<Option<Keys>> {
    // Newest usable active key signs; others verify while published.
    let active = records
        .iter()
        .filter(|r| r.retired_at.is_none())
        .find_map(|r| secret.unseal(&r.sealed_private_key).ok().map(|der| (r, der)));
    let Some((active_record, der)) = active else {
        return Ok(None);
    };
    let mut verifying = HashMap::new();
    let mut jwks = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.retired_at.is_none() || r.published_until.is_some_and(|t| t > now))
    {
        let x = URL_SAFE_NO_PAD.encode(&r.public_key);
        anyhow::ensure!(
            r.public_key.len() == 32,
            "stored public key {} is not Ed25519",
            r.signing_key_id
        );
        verifying.insert(r.signing_key_id.clone(), r.public_key.clone());
        jwks.push(
            json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": r.signing_key_id, "alg": "EdDSA", "use": "sig"}),
        );
    }
    Ok(Some(Keys {
        active_kid: active_record.signing_key_id.clone(),
        active: Ed25519KeyPair::from_pkcs8(&der).map_err(|_| anyhow!("stored private key does not parse"))?,
        verifying,
        jwks: json!({ "keys": jwks }),
    }))
}

impl KeyRing {
    /// Loads the shared keys, creating the first one on a fresh database.
    pub async fn load_or_create(store: &DynStore, secret: &ServerSecret, issuer: &str) -> anyhow::Result<Self> {
        let now = now_ms();
        let seen = store.signing_keys().await?;
        let keys = match build(&seen, secret, now)? {
            Some(keys) => keys,
            None => {
                // None usable: a fresh database, or the secret changed. Keys
                // sealed under another secret (perhaps a leaked one) stop
                // verifying at once, retired or not. Only keys read above
                // are retired: instances starting together on a fresh
                // database each add a key and retire none of the others', so
                // every key one of them signs with stays published, and each
                // signs with the newest (`build`) from its next reload on.
                for stale in seen.iter().filter(|r| secret.unseal(&r.sealed_private_key).is_err()) {
                    store.retire_signing_key_now(&stale.signing_key_id, now).await?;
                }
                let record = generate(secret, now)?;
                store.insert_signing_key(&record).await?;
                build(&store.signing_keys().await?, secret, now)?.context("new signing key is unusable")?
            }
        };
        Ok(Self {
            keys: Arc::new(RwLock::new(keys)),
            issuer: issuer.into(),
            checked: Arc::default(),
        })
    }

    /// Makes a new key active; older ones stay published (and verify) for `overlap`.
    pub async fn rotate(
        store: &DynStore,
        secret: &ServerSecret,
        overlap: std::time::Duration,
    ) -> anyhow::Result<String> {
        let now = now_ms();
        let record = generate(secret, now)?;
        store.insert_signing_key(&record).await?;
        store
            .retire_signing_keys_except(&record.signing_key_id, now, now + crate::time::ms(overlap))
            .await?;
        Ok(record.signing_key_id)
    }

    /// Re-reads the keys (after another instance rotated them).
    pub async fn reload(&self, store: &DynStore, secret: &ServerSecret) -> anyhow::Result<()> {
        if let Some(keys) = build(&store.signing_keys().await?, secret, now_ms())? {
            *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        }
        Ok(())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks(&self) -> Value {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).jwks.clone()
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        super::jwt::sign(claims, &keys.active_kid, &keys.active).context("signing JWT")
    }

    /// Checks signature, `exp`, `iss` and `aud`: a token meant for an
    /// `audience` must name it, and one meant for none (a recovery token)
    /// must carry no `aud` at all. `None` for anything invalid.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, audience: Option<&str>) -> Option<T> {
        self.verify_with(token, audience, true)
    }

    /// As `verify`, but an expired token still opens. For recovery tokens,
    /// whose flow's expiry decides (and is answered as such).
    pub fn verify_any_age<T: DeserializeOwned>(&self, token: &str, audience: Option<&str>) -> Option<T> {
        self.verify_with(token, audience, false)
    }

    fn verify_with<T: DeserializeOwned>(&self, token: &str, audience: Option<&str>, check_exp: bool) -> Option<T> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let expect = super::jwt::Expect {
            issuer: &self.issuer,
            audience,
            now: now_ms() / 1000,
            check_exp,
        };
        super::jwt::verify(token, &keys.verifying, &expect, Some(&self.checked))
    }
}
