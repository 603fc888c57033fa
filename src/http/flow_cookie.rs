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
    /// The cookie's value, if the request carries exactly one. Two of the
    /// same name mean one was planted beside ours (by a sibling domain, or
    /// a man in the middle of a plain-http visit, with a narrower `Path` so
    /// the browser sends it first): then neither counts, so a stranger's
    /// verified flow cannot take this browser's reset.
    pub fn read(self, headers: &HeaderMap) -> Option<String> {
        let mut values = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.name)
            .map(|(_, value)| value);
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.to_owned()),
            _ => None,
        }
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

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::FlowCookie;

    const COOKIE: FlowCookie = FlowCookie {
        name: "flow",
        path: "/flow",
    };

    fn read(cookie_headers: &[&'static str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in cookie_headers {
            headers.append(header::COOKIE, HeaderValue::from_static(value));
        }
        COOKIE.read(&headers)
    }

    #[test]
    fn one_cookie_of_the_name_is_read_and_two_are_none() {
        assert_eq!(read(&["a=1; flow=ours; b=2"]).as_deref(), Some("ours"));
        assert_eq!(read(&["flowx=1", "flow=ours"]).as_deref(), Some("ours"));
        assert_eq!(read(&["flow=planted; flow=ours"]), None);
        assert_eq!(read(&["flow=planted", "flow=ours"]), None);
        assert_eq!(read(&["other=1"]), None);
    }
}
