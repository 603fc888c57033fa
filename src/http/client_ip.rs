//! Who the client is, and how many requests it may make. The client address
//! is the peer's, or — when the peer is a trusted proxy — found by walking
//! `X-Forwarded-For` from the right past trusted proxies: the first entry
//! that is not one is the client. An entry may carry a port (`ip:port`,
//! `[v6]:port`); one that cannot be parsed ends the walk, and the last
//! trusted hop is taken as the client (a forged left-hand entry never is).
//! The recovery and login routes allow `rate_limit.ip_per_minute` requests
//! per client (token bucket; 0 switches it off), counting an IPv6 client by
//! its /64, the block one subscriber is usually given.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::error::ApiError;
use super::extract::locale_of;
use crate::error::Error;
use crate::services::Services;

/// The resolved client address, set on every request by `middleware`.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

pub struct ClientPolicy {
    trusted: Vec<IpNet>,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

/// Routes where guessing or flooding is the threat.
fn is_limited(path: &str) -> bool {
    path.starts_with("/api/auth/recovery/")
        || path.starts_with("/v2/auth/recovery/")
        || path == "/api/auth/login"
        || path == "/v2/auth/login"
        || path.starts_with("/ui/recovery")
        || path == "/ui/report"
}

impl ClientPolicy {
    pub fn from_settings(services: &Services) -> anyhow::Result<Self> {
        let trusted = services
            .settings
            .trusted_proxies
            .iter()
            .map(|cidr| {
                cidr.parse::<IpNet>()
                    .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from))
                    .with_context(|| format!("trusted_proxies: {cidr:?} is not an address or CIDR"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let limiter = NonZeroU32::new(services.settings.rate_limit.ip_per_minute)
            .map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Ok(Self {
            trusted,
            limiter,
            checks: AtomicU64::new(0),
        })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        // Split the raw bytes, so one entry that is not text (a client's
        // forgery, to which a proxy appended the real address on the same
        // line) spoils only itself.
        let entries: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .collect();
        let mut client = peer;
        for entry in entries.into_iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                break;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    /// Seconds to wait when `ip` is over its budget.
    fn over_budget(&self, ip: IpAddr) -> Option<u64> {
        let limiter = self.limiter.as_ref()?;
        // Forget idle clients now and then so the table stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            limiter.retain_recent();
        }
        limiter
            .check_key(&budget_key(ip))
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1))
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    None
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What a per-client budget is counted on: an IPv4 address, or an IPv6 /64.
pub fn budget_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

pub async fn middleware(
    State((policy, services)): State<(Arc<ClientPolicy>, Services)>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(addr)| canonical(addr.ip()));
    let ip = policy.resolve(peer, request.headers());
    request.extensions_mut().insert(ClientIp(ip));
    if is_limited(request.uri().path())
        && let Some(retry_after_secs) = policy.over_budget(ip)
    {
        let locale = locale_of(request.headers(), &services);
        return ApiError::new(Error::TooManyRequests { retry_after_secs }, locale).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use axum::http::HeaderMap;

    use super::ClientPolicy;

    fn policy(trusted: &[&str]) -> ClientPolicy {
        ClientPolicy {
            trusted: trusted.iter().filter_map(|t| t.parse().ok()).collect(),
            limiter: None,
            checks: Default::default(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 10.0.0.7".parse().unwrap_or_else(|_| unreachable!()),
        );
        let trusting = policy(&["10.0.0.0/8"]);
        assert_eq!(trusting.resolve(ip("10.0.0.1"), &headers), ip("203.0.113.9"));
        assert_eq!(trusting.resolve(ip("198.51.100.1"), &headers), ip("198.51.100.1"));
        assert_eq!(policy(&[]).resolve(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap_or_else(|_| unreachable!()));
        headers
    }

    #[test]
    fn a_proxy_entry_with_a_port_is_read_as_its_address() {
        let trusting = policy(&["10.0.0.0/8"]);
        let headers = forwarded("6.6.6.6, 203.0.113.9:51234");
        assert_eq!(trusting.resolve(ip("10.0.0.1"), &headers), ip("203.0.113.9"));
        let headers = forwarded("6.6.6.6, [2001:db8::7]:443");
        assert_eq!(trusting.resolve(ip("10.0.0.1"), &headers), ip("2001:db8::7"));
    }

    #[test]
    fn an_unparseable_entry_ends_the_trusted_chain_so_a_forged_left_entry_is_never_the_client() {
        let trusting = policy(&["10.0.0.0/8"]);
        let headers = forwarded("6.6.6.6, garbage, 10.0.0.9");
        assert_eq!(trusting.resolve(ip("10.0.0.1"), &headers), ip("10.0.0.9"));
        let headers = forwarded("6.6.6.6, not-an-ip");
        assert_eq!(trusting.resolve(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    #[test]
    fn a_forged_entry_that_is_not_text_spoils_only_itself() {
        let trusting = policy(&["10.0.0.0/8"]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xc3\xa9, 203.0.113.9").unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(trusting.resolve(ip("10.0.0.1"), &headers), ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_clients_are_budgeted_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            super::budget_key(ip("2001:db8:1:2::1")),
            super::budget_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            super::budget_key(ip("2001:db8:1:2::1")),
            super::budget_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(super::budget_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
