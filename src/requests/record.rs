//! What a request asks for, and how its change and reason are sealed at rest.

use serde_json::Value;

use crate::appdata::AppName;
use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::{CryptoError, DataKey};
use crate::tenants::TenantId;

const CHANGES: &str = "user_requests.change";
const REASONS: &str = "user_requests.reason";

/// A change asked for, as the approval will apply it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Merge into the profile (RFC 7386), as `UserUpdate`.
    ChangeProfile(Value),
    /// Patch the profile (RFC 6902), as `UserPatch`; the operations as sent.
    PatchProfile(Value),
    /// Erase the user, as `UserDelete`.
    ForgetMe,
    /// Merge into an app record, as `AppdataUpdate`.
    ChangeAppData(AppName, Value),
    /// Cancel an agreement, as `AgreementCancel`.
    AgreementWithdraw(String),
}

/// Action names, as Databunker spells them.
pub mod action {
    /// [`super::Ask::ChangeProfile`].
    pub const CHANGE_PROFILE: &str = "change-profile";
    /// [`super::Ask::PatchProfile`].
    pub const PATCH_PROFILE: &str = "patch-profile";
    /// [`super::Ask::ForgetMe`].
    pub const FORGET_ME: &str = "forget-me";
    /// [`super::Ask::ChangeAppData`].
    pub const CHANGE_APP_DATA: &str = "change-app-data";
    /// [`super::Ask::AgreementWithdraw`].
    pub const AGREEMENT_WITHDRAW: &str = "agreement-withdraw";
}

impl Ask {
    /// The action name stored in clear and answered as `requesttype`.
    pub fn action(&self) -> &'static str {
        match self {
            Ask::ChangeProfile(_) => action::CHANGE_PROFILE,
            Ask::PatchProfile(_) => action::PATCH_PROFILE,
            Ask::ForgetMe => action::FORGET_ME,
            Ask::ChangeAppData(..) => action::CHANGE_APP_DATA,
            Ask::AgreementWithdraw(_) => action::AGREEMENT_WITHDRAW,
        }
    }

    /// The app name or brief the action concerns (catalogue names, stored in clear).
    pub fn target(&self) -> &str {
        match self {
            Ask::ChangeAppData(app, _) => app.as_str(),
            Ask::AgreementWithdraw(brief) => brief,
            _ => "",
        }
    }

    /// The personal part of the request, sealed at rest.
    pub fn change(&self) -> Option<&Value> {
        match self {
            Ask::ChangeProfile(change) | Ask::PatchProfile(change) | Ask::ChangeAppData(_, change) => Some(change),
            Ask::ForgetMe | Ask::AgreementWithdraw(_) => None,
        }
    }

    /// Rebuilds a stored request; `None` for an action or shape this version does not know.
    pub fn from_stored(action: &str, target: &str, change: Option<Value>) -> Option<Ask> {
        match (action, change) {
            (action::CHANGE_PROFILE, Some(change)) => Some(Ask::ChangeProfile(change)),
            (action::PATCH_PROFILE, Some(change)) => Some(Ask::PatchProfile(change)),
            (action::FORGET_ME, _) => Some(Ask::ForgetMe),
            (action::CHANGE_APP_DATA, Some(change)) => {
                let app = AppName::parse(Some(crate::http::lenient::Text(target.to_owned()))).ok()?;
                Some(Ask::ChangeAppData(app, change))
            }
            (action::AGREEMENT_WITHDRAW, _) => Some(Ask::AgreementWithdraw(target.to_owned())),
            _ => None,
        }
    }
}

/// Seals a request's change under the user's key, bound to the request.
pub fn seal_change(key: &DataKey, tenant: TenantId, uuid: &str, change: &Value) -> Vec<u8> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(change).unwrap_or_default());
    seal_user(key, tenant, CHANGES, uuid.as_bytes(), &plain)
}

/// Opens a change sealed by [`seal_change`].
pub fn open_change(key: &DataKey, tenant: TenantId, uuid: &str, blob: &[u8]) -> Result<Value, CryptoError> {
    let plain = zeroize::Zeroizing::new(open_user(key, tenant, CHANGES, uuid.as_bytes(), blob)?);
    serde_json::from_slice(&plain).map_err(|_| CryptoError)
}

/// Seals the reason given on approval or cancellation (free text: it may name the person).
pub fn seal_reason(key: &DataKey, tenant: TenantId, uuid: &str, reason: &str) -> Vec<u8> {
    seal_user(key, tenant, REASONS, uuid.as_bytes(), reason.as_bytes())
}

/// Opens a reason sealed by [`seal_reason`].
pub fn open_reason(key: &DataKey, tenant: TenantId, uuid: &str, blob: &[u8]) -> Result<String, CryptoError> {
    let plain = open_user(key, tenant, REASONS, uuid.as_bytes(), blob)?;
    String::from_utf8(plain).map_err(|_| CryptoError)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_compare_regardless_of_key_order() {
        // Duplicate detection compares opened changes: the order a client lists keys in must
        // not make an identical request look different.
        assert_eq!(json!({"a": 1, "b": {"c": 2, "d": 3}}), json!({"b": {"d": 3, "c": 2}, "a": 1}));
        assert_ne!(json!([1, 2]), json!([2, 1]));
    }

    #[test]
    fn stored_requests_rebuild() {
        let app = AppName::parse(Some(crate::http::lenient::Text("shop".into()))).expect("valid name");
        let asks = [
            Ask::ChangeProfile(json!({"name": "x"})),
            Ask::PatchProfile(json!([{"op": "remove", "path": "/name"}])),
            Ask::ForgetMe,
            Ask::ChangeAppData(app, json!({"cart": 1})),
            Ask::AgreementWithdraw("marketing".into()),
        ];
        for ask in asks {
            let rebuilt = Ask::from_stored(ask.action(), ask.target(), ask.change().cloned());
            assert_eq!(rebuilt.as_ref(), Some(&ask));
        }
        assert_eq!(Ask::from_stored("change-profile", "", None), None);
        assert_eq!(Ask::from_stored("unknown", "", None), None);
    }

    #[test]
    fn sealed_change_is_bound_to_its_request() {
        let key = DataKey::random();
        let sealed = seal_change(&key, TenantId::new(1), "a", &json!({"email": "x@example.com"}));
        assert_eq!(
            open_change(&key, TenantId::new(1), "a", &sealed).expect("opens"),
            json!({"email": "x@example.com"})
        );
        assert!(open_change(&key, TenantId::new(1), "b", &sealed).is_err());
        assert!(open_change(&key, TenantId::new(2), "a", &sealed).is_err());
        let reason = seal_reason(&key, TenantId::new(1), "a", "asked by phone");
        assert_eq!(open_reason(&key, TenantId::new(1), "a", &reason).expect("opens"), "asked by phone");
        assert!(open_change(&key, TenantId::new(1), "a", &reason).is_err());
    }
}
