//! Unwrapped keys held in memory: the key-encryption key and each tenant's master keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use moka::sync::Cache;

use super::aead::{self, Aad, CryptoError};
use super::index::{IndexKey, IndexKind, IndexValue};
use super::keys::{DataKey, Key256};
use crate::tenants::TenantId;

/// One stored version of a tenant master key, as read from the database.
#[derive(Debug, Clone)]
pub struct WrappedMasterKey {
    /// Key version (1 for the first key).
    pub version: u32,
    /// The master key sealed under the key-encryption key.
    pub wrapped: Vec<u8>,
}

/// A tenant's unwrapped keys and the sub-keys derived from them.
pub struct TenantKeys {
    tenant: TenantId,
    active: u32,
    masters: BTreeMap<u32, Key256>,
    index_keys: HashMap<IndexKind, IndexKey>,
    session_index_key: IndexKey,
    shared_record_index_key: IndexKey,
    token_uuid_index_key: IndexKey,
    token_base_index_key: IndexKey,
    token_value_index_key: IndexKey,
    file_tag_index_key: IndexKey,
    search_gram_key: IndexKey,
    bulk_unlock_key: IndexKey,
    audit_chain_key: IndexKey,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys").field("tenant", &self.tenant).field("active", &self.active).finish()
    }
}

const USER_KEYS: &str = "user_keys";

impl TenantKeys {
    /// Builds from unwrapped master keys; `masters` must not be empty.
    fn new(tenant: TenantId, masters: BTreeMap<u32, Key256>) -> Option<TenantKeys> {
        let (&active, _) = masters.last_key_value()?;
        // Index keys come from the first master key so that blind indexes survive rotation.
        let (_, first) = masters.first_key_value()?;
        let index_keys = [IndexKind::Token, IndexKind::Login, IndexKind::Email, IndexKind::Phone, IndexKind::Custom]
            .into_iter()
            .map(|kind| {
                let info = format!("blind-index/{}/tenant/{tenant}", kind.name());
                (kind, IndexKey::new(&first.derive(info.as_bytes())))
            })
            .collect();
        // Its own domain, so a session uuid never shares a digest with a user token.
        let session_index_key = IndexKey::new(&first.derive(format!("blind-index/session/tenant/{tenant}").as_bytes()));
        let shared_record_index_key =
            IndexKey::new(&first.derive(format!("blind-index/shared-record/tenant/{tenant}").as_bytes()));
        // A token's two handles and its value each get their own domain: a tokenuuid never shares
        // a digest with a user token, nor a tokenbase with the value it stands for.
        let token_uuid_index_key =
            IndexKey::new(&first.derive(format!("blind-index/token-uuid/tenant/{tenant}").as_bytes()));
        let token_base_index_key =
            IndexKey::new(&first.derive(format!("blind-index/token-base/tenant/{tenant}").as_bytes()));
        let token_value_index_key =
            IndexKey::new(&first.derive(format!("blind-index/token-value/tenant/{tenant}").as_bytes()));
        let file_tag_index_key =
            IndexKey::new(&first.derive(format!("blind-index/file-tag/tenant/{tenant}").as_bytes()));
        let search_gram_key = IndexKey::new(&first.derive(format!("search-gram/tenant/{tenant}").as_bytes()));
        let bulk_unlock_key =
            IndexKey::new(&first.derive(format!("blind-index/bulk-unlock/tenant/{tenant}").as_bytes()));
        // From the first master key too: the chain must verify across rotations.
        let audit_chain_key = IndexKey::new(&first.derive(format!("audit-chain/tenant/{tenant}").as_bytes()));
        Some(TenantKeys {
            tenant,
            active,
            masters,
            index_keys,
            session_index_key,
            shared_record_index_key,
            token_uuid_index_key,
            token_base_index_key,
            token_value_index_key,
            file_tag_index_key,
            search_gram_key,
            bulk_unlock_key,
            audit_chain_key,
        })
    }

