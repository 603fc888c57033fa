//! The cookie that binds a browser to its recovery flow, for the JSON API
//! and the UI alike: `HttpOnly`, `SameSite=Strict`, `Secure` on https,
//! scoped to one path, living as long as a flow.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::services::Services;

/// A flow cookie with its name and the path it is scoped to.
#[derive(Debug, Clone, Copy)]
pub struct FlowCookie {
    pub name: &'static str,
    pub path: &'static str,
}

impl FlowCookie {
    /// The cookie's value, if the request carries one.
    pub fn read(self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name)
            .map(|(_, value)| value.to_owned())
    }

    /// `Set-Cookie` for `value`, or clearing the cookie when `None`.
    pub fn set(self, services: &Services, value: Option<&str>) -> HeaderValue {
        let secure = if services.settings.public_is_https() {
            "; Secure"
        } else {
            ""
        };
        let (value, max_age) = match value {
            Some(v) => (v, services.settings.recovery.lifespan.as_secs()),
            None => ("", 0),
        };
        let cookie = format!(
            "{}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
            self.name, self.path
        );
        // Values are base64url secrets, so the header is always valid.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}
