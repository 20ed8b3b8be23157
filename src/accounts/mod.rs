//! Administrator accounts (issue 18): people who work in the vault under a role of their tenant
//! (or as its administrator), with a username and password, an optional second factor, and
//! sessions that are access tokens naming the account, so that the trail names them.
//!
//! An administrator invites an account (`AccountCreate`); its owner activates it with the
//! single-use token (mailed, or handed over when the vault has no mail server) and a password of
//! their choosing, then logs in (`AccountLogin`) for an access token that acts as the account's
//! role. Repeated failures lock the account for a while; a forgotten password is reset by mail.

pub mod admin;
pub mod details;
pub mod mail;
pub mod password;
pub mod public;
pub mod totp;

use std::time::Duration;

use crate::crypto::secrets::token_digest;
use crate::http::{ApiResult, Operation};
use crate::state::AppState;
use crate::store::accounts::NewAccountToken;
use crate::tenants::TenantId;

pub use mail::MailSettings;

/// How long an invitation can be accepted.
pub const INVITATION_SECS: i64 = 72 * 3600;
/// How long a password reset can be made.
pub const RESET_SECS: i64 = 3600;
/// Failed logins in a row that lock an account.
pub const MAX_FAILURES: i64 = 5;
/// How long a locked account stays locked.
pub const LOCK_SECS: i64 = 15 * 60;

/// Accounts' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    /// The absolute lifetime of a login session (`BUNKER_ACCOUNT_SESSION`).
    pub session: Duration,
    /// Where invitations and resets are mailed from (`BUNKER_SMTP_URL`); none: handed over.
    pub mail: Option<MailSettings>,
    /// How long a web console session may sit unused before it ends (`BUNKER_CONSOLE_IDLE`).
    pub console_idle: Duration,
}

impl Default for AccountSettings {
    fn default() -> AccountSettings {
        AccountSettings {
            session: Duration::from_secs(8 * 3600),
            mail: None,
            console_idle: Duration::from_secs(15 * 60),
        }
    }
}

/// The administrator operations on accounts.
pub fn operations() -> Vec<Operation> {
    admin::operations()
}

/// The operations of the accounts' owners: no token, or their own session's.
pub fn public_operations() -> Vec<Operation> {
    public::operations()
}

/// A tenant's name, for the messages and authenticator labels that name it.
pub(crate) async fn tenant_name(app: &AppState, tenant: TenantId) -> ApiResult<String> {
    let row = crate::store::tenants::get(&app.db, tenant).await?;
    Ok(row.map(|t| t.name).unwrap_or_default())
}

/// A fresh single-use token: the secret to hand over, and what is stored of it.
pub(crate) struct OneTimeToken {
    /// The secret (shown or mailed once).
    pub secret: String,
    /// Its SHA-256.
    pub digest: [u8; 32],
}

impl OneTimeToken {
    pub(crate) fn new() -> OneTimeToken {
        let mut bytes = [0u8; 32];
        crate::crypto::random::fill(&mut bytes);
        let secret = hex::encode(bytes);
        let digest = token_digest(&secret);
        OneTimeToken { secret, digest }
    }

    pub(crate) fn stored(&self, purpose: &'static str, expires_at: i64) -> NewAccountToken<'_> {
        NewAccountToken { digest: &self.digest, purpose, expires_at }
    }
}