    /// The keys of a master key just made, not cached anywhere (for sealing inside the
    /// transaction that stores it, which may still fail).
    pub fn from_master(tenant: TenantId, version: u32, master: Key256) -> TenantKeys {
        let masters = BTreeMap::from([(version, master)]);
        TenantKeys::new(tenant, masters).unwrap_or_else(|| unreachable!("one master key was given"))
    }

    /// The tenant these keys belong to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Version of the master key used for new wrapping.
    pub fn active_version(&self) -> u32 {
        self.active
    }

    /// The active master key (for comparison during recovery).
    pub fn active_master(&self) -> &Key256 {
        &self.masters[&self.active]
    }

    /// Blind index of an already normalised value.
    pub fn index(&self, kind: IndexKind, normalised: &str) -> IndexValue {
        self.index_keys[&kind].digest(normalised)
    }

    /// Blind index of a session uuid (already normalised to lower case).
    pub fn session_index(&self, normalised: &str) -> IndexValue {
        self.session_index_key.digest(normalised)
    }

    /// Blind index of a shared record uuid (already normalised to lower case).
    pub fn shared_record_index(&self, normalised: &str) -> IndexValue {
        self.shared_record_index_key.digest(normalised)
    }

    /// Blind index of a format-preserving token's tokenuuid (already normalised to lower case).
    pub fn token_uuid_index(&self, normalised: &str) -> IndexValue {
        self.token_uuid_index_key.digest(normalised)
    }

    /// Blind index of a format-preserving token's tokenbase (already normalised to lower case).
    pub fn token_base_index(&self, normalised: &str) -> IndexValue {
        self.token_base_index_key.digest(normalised)
    }

    /// Blind index of a tokenized value (already normalised and prefixed with its token type).
    pub fn token_value_index(&self, normalised: &str) -> IndexValue {
        self.token_value_index_key.digest(normalised)
    }

    /// Blind index of a normalised file tag: tenant-wide, so tag filters work across users.
    pub fn file_tag_index(&self, tag: &str) -> IndexValue {
        self.file_tag_index_key.digest(tag)
    }

    /// Keyed digest of one search n-gram of a profile field (`field` names the field, so equal
    /// n-grams of different fields do not share a digest).
    pub fn search_gram(&self, field: &str, gram: &str) -> IndexValue {
        self.search_gram_key.digest_parts(&[field.as_bytes(), gram.as_bytes()])
    }

    /// Blind index of a bulk unlock uuid (already normalised to lower case).
    pub fn bulk_unlock_index(&self, normalised: &str) -> IndexValue {
        self.bulk_unlock_key.digest(normalised)
    }

    /// The MAC key of the tenant's audit chain (see [`crate::audit::chain`]).
    pub fn audit_chain_key(&self) -> &IndexKey {
        &self.audit_chain_key
    }

    /// Wraps a user's data key for the row `record`.
    pub fn wrap_data_key(&self, record: &[u8], key: &DataKey) -> Vec<u8> {
        let aad = Aad { tenant: self.tenant, table: USER_KEYS, record, key_version: self.active };
        aead::seal(&self.masters[&self.active], aad, key.as_array())
    }

    /// Unwraps a user's data key sealed by [`Self::wrap_data_key`] under any known version.
    pub fn unwrap_data_key(&self, record: &[u8], wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let version = aead::key_version_of(wrapped).ok_or(CryptoError)?;
        let master = self.masters.get(&version).ok_or(CryptoError)?;
        let aad = Aad { tenant: self.tenant, table: USER_KEYS, record, key_version: version };
        let plain = zeroize::Zeroizing::new(aead::open(master, aad, wrapped)?);
        Key256::from_slice(&plain).ok_or(CryptoError)
    }

    /// Seals tenant-level data (not tied to one user) for `table`/`record`.
    pub fn seal(&self, table: &str, record: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let aad = Aad { tenant: self.tenant, table, record, key_version: self.active };
        aead::seal(&self.masters[&self.active], aad, plaintext)
    }

