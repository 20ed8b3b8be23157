//! App names and how app data is sealed at rest.

use serde_json::Value;

use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::{CryptoError, DataKey};
use crate::http::ApiError;
use crate::http::lenient::{Text, text};
use crate::tenants::TenantId;

const USERAPPS: &str = "userapps";
const VERSIONS: &str = "userapp_versions";

/// A validated app name: `^[a-z][a-z0-9_]{1,30}$` after lower-casing (Databunker's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppName(String);

impl AppName {
    /// Validates the request's `appname`.
    pub fn parse(value: Option<Text>) -> Result<AppName, ApiError> {
        let name = text(value)
            .ok_or_else(|| ApiError::bad_request("Missing API request parameters: appname"))?
            .trim()
            .to_ascii_lowercase();
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && (2..=31).contains(&name.len()) {
            Ok(AppName(name))
        } else {
            Err(ApiError::bad_request("The appname parameter has an incorrect format"))
        }
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The row id bound into the associated data: the user's rid (fixed length) then the app name.
fn record_id(rid: &[u8], app: &AppName) -> Vec<u8> {
    [rid, app.0.as_bytes()].concat()
}

fn version_record_id(rid: &[u8], app: &AppName, version: i64) -> Vec<u8> {
    [rid, &version.to_be_bytes()[..], app.0.as_bytes()].concat()
}

fn seal(key: &DataKey, tenant: TenantId, table: &str, record: &[u8], data: &Value) -> Vec<u8> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(data).unwrap_or_default());
    seal_user(key, tenant, table, record, &plain)
}

fn open(key: &DataKey, tenant: TenantId, table: &str, record: &[u8], blob: &[u8]) -> Result<Value, CryptoError> {
    let plain = zeroize::Zeroizing::new(open_user(key, tenant, table, record, blob)?);
    serde_json::from_slice(&plain).map_err(|_| CryptoError)
}

/// Seals the current app data.
pub fn seal_current(key: &DataKey, tenant: TenantId, rid: &[u8], app: &AppName, data: &Value) -> Vec<u8> {
    seal(key, tenant, USERAPPS, &record_id(rid, app), data)
}

/// Opens the current app data.
pub fn open_current(
    key: &DataKey,
    tenant: TenantId,
    rid: &[u8],
    app: &AppName,
    blob: &[u8],
) -> Result<Value, CryptoError> {
    open(key, tenant, USERAPPS, &record_id(rid, app), blob)
}

/// Seals a superseded version for the history.
pub fn seal_version(key: &DataKey, tenant: TenantId, rid: &[u8], app: &AppName, version: i64, data: &Value) -> Vec<u8> {
    seal(key, tenant, VERSIONS, &version_record_id(rid, app, version), data)
}

/// Opens a superseded version.
pub fn open_version(
    key: &DataKey,
    tenant: TenantId,
    rid: &[u8],
    app: &AppName,
    version: i64,
    blob: &[u8],
) -> Result<Value, CryptoError> {
    open(key, tenant, VERSIONS, &version_record_id(rid, app, version), blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<String, String> {
        AppName::parse(Some(Text(value.to_owned()))).map(|a| a.0).map_err(|e| e.to_string())
    }

    #[test]
    fn app_names_follow_databunker_rule() {
        assert_eq!(parse("Shop_2").as_deref(), Ok("shop_2"));
        assert_eq!(parse("ab").as_deref(), Ok("ab"));
        assert_eq!(parse(&format!("a{}", "b".repeat(30))).map(|s| s.len()), Ok(31));
        for bad in ["a", "1app", "_app", "my-app", "app name", "", &format!("a{}", "b".repeat(31)), "éclair"] {
            assert_eq!(parse(bad), Err("The appname parameter has an incorrect format".to_owned()), "{bad}");
        }
        assert_eq!(
            AppName::parse(None).map_err(|e| e.to_string()),
            Err("Missing API request parameters: appname".into())
        );
    }

    #[test]
    fn sealed_data_is_bound_to_user_and_app() {
        let key = crate::crypto::Key256::random();
        let rid = [7_u8; 16];
        let shop = AppName("shop".into());
        let blog = AppName("blog".into());
        let data = serde_json::json!({"cart": [1, 2]});
        let blob = seal_current(&key, TenantId::new(1), &rid, &shop, &data);
        assert_eq!(open_current(&key, TenantId::new(1), &rid, &shop, &blob).ok(), Some(data.clone()));
        assert!(open_current(&key, TenantId::new(1), &rid, &blog, &blob).is_err());
        assert!(open_current(&key, TenantId::new(1), &[8_u8; 16], &shop, &blob).is_err());
        assert!(open_version(&key, TenantId::new(1), &rid, &shop, 1, &blob).is_err());
        let old = seal_version(&key, TenantId::new(1), &rid, &shop, 1, &data);
        assert!(open_version(&key, TenantId::new(1), &rid, &shop, 2, &old).is_err());
    }
}
