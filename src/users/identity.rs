//! The `mode` + `identity` pair that addresses a user.

use serde::Deserialize;
use serde_json::Value;

use crate::crypto::IndexKind;
use crate::crypto::secrets::is_uuid_shaped;
use crate::http::ApiError;
use crate::http::lenient::{Int, Text, text};
use crate::http::page;

/// A `{mode, identity}` pair as an element of a list (e.g. `UserDeleteBulk.users`).
#[derive(Debug, Deserialize, Default)]
pub struct IdentityFields {
    /// login, token, email, phone or custom.
    pub mode: Option<Text>,
    /// The value to look up (a number is accepted, e.g. a phone).
    pub identity: Option<Text>,
}

impl IdentityFields {
    /// Validates the pair.
    pub fn parse(self) -> Result<Identity, ApiError> {
        Identity::parse(self.mode, self.identity)
    }
}

/// A listing of one user's records: `{mode, identity, offset, limit}`.
#[derive(Debug, Deserialize, Default)]
pub struct IdentityPage {
    /// login, token, email, phone or custom.
    pub mode: Option<Text>,
    /// The value to look up.
    pub identity: Option<Text>,
    /// Rows to skip.
    pub offset: Option<Int>,
    /// Rows per page.
    pub limit: Option<Int>,
}

impl IdentityPage {
    /// Validates the address and reads the page as [`page`] does: `(who, offset, limit)`.
    pub fn parse(self) -> Result<(Identity, i64, i64), ApiError> {
        let who = Identity::parse(self.mode, self.identity)?;
        let (offset, limit) = page(self.offset, self.limit);
        Ok((who, offset, limit))
    }
}

/// A validated user address.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Which index to search.
    pub kind: IndexKind,
    /// Normalised value.
    pub normalised: String,
}

impl Identity {
    /// Validates the request's `mode` and `identity`: both present, a known mode, a UUID for `token`.
    pub fn parse(mode: Option<Text>, identity: Option<Text>) -> Result<Identity, ApiError> {
        let (mode, identity) = match (text(mode), text(identity)) {
            (Some(mode), Some(identity)) => (mode, identity),
            (None, None) => return Err(ApiError::bad_request("Missing API request parameters: mode, identity")),
            (None, _) => return Err(ApiError::bad_request("Missing API request parameters: mode")),
            (_, None) => return Err(ApiError::bad_request("Missing API request parameters: identity")),
        };
        let kind = IndexKind::from_mode(mode.trim())
            .ok_or_else(|| ApiError::bad_request("The mode parameter has an incorrect format"))?;
        if kind == IndexKind::Token && !is_uuid_shaped(identity.trim()) {
            return Err(ApiError::bad_request("Bad UUID"));
        }
        let normalised = kind.normalise(&Value::String(identity)).ok_or_else(ApiError::user_not_found)?;
        Ok(Identity { kind, normalised })
    }

    /// True when a user with `token` and `profile` carries this identity, normalised as the
    /// index is: the check that a row found through a blind index is the one asked for.
    pub fn is_carried_by(&self, token: &str, profile: &Value) -> bool {
        let carried = match self.kind {
            IndexKind::Token => self.kind.normalise(&Value::String(token.to_owned())),
            kind => profile.get(kind.name()).and_then(|value| kind.normalise(value)),
        };
        carried.as_deref() == Some(self.normalised.as_str())
    }
}