    /// Opens data sealed by [`Self::seal`].
    pub fn open(&self, table: &str, record: &[u8], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let version = aead::key_version_of(blob).ok_or(CryptoError)?;
        let master = self.masters.get(&version).ok_or(CryptoError)?;
        aead::open(master, Aad { tenant: self.tenant, table, record, key_version: version }, blob)
    }
}

/// Seals data under a user's data key. Version 1: data keys are never rotated in place.
pub fn seal_user(key: &DataKey, tenant: TenantId, table: &str, record: &[u8], plaintext: &[u8]) -> Vec<u8> {
    aead::seal(key, Aad { tenant, table, record, key_version: 1 }, plaintext)
}

/// Opens data sealed by [`seal_user`].
pub fn open_user(
    key: &DataKey,
    tenant: TenantId,
    table: &str,
    record: &[u8],
    blob: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    aead::open(key, Aad { tenant, table, record, key_version: 1 }, blob)
}

/// Seals a tenant master key under the key-encryption key.
pub fn wrap_master(kek: &Key256, tenant: TenantId, version: u32, master: &Key256) -> Vec<u8> {
    aead::seal(kek, master_aad(tenant, version, b"operational"), master.as_array())
}

/// Opens a master key sealed by [`wrap_master`].
pub fn unwrap_master(kek: &Key256, tenant: TenantId, version: u32, wrapped: &[u8]) -> Result<Key256, CryptoError> {
    let plain = zeroize::Zeroizing::new(aead::open(kek, master_aad(tenant, version, b"operational"), wrapped)?);
    Key256::from_slice(&plain).ok_or(CryptoError)
}

/// Seals a tenant master key under the Shamir-shared recovery key.
pub fn wrap_master_for_recovery(recovery: &Key256, tenant: TenantId, version: u32, master: &Key256) -> Vec<u8> {
    aead::seal(recovery, master_aad(tenant, version, b"recovery"), master.as_array())
}

/// Opens a master key sealed by [`wrap_master_for_recovery`].
pub fn unwrap_master_for_recovery(
    recovery: &Key256,
    tenant: TenantId,
    version: u32,
    wrapped: &[u8],
) -> Result<Key256, CryptoError> {
    let plain = zeroize::Zeroizing::new(aead::open(recovery, master_aad(tenant, version, b"recovery"), wrapped)?);
    Key256::from_slice(&plain).ok_or(CryptoError)
}

/// A check value of a key-encryption key: stored, and compared by whatever wraps a master key,
/// so that no replica wraps under a key that is no longer in force. Reveals nothing of the key.
pub fn kek_check(kek: &Key256) -> [u8; 32] {
    *kek.derive(b"bunker/kek-check").as_array()
}

/// Seals a tenant's master key under the main tenant's keys: the recovery path of every other
/// tenant (the recovery shares open the main tenant's master key, which opens this).
pub fn wrap_master_for_main(main: &TenantKeys, tenant: TenantId, version: u32, master: &Key256) -> Vec<u8> {
    main.seal("tenant_keys", format!("recovery/tenant/{tenant}/version/{version}").as_bytes(), master.as_array())
}

/// Opens a master key sealed by [`wrap_master_for_main`].
pub fn unwrap_master_for_main(
    main: &TenantKeys,
    tenant: TenantId,
    version: u32,
    wrapped: &[u8],
) -> Result<Key256, CryptoError> {
    let label = format!("recovery/tenant/{tenant}/version/{version}");
    let plain = zeroize::Zeroizing::new(main.open("tenant_keys", label.as_bytes(), wrapped)?);
    Key256::from_slice(&plain).ok_or(CryptoError)
}

