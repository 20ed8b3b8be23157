//! What an account holds that identifies a person (username, address, names) and its TOTP
//! secrets: sealed together under the tenant's key, the account id as record label. Usernames
//! and addresses are also looked up by blind index.

use serde::{Deserialize, Serialize};

use crate::crypto::TenantKeys;
use crate::http::{ApiError, ApiResult};

/// Table label of the sealed details.
pub const TABLE: &str = "accounts";

/// Longest username, address and name, in characters.
const MAX_NAME: usize = 64;
const MAX_EMAIL: usize = 254;

/// An account's sealed details.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Details {
    /// As given (compared case-insensitively).
    pub username: String,
    /// As given (compared case-insensitively).
    pub email: String,
    /// Optional.
    #[serde(default)]
    pub firstname: String,
    /// Optional.
    #[serde(default)]
    pub lastname: String,
    /// The second factor's secret (base32), once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// A secret enrolled but not confirmed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_pending: Option<String>,
}

impl Details {
    /// Sealed for account `id`.
    pub fn seal(&self, keys: &TenantKeys, id: &str) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        keys.seal(TABLE, id.as_bytes(), &json)
    }

    /// Opened from account `id`'s row.
    pub fn open(keys: &TenantKeys, id: &str, sealed: &[u8]) -> ApiResult<Details> {
        let json = keys.open(TABLE, id.as_bytes(), sealed).map_err(ApiError::internal)?;
        serde_json::from_slice(&json).map_err(ApiError::internal)
    }
}

/// A username as given, checked: 3 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub fn username(value: Option<String>) -> ApiResult<String> {
    let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
    let fits = (3..=MAX_NAME).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !fits {
        return Err(ApiError::bad_request("The username must be 3 to 64 letters, digits or . _ @ -"));
    }
    Ok(value)
}

/// An e-mail address as given, checked for its shape.
pub fn email(value: Option<String>) -> ApiResult<String> {
    let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
    let plausible = value.rsplit_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.starts_with('.') && !domain.ends_with('.')
    });
    if !plausible || value.len() > MAX_EMAIL || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad_request("The email value is not valid"));
    }
    Ok(value)
}

/// An optional first or last name: at most 64 characters, no control characters.
pub fn name(field: &'static str, value: Option<String>) -> ApiResult<String> {
    let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
    if value.chars().count() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("The {field} value is not valid")));
    }
    Ok(value)
}

/// The blind index of a username.
pub fn username_index(keys: &TenantKeys, username: &str) -> Vec<u8> {
    keys.account_index("username", &username.to_lowercase()).to_vec()
}

/// The blind index of an address.
pub fn email_index(keys: &TenantKeys, email: &str) -> Vec<u8> {
    keys.account_index("email", &email.to_lowercase()).to_vec()
}
