//! Rate limits per client address: on failed authentication and on the public operations.
//!
//! The client address is the connection's peer, or, when the peer is one of the configured
//! proxies (`BUNKER_TRUSTED_PROXIES`), the nearest address in `X-Forwarded-For` that is not
//! itself a trusted proxy; a forwarded address from anyone else is ignored, so it cannot be used
//! to pick a fresh bucket. IPv6 clients are limited by /64, which one host usually owns whole.
//!
//! Limits are per process: N replicas allow N times the rate, which still bounds what one
//! address can make the database do.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::error::ApiError;

/// Header naming the clients a proxy forwards for.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The address a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The bucket of this address: itself for IPv4, its /64 for IPv6.
    pub(crate) fn bucket(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        }
    }
}

/// Rate-limit settings.
#[derive(Debug, Clone)]
pub struct RateSettings {
    /// Failed authentications one address may make per minute before it is refused.
    pub auth_failures_per_minute: u32,
    /// Calls of public operations one address may make per minute.
    pub public_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for RateSettings {
    fn default() -> RateSettings {
        RateSettings { auth_failures_per_minute: 30, public_per_minute: 600, trusted_proxies: Vec::new() }
    }
}

/// The vault's rate limiters.
#[derive(Clone)]
pub struct RateLimits(Arc<Inner>);

struct Inner {
    settings: RateSettings,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    public: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses that spent their failures, until when: their unknown tokens are not looked up.
    blocked: moka::sync::Cache<IpAddr, Instant>,
    /// Digests of tokens verified in the last ten minutes: still looked up from a blocked
    /// address, so that a service sharing an address with an attacker keeps working (a digest
    /// of a valid token cannot be guessed).
    known_good: moka::sync::Cache<[u8; 32], ()>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("settings", &self.0.settings).finish()
    }
}

fn per_minute(count: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    /// Limiters with `settings`; forgets idle addresses every minute (on the current runtime,
    /// when there is one).
    pub fn new(settings: RateSettings) -> RateLimits {
        let inner = Inner {
            failures: RateLimiter::keyed(per_minute(settings.auth_failures_per_minute)),
            public: RateLimiter::keyed(per_minute(settings.public_per_minute)),
            blocked: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(600)).build(),
            known_good: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
            settings,
        };
        let limits = RateLimits(Arc::new(inner));
        sweep_every_minute(&limits.0, |inner| {
            inner.failures.retain_recent();
            inner.public.retain_recent();
            inner.failures.shrink_to_fit();
            inner.public.shrink_to_fit();
        });
        limits
    }

    /// The address a request counts against.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<ClientAddr> {
        let peer = peer?;
        let trusted = |ip: &IpAddr| self.0.settings.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return Some(ClientAddr(peer));
        }
        // Right to left: each trusted proxy appended the address it received from.
        let forwarded = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else { break };
            client = ip;
            if !trusted(&ip) {
                break;
            }
        }
        Some(ClientAddr(client))
    }

    /// True when the token with `digest` may not be looked up for `client`: the address has
    /// spent its failures and the token is not one the vault verified recently.
    pub fn auth_blocked(&self, client: Option<ClientAddr>, digest: &[u8; 32]) -> bool {
        self.is_blocked(client) && !self.0.known_good.contains_key(digest)
    }

    /// True while `client` has spent its allowance of failed authentications.
    pub fn is_blocked(&self, client: Option<ClientAddr>) -> bool {
        client.and_then(|c| self.0.blocked.get(&c.bucket())).is_some_and(|until| until > Instant::now())
    }

    /// Remembers a token digest the vault has just verified.
    pub fn auth_succeeded(&self, digest: [u8; 32]) {
        self.0.known_good.insert(digest, ());
    }

    /// Counts a failed authentication; true when the address has now spent its allowance.
    pub fn auth_failed(&self, client: Option<ClientAddr>) -> bool {
        let Some(client) = client else { return false };
        let bucket = client.bucket();
        match self.0.failures.check_key(&bucket) {
            Ok(()) => false,
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                self.0.blocked.insert(bucket, Instant::now() + wait.max(Duration::from_secs(1)));
                tracing::warn!("authentication failures over the limit: unknown tokens from one address refused");
                true
            }
        }
    }

    /// Counts a call of a public operation; 429 when the address is over its allowance.
    pub fn public_call(&self, client: Option<ClientAddr>) -> Result<(), ApiError> {
        let Some(client) = client else { return Ok(()) };
        self.0.public.check_key(&client.bucket()).map_err(|_| ApiError::TooManyRequests)
    }
}

/// Works out the client address of every request (see [`RateLimits::client`]).
pub async fn identify(State(limits): State<RateLimits>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    if let Some(client) = limits.client(peer, req.headers()) {
        req.extensions_mut().insert(client);
    }
    next.run(req).await
}

/// Limits the calls of a public operation per client address.
pub async fn public(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    match limits.public_call(req.extensions().get::<ClientAddr>().copied()) {
        Ok(()) => next.run(req).await,
        Err(err) => err.into_response(),
    }
}

/// Runs `sweep` over `limiters` every minute on the current runtime (none: never), for as long
/// as they live: keyed limiters forget the keys they no longer limit.
pub fn sweep_every_minute<T: Send + Sync + 'static>(limiters: &Arc<T>, sweep: fn(&T)) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let weak = Arc::downgrade(limiters);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(limiters) = weak.upgrade() else { break };
            sweep(&limiters);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED_FOR, forwarded.parse().expect("header"));
        headers
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let limits = RateLimits::new(RateSettings {
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("net")],
            ..RateSettings::default()
        });
        let client = |peer: &str, forwarded: &str| {
            limits.client(Some(peer.parse().expect("ip")), &headers(forwarded)).map(|c| c.0.to_string())
        };
        // A client that is not a proxy cannot pick its address.
        assert_eq!(client("203.0.113.9", "198.51.100.1").as_deref(), Some("203.0.113.9"));
        // Behind two trusted proxies: the nearest untrusted hop, not what the client claimed.
        assert_eq!(client("10.0.0.2", "198.51.100.1, 203.0.113.7, 10.0.0.1").as_deref(), Some("203.0.113.7"));
        // Garbage stops the walk at the last good hop.
        assert_eq!(client("10.0.0.2", "nonsense").as_deref(), Some("10.0.0.2"));
        assert_eq!(limits.client(None, &HeaderMap::new()), None);
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a = ClientAddr("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = ClientAddr("2001:db8:1:2:bbbb::2".parse().expect("ip"));
        let c = ClientAddr("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a.bucket(), b.bucket());
        assert_ne!(a.bucket(), c.bucket());
    }

    #[test]
    fn failures_block_after_the_allowance() {
        let limits = RateLimits::new(RateSettings { auth_failures_per_minute: 2, ..RateSettings::default() });
        let attacker = Some(ClientAddr("192.0.2.1".parse().expect("ip")));
        let other = Some(ClientAddr("192.0.2.2".parse().expect("ip")));
        let (guess, valid) = ([1; 32], [2; 32]);
        limits.auth_succeeded(valid);
        assert!(!limits.auth_failed(attacker));
        assert!(!limits.auth_failed(attacker));
        assert!(!limits.auth_blocked(attacker, &guess));
        assert!(limits.auth_failed(attacker));
        assert!(limits.auth_blocked(attacker, &guess));
        assert!(!limits.auth_blocked(attacker, &valid), "a recently verified token is still looked up");
        assert!(!limits.auth_blocked(other, &guess));
    }
}
