use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// An opaque bearer secret (session token, recovery cookie): 32 random bytes,
/// base64url. Stored only as a keyed hash; never printed by `Debug`.
#[derive(Clone)]
pub struct SecretToken(SecretString);

impl SecretToken {
    pub const LEN: usize = 43;

    pub fn generate() -> Self {
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>())))
    }

    /// Accepts only strings that could have been generated, so junk never
    /// reaches the database.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == Self::LEN && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Self(SecretString::from(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(…)")
    }
}
