//! The data subject's portal login (issue 19): `CaptchaCreate`, `UserPrelogin` and `UserLogin`,
//! public operations (no token; the tenant is `X-Bunker-Tenant`, else the main tenant).
//!
//! A person asks for a captcha, answers it with their email address or phone number
//! (`UserPrelogin`), receives a six-digit code by mail or SMS when a user has that address, and
//! exchanges the code for a user login access token (`UserLogin`), as `XTokenCreateForUser`
//! makes: their own record only, changes through requests. Captchas and codes are single use,
//! live five minutes and are stored as keyed digests; a code allows five attempts. The answer
//! to `UserPrelogin` is the same whether or not a user has the address.

pub mod captcha;
pub mod login;
pub mod sms;
pub mod web;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::crypto::index::IndexValue;
use crate::http::rate::ClientAddr;
use crate::http::{ApiError, Operation, op};

/// How long a captcha or a code can be used.
pub const LIFETIME_SECS: i64 = 5 * 60;
/// Attempts one code allows.
pub const MAX_ATTEMPTS: i64 = 5;
/// Captchas one tenant may have outstanding at once.
pub const MAX_LIVE_CAPTCHAS: i64 = 10_000;

/// The portal's operations (public).
pub fn public_operations() -> Vec<Operation> {
    vec![op("CaptchaCreate", captcha::create), op("UserPrelogin", login::prelogin), op("UserLogin", login::login)]
}

/// The portal's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalSettings {
    /// Where codes for phone numbers are posted (`BUNKER_SMS_WEBHOOK_URL`): `{"to", "text"}`
    /// as JSON, for any SMS gateway. None: codes go by mail only.
    pub sms_webhook: Option<String>,
    /// Calls of the portal's operations one client address may make per minute
    /// (`BUNKER_PORTAL_REQUESTS_PER_MINUTE`).
    pub per_address_per_minute: u32,
    /// Codes one identity may be sent per hour (`BUNKER_PORTAL_CODES_PER_HOUR`).
    pub codes_per_hour: u32,
    /// Whether `UserPrelogin` asks for a captcha (`BUNKER_PORTAL_CAPTCHA`, `on` unless `off`):
    /// off only where the portal sits behind bot protection of its own. The limits per address
    /// and per identity hold either way.
    pub captcha: bool,
}

impl Default for PortalSettings {
    fn default() -> PortalSettings {
        PortalSettings { sms_webhook: None, per_address_per_minute: 30, codes_per_hour: 10, captcha: true }
    }
}

impl std::fmt::Debug for PortalSettings {
    // The webhook's URL may carry the gateway's key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSettings")
            .field("sms_webhook", &self.sms_webhook.as_ref().map(|_| "[redacted]"))
            .field("per_address_per_minute", &self.per_address_per_minute)
            .field("codes_per_hour", &self.codes_per_hour)
            .field("captcha", &self.captcha)
            .finish()
    }
}

/// The portal's rate limits: per client address, and per identity (by its keyed digest).
#[derive(Clone)]
pub struct PortalLimits(Arc<Limiters>);

struct Limiters {
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    identities: DefaultKeyedRateLimiter<IndexValue>,
}

impl std::fmt::Debug for PortalLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalLimits").finish_non_exhaustive()
    }
}

impl PortalLimits {
    /// Limiters with `settings`; forgets idle keys every minute (on the current runtime).
    pub fn new(settings: &PortalSettings) -> PortalLimits {
        let per_minute = NonZeroU32::new(settings.per_address_per_minute).unwrap_or(NonZeroU32::MIN);
        let per_hour = NonZeroU32::new(settings.codes_per_hour).unwrap_or(NonZeroU32::MIN);
        let identity_quota = Quota::with_period(Duration::from_secs(3600) / per_hour.get())
            .unwrap_or_else(|| Quota::per_hour(per_hour))
            .allow_burst(per_hour);
        let limits = PortalLimits(Arc::new(Limiters {
            addresses: RateLimiter::keyed(Quota::per_minute(per_minute)),
            identities: RateLimiter::keyed(identity_quota),
        }));
        crate::http::rate::sweep_every_minute(&limits.0, |inner| {
            inner.addresses.retain_recent();
            inner.identities.retain_recent();
            inner.addresses.shrink_to_fit();
            inner.identities.shrink_to_fit();
        });
        limits
    }

    /// Counts a call from `client`: 429 past its allowance.
    pub fn address(&self, client: Option<ClientAddr>) -> Result<(), ApiError> {
        let Some(client) = client else { return Ok(()) };
        self.0.addresses.check_key(&client.bucket()).map_err(|_| ApiError::TooManyRequests)
    }

    /// Counts a code asked for `identity`: 429 past its allowance (the same whether or not a
    /// user has the identity).
    pub fn identity(&self, identity: &IndexValue) -> Result<(), ApiError> {
        self.0.identities.check_key(identity).map_err(|_| ApiError::TooManyRequests)
    }
}