fn master_aad(tenant: TenantId, version: u32, purpose: &'static [u8]) -> Aad<'static> {
    Aad { tenant, table: "tenant_keys", record: purpose, key_version: version }
}

/// Most tenants whose unwrapped keys are kept; past it the least used are unwrapped again
/// when next needed.
pub const TENANT_KEYS_CAPACITY: u64 = 10_000;

/// The process-wide key ring: the key-encryption key and a cache of unwrapped tenant keys.
///
/// Cached keys do not expire: a tenant's master keys change only through operations that
/// forget them ([`KeyRing::forget`]), and a new wrapping key ([`KeyRing::replace_kek`]) re-wraps
/// the same master keys, so what is cached stays right. An expiry would only add database reads
/// and key unwrapping to the request path.
pub struct KeyRing {
    kek: RwLock<Key256>,
    tenants: Cache<TenantId, Arc<TenantKeys>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(<redacted>)")
    }
}

impl KeyRing {
    /// A ring around the key-encryption key derived from the operator's wrapping key.
    pub fn new(kek: Key256) -> KeyRing {
        KeyRing { kek: RwLock::new(kek), tenants: Cache::new(TENANT_KEYS_CAPACITY) }
    }

    /// A copy of the current key-encryption key.
    pub fn kek(&self) -> Key256 {
        self.kek.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Replaces the key-encryption key after the stored master keys were re-wrapped (the
    /// unwrapped master keys, and so the cached tenant keys, are unchanged).
    pub fn replace_kek(&self, kek: Key256) {
        *self.kek.write().unwrap_or_else(std::sync::PoisonError::into_inner) = kek;
    }

    /// The cached keys of a tenant, if already unlocked.
    pub fn cached(&self, tenant: TenantId) -> Option<Arc<TenantKeys>> {
        self.tenants.get(&tenant)
    }

    /// Drops a tenant's cached keys: the next use unwraps them from the database again.
    pub fn forget(&self, tenant: TenantId) {
        self.tenants.invalidate(&tenant);
    }

    /// Unwraps a tenant's stored master keys and caches them. Fails on a wrong wrapping key.
    pub fn unlock(&self, tenant: TenantId, stored: &[WrappedMasterKey]) -> Result<Arc<TenantKeys>, CryptoError> {
        let kek = self.kek();
        let mut masters = BTreeMap::new();
        for key in stored {
            masters.insert(key.version, unwrap_master(&kek, tenant, key.version, &key.wrapped)?);
        }
        let keys = Arc::new(TenantKeys::new(tenant, masters).ok_or(CryptoError)?);
        self.tenants.insert(tenant, keys.clone());
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_wrapping_round_trips_and_rejects_wrong_kek() {
        let kek = Key256::random();
        let master = Key256::random();
        let wrapped = wrap_master(&kek, TenantId::new(1), 1, &master);
        let ring = KeyRing::new(kek.clone());
        let keys = ring
            .unlock(TenantId::new(1), &[WrappedMasterKey { version: 1, wrapped: wrapped.clone() }])
            .expect("unlock");
        assert!(keys.active_master().ct_eq(&master));
        let wrong = KeyRing::new(Key256::random());
        assert!(wrong.unlock(TenantId::new(1), &[WrappedMasterKey { version: 1, wrapped: wrapped.clone() }]).is_err());
        // The same blob presented as another tenant's key does not open either.
        assert!(ring.unlock(TenantId::new(2), &[WrappedMasterKey { version: 1, wrapped }]).is_err());
    }

    #[test]
    fn tenant_master_keys_recover_through_the_main_tenant() {
        let main = TenantKeys::from_master(TenantId::MAIN, 1, Key256::random());
        let master = Key256::random();
        let wrapped = wrap_master_for_main(&main, TenantId::new(5), 1, &master);
        let opened = unwrap_master_for_main(&main, TenantId::new(5), 1, &wrapped).expect("opens");
        assert!(opened.ct_eq(&master));
        assert!(unwrap_master_for_main(&main, TenantId::new(6), 1, &wrapped).is_err());
        let other_main = TenantKeys::from_master(TenantId::MAIN, 1, Key256::random());
        assert!(unwrap_master_for_main(&other_main, TenantId::new(5), 1, &wrapped).is_err());
    }

    #[test]
    fn forgotten_keys_are_unlocked_again() {
        let kek = Key256::random();
        let stored =
            |tenant| [WrappedMasterKey { version: 1, wrapped: wrap_master(&kek, tenant, 1, &Key256::random()) }];
        let ring = KeyRing::new(kek.clone());
        let (two, three) = (stored(TenantId::new(2)), stored(TenantId::new(3)));
        let unlocked = ring.unlock(TenantId::new(2), &two).expect("unlock");
        ring.unlock(TenantId::new(3), &three).expect("unlock");
        assert!(ring.cached(TenantId::new(2)).is_some_and(|keys| Arc::ptr_eq(&keys, &unlocked)));
        ring.forget(TenantId::new(2));
        assert!(ring.cached(TenantId::new(2)).is_none());
        assert!(ring.cached(TenantId::new(3)).is_some(), "another tenant's keys stay");
        let again = ring.unlock(TenantId::new(2), &two).expect("unlock");
        assert!(again.active_master().ct_eq(unlocked.active_master()));
        assert!(ring.cached(TenantId::new(2)).is_some());
    }

    #[test]
    fn cached_keys_survive_a_new_wrapping_key() {
        let kek = Key256::random();
        let master = Key256::random();
        let ring = KeyRing::new(kek.clone());
        ring.unlock(
            TenantId::new(1),
            &[WrappedMasterKey { version: 1, wrapped: wrap_master(&kek, TenantId::new(1), 1, &master) }],
        )
        .expect("unlock");
        let new_kek = Key256::random();
        ring.replace_kek(new_kek.clone());
        assert!(ring.kek().ct_eq(&new_kek));
        assert!(ring.cached(TenantId::new(1)).is_some_and(|keys| keys.active_master().ct_eq(&master)));
        // Keys unwrapped from now on need the master keys re-wrapped under the new one.
        let rewrapped = wrap_master(&new_kek, TenantId::new(1), 1, &master);
        ring.forget(TenantId::new(1));
        assert!(ring.unlock(TenantId::new(1), &[WrappedMasterKey { version: 1, wrapped: rewrapped }]).is_ok());
    }

    #[test]
    fn data_keys_are_bound_to_their_row() {
        let master = Key256::random();
        let keys = TenantKeys::new(TenantId::new(7), BTreeMap::from([(1, master)])).expect("keys");
        let data_key = Key256::random();
        let wrapped = keys.wrap_data_key(b"row-a", &data_key);
        assert!(keys.unwrap_data_key(b"row-a", &wrapped).expect("unwrap").ct_eq(&data_key));
        assert!(keys.unwrap_data_key(b"row-b", &wrapped).is_err());
    }

    #[test]
    fn session_indexes_are_domain_separated_from_token_indexes() {
        let keys = TenantKeys::new(TenantId::new(7), BTreeMap::from([(1, Key256::random())])).expect("keys");
        let uuid = "3b1f0c2e-8d4a-4f6b-9c1d-2e7a5b8c9d0f";
        assert_eq!(keys.session_index(uuid), keys.session_index(uuid));
        assert_ne!(keys.session_index(uuid), keys.index(IndexKind::Token, uuid));
    }

    #[test]
    fn token_indexes_are_domain_separated() {
        let keys = TenantKeys::new(TenantId::new(7), BTreeMap::from([(1, Key256::random())])).expect("keys");
        let value = "4111111111111111";
        let digests = [
            keys.token_uuid_index(value),
            keys.token_base_index(value),
            keys.token_value_index(value),
            keys.index(IndexKind::Token, value),
            keys.session_index(value),
        ];
        for (i, a) in digests.iter().enumerate() {
            assert!(digests[i + 1..].iter().all(|b| a != b), "digest {i} repeats");
        }
        let other =
            TenantKeys::new(TenantId::new(8), BTreeMap::from([(1, keys.active_master().clone())])).expect("keys");
        assert_ne!(keys.token_value_index(value), other.token_value_index(value));
    }
}
