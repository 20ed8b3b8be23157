//! What an agreement records, and how it is sealed at rest.

use serde::{Deserialize, Serialize};

use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::{CryptoError, DataKey};
use crate::tenants::TenantId;

const AGREEMENTS: &str = "agreements";
const HISTORY: &str = "agreement_history";

/// The sealed part of an agreement's current state (the status is a clear column).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// How the agreement was given (free text, e.g. `web-form`).
    pub agreementmethod: String,
    /// The client's reference for the agreement (e.g. a form submission id).
    pub referencecode: String,
    /// When the agreement starts (unix seconds).
    pub starttime: i64,
    /// When the agreement ends (unix seconds), 0 when open-ended.
    pub finaltime: i64,
    /// Who made the last change, as given by the client or else the principal's kind.
    pub lastmodifiedby: String,
}

/// Who made a change, from the request's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedBy {
    /// Access token id.
    pub id: String,
    /// Kind of principal (`root`, ...).
    pub kind: String,
}

/// One append-only history entry: the state as it became, with when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Time of the change (unix seconds).
    pub time: i64,
    /// Status after the change.
    pub status: String,
    /// State after the change.
    #[serde(flatten)]
    pub state: State,
    /// The principal that made the change.
    pub principal: ChangedBy,
}

/// The row id bound into the associated data: the user's rid (fixed length), the basis id,
/// and for history entries their number.
fn record_id(rid: &[u8], basis: i64, version: Option<i64>) -> Vec<u8> {
    let mut id = [rid, &basis.to_be_bytes()[..]].concat();
    if let Some(version) = version {
        id.extend_from_slice(&version.to_be_bytes());
    }
    id
}

fn seal<T: Serialize>(key: &DataKey, tenant: TenantId, table: &str, record: &[u8], value: &T) -> Vec<u8> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
    seal_user(key, tenant, table, record, &plain)
}

fn open<T: for<'de> Deserialize<'de>>(
    key: &DataKey,
    tenant: TenantId,
    table: &str,
    record: &[u8],
    blob: &[u8],
) -> Result<T, CryptoError> {
    let plain = zeroize::Zeroizing::new(open_user(key, tenant, table, record, blob)?);
    serde_json::from_slice(&plain).map_err(|_| CryptoError)
}

/// Seals the current state.
pub fn seal_state(key: &DataKey, tenant: TenantId, rid: &[u8], basis: i64, state: &State) -> Vec<u8> {
    seal(key, tenant, AGREEMENTS, &record_id(rid, basis, None), state)
}

/// Opens the current state.
pub fn open_state(key: &DataKey, tenant: TenantId, rid: &[u8], basis: i64, blob: &[u8]) -> Result<State, CryptoError> {
    open(key, tenant, AGREEMENTS, &record_id(rid, basis, None), blob)
}

/// Seals history entry number `version`.
pub fn seal_entry(key: &DataKey, tenant: TenantId, rid: &[u8], basis: i64, version: i64, entry: &Entry) -> Vec<u8> {
    seal(key, tenant, HISTORY, &record_id(rid, basis, Some(version)), entry)
}

/// Opens history entry number `version`.
pub fn open_entry(
    key: &DataKey,
    tenant: TenantId,
    rid: &[u8],
    basis: i64,
    version: i64,
    blob: &[u8],
) -> Result<Entry, CryptoError> {
    open(key, tenant, HISTORY, &record_id(rid, basis, Some(version)), blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_are_bound_to_user_basis_and_position() {
        let key = crate::crypto::Key256::random();
        let rid = [7_u8; 16];
        let state = State { referencecode: "ref-1".into(), starttime: 5, ..State::default() };
        let blob = seal_state(&key, TenantId::new(1), &rid, 3, &state);
        assert_eq!(open_state(&key, TenantId::new(1), &rid, 3, &blob).ok(), Some(state.clone()));
        assert!(open_state(&key, TenantId::new(1), &rid, 4, &blob).is_err());
        assert!(open_state(&key, TenantId::new(1), &[8_u8; 16], 3, &blob).is_err());
        assert!(open_state(&key, TenantId::new(2), &rid, 3, &blob).is_err());
        let entry = Entry {
            time: 9,
            status: "active".into(),
            state,
            principal: ChangedBy { id: "t".into(), kind: "root".into() },
        };
        let blob = seal_entry(&key, TenantId::new(1), &rid, 3, 1, &entry);
        assert_eq!(open_entry(&key, TenantId::new(1), &rid, 3, 1, &blob).ok(), Some(entry));
        assert!(open_entry(&key, TenantId::new(1), &rid, 3, 2, &blob).is_err());
    }
}
