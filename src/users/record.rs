//! How a user is sealed at rest.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::{CryptoError, DataKey, IndexKind, TenantKeys};
use crate::store::users::ProfileIndexes;
use crate::tenants::TenantId;

const USERS: &str = "users";
const VERSIONS: &str = "user_versions";

/// The sealed content of a user row.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredUser {
    /// The user token (the row only holds its blind index).
    pub token: String,
    /// The profile exactly as the client sent it.
    pub profile: Value,
}

/// Seals the current record.
pub fn seal(key: &DataKey, tenant: TenantId, rid: &[u8], user: &StoredUser) -> Vec<u8> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(user).unwrap_or_default());
    seal_user(key, tenant, USERS, rid, &plain)
}

/// Opens the current record.
pub fn open(key: &DataKey, tenant: TenantId, rid: &[u8], blob: &[u8]) -> Result<StoredUser, CryptoError> {
    let plain = zeroize::Zeroizing::new(open_user(key, tenant, USERS, rid, blob)?);
    serde_json::from_slice(&plain).map_err(|_| CryptoError)
}

fn version_record(rid: &[u8], version: i64) -> Vec<u8> {
    [rid, &version.to_be_bytes()[..]].concat()
}

/// Seals a superseded profile for the history.
pub fn seal_version(key: &DataKey, tenant: TenantId, rid: &[u8], version: i64, profile: &Value) -> Vec<u8> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(profile).unwrap_or_default());
    seal_user(key, tenant, VERSIONS, &version_record(rid, version), &plain)
}

/// Opens a superseded profile.
pub fn open_version(
    key: &DataKey,
    tenant: TenantId,
    rid: &[u8],
    version: i64,
    blob: &[u8],
) -> Result<Value, CryptoError> {
    let plain = zeroize::Zeroizing::new(open_user(key, tenant, VERSIONS, &version_record(rid, version), blob)?);
    serde_json::from_slice(&plain).map_err(|_| CryptoError)
}

/// Blind indexes of a profile's login, email, phone and custom values.
pub fn indexes(keys: &TenantKeys, profile: &Value) -> ProfileIndexes {
    IndexKind::PROFILE
        .map(|kind| profile.get(kind.name()).and_then(|value| kind.normalise(value)).map(|n| keys.index(kind, &n)))
}

/// MD5 of a profile's JSON, as `UserListVersions` reports it (an integrity marker, not security).
pub fn md5_hex(profile: &Value) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(serde_json::to_vec(profile).unwrap_or_default()))
}
