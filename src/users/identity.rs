//! The `mode` + `identity` pair that addresses a user.

use serde::Deserialize;
use serde_json::Value;

use crate::crypto::IndexKind;
use crate::crypto::secrets::is_uuid_shaped;
use crate::http::ApiError;
use crate::http::lenient::{Text, text};

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
}
