//! The token dialect's recovery token: a JWT signed with the server's
//! Ed25519 key whose `jti` is the flow secret. It proves nothing by itself
//! (`otp_verified` is always false); it only names the flow the code is for.

use serde::{Deserialize, Serialize};

use super::Started;
use crate::error::Result;
use crate::services::Services;
use crate::time::now_ms;

#[derive(Debug, Serialize, Deserialize)]
struct RecoveryClaims {
    iss: String,
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
    otp_verified: bool,
    token_use: String,
}

const TOKEN_USE: &str = "recovery";

/// A token for a flow just started, expiring with it.
pub fn issue(services: &Services, started: &Started) -> Result<String> {
    let claims = RecoveryClaims {
        iss: services.keys.issuer().to_owned(),
        sub: started.flow_id.clone(),
        iat: now_ms() / 1000,
        exp: started.expires_at / 1000,
        jti: started.secret.expose().to_owned(),
        otp_verified: false,
        token_use: TOKEN_USE.into(),
    };
    Ok(services.keys.sign(&claims)?)
}

/// The flow secret inside a validly signed recovery token. Its `exp` is its
/// flow's expiry, which the flow itself enforces: an expired token opens a
/// flow that answers `recovery_session_expired` (SPEC §1.3), until
/// retention deletes the flow.
pub fn open(services: &Services, token: &str) -> Option<String> {
    let claims: RecoveryClaims = services.keys.verify_any_age(token, None)?;
    (claims.token_use == TOKEN_USE).then_some(claims.jti)
}
