//! Unwrapped keys held in memory: the key-encryption key and each tenant's master keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use moka::sync::Cache;

use super::aead::{self, Aad, CryptoError, Format};
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
    /// Retired: it no longer seals or opens anything. Only version 1 is kept once retired, as
    /// the tenant's root (see [`TenantKeys::root_matches`]); later versions are deleted.
    pub retired: bool,
}

/// What a tenant-level blob is for. Each purpose seals under its own HKDF subkey of the active
/// master key version, so each has its own budget of random nonces (README, Master-key rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// Audit events without a subject.
    Audit,
    /// Format-preserving tokens.
    Tokens,
    /// Sessions not bound to a user.
    Sessions,
    /// Users' data keys, and other tenants' master keys under the main tenant (recovery path).
    KeyWraps,
    /// Anything else sealed at tenant level (the tenant's admin email).
    Records,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 5] =
        [Purpose::Audit, Purpose::Tokens, Purpose::Sessions, Purpose::KeyWraps, Purpose::Records];

    /// Its name in key derivation and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Audit => "audit",
            Purpose::Tokens => "tokens",
            Purpose::Sessions => "sessions",
            Purpose::KeyWraps => "key-wraps",
            Purpose::Records => "records",
        }
    }

    /// The purpose of a blob sealed for `table` (the table label the callers already pass).
    pub fn of_table(table: &str) -> Purpose {
        match table {
            "audit_events" => Purpose::Audit,
            "tokens" => Purpose::Tokens,
            "sessions" => Purpose::Sessions,
            USER_KEYS | MASTER_KEYS => Purpose::KeyWraps,
            _ => Purpose::Records,
        }
    }
}

/// A tenant's unwrapped keys and the sub-keys derived from them.
pub struct TenantKeys {
    tenant: TenantId,
    active: u32,
    /// The first master key: the root every blind-index key (and the audit-chain key) derives
    /// from, so that they survive rotation and the retirement of version 1.
    root: Key256,
    /// The live master key versions (version 1 among them until it is retired).
    masters: BTreeMap<u32, Key256>,
    /// Per-purpose subkeys of every live version.
    subkeys: HashMap<(u32, Purpose), Key256>,
    /// Set when a blob names a version newer than any known here: another replica rotated.
    stale: AtomicBool,
    index_keys: HashMap<IndexKind, IndexKey>,
    session_index_key: IndexKey,
    shared_record_index_key: IndexKey,
    token_uuid_index_key: IndexKey,
    token_base_index_key: IndexKey,
    token_value_index_key: IndexKey,
    file_tag_index_key: IndexKey,
    search_gram_key: IndexKey,
    bulk_unlock_key: IndexKey,
    account_index_key: IndexKey,
    audit_chain_key: IndexKey,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys").field("tenant", &self.tenant).field("active", &self.active).finish()
    }
}

const USER_KEYS: &str = "user_keys";
const MASTER_KEYS: &str = "tenant_keys";

fn subkey(master: &Key256, tenant: TenantId, version: u32, purpose: Purpose) -> Key256 {
    master.derive(format!("subkey/{}/tenant/{tenant}/version/{version}", purpose.name()).as_bytes())
}

impl TenantKeys {
    /// Builds from the root (the first master key) and the live master keys; `masters` must not
    /// be empty.
    fn new(tenant: TenantId, root: Key256, masters: BTreeMap<u32, Key256>) -> Option<TenantKeys> {
        let (&active, _) = masters.last_key_value()?;
        let subkeys = masters
            .iter()
            .flat_map(|(&version, master)| {
                Purpose::ALL.map(|purpose| ((version, purpose), subkey(master, tenant, version, purpose)))
            })
            .collect();
        // Index keys come from the root so that blind indexes survive rotation.
        let first = &root;
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
        // Administrator accounts' usernames and e-mail addresses (the field is part of the digest).
        let account_index_key = IndexKey::new(&first.derive(format!("blind-index/account/tenant/{tenant}").as_bytes()));
        // From the first master key too: the chain must verify across rotations.
        let audit_chain_key = IndexKey::new(&first.derive(format!("audit-chain/tenant/{tenant}").as_bytes()));
        Some(TenantKeys {
            tenant,
            active,
            root,
            masters,
            subkeys,
            stale: AtomicBool::new(false),
            index_keys,
            session_index_key,
            shared_record_index_key,
            token_uuid_index_key,
            token_base_index_key,
            token_value_index_key,
            file_tag_index_key,
            search_gram_key,
            bulk_unlock_key,
            account_index_key,
            audit_chain_key,
        })
    }

    /// The keys of a tenant's first master key just made, not cached anywhere (for sealing
    /// inside the transaction that stores it, which may still fail).
    pub fn from_master(tenant: TenantId, version: u32, master: Key256) -> TenantKeys {
        let masters = BTreeMap::from([(version, master.clone())]);
        TenantKeys::new(tenant, master, masters).unwrap_or_else(|| unreachable!("one master key was given"))
    }

    /// The tenant these keys belong to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Version of the master key used for new sealing.
    pub fn active_version(&self) -> u32 {
        self.active
    }

    /// The live versions, oldest first.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.masters.keys().copied()
    }

    /// The active master key (for comparison during recovery).
    pub fn active_master(&self) -> &Key256 {
        &self.masters[&self.active]
    }

    /// True when `key` is this tenant's root, the first master key (what the recovery key
    /// opens for the main tenant), compared in constant time.
    pub fn root_matches(&self, key: &Key256) -> bool {
        self.root.ct_eq(key)
    }

    /// True once a blob named a master key version newer than these keys know: the tenant's
    /// keys must be read again (see [`KeyRing::cached`]).
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// The header every blob sealed now by [`Self::seal`] starts with.
    pub fn current_header(&self) -> [u8; 5] {
        aead::header_prefix(Format::Subkey, self.active)
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

    /// Blind index of an administrator account's `field` (`username`, `email`), already
    /// normalised to lower case.
    pub fn account_index(&self, field: &str, normalised: &str) -> IndexValue {
        self.account_index_key.digest_parts(&[field.as_bytes(), normalised.as_bytes()])
    }

    /// The MAC key of the tenant's audit chain (see [`crate::audit::chain`]).
    pub fn audit_chain_key(&self) -> &IndexKey {
        &self.audit_chain_key
    }

    /// Wraps a user's data key for the row `record`.
    pub fn wrap_data_key(&self, record: &[u8], key: &DataKey) -> Vec<u8> {
        self.seal(USER_KEYS, record, key.as_array())
    }

    /// Unwraps a user's data key sealed by [`Self::wrap_data_key`] under any live version.
    pub fn unwrap_data_key(&self, record: &[u8], wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let plain = zeroize::Zeroizing::new(self.open(USER_KEYS, record, wrapped)?);
        Key256::from_slice(&plain).ok_or(CryptoError)
    }

    /// Re-wraps a data key wrapped under an older version; `None` when it is current already.
    pub fn rewrap_data_key(&self, record: &[u8], wrapped: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        self.reseal(USER_KEYS, record, wrapped)
    }

    /// Seals tenant-level data (not tied to one user) for `table`/`record`, under the active
    /// version's subkey for the table's [`Purpose`].
    pub fn seal(&self, table: &str, record: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let aad = Aad { tenant: self.tenant, table, record, key_version: self.active };
        aead::seal_as(Format::Subkey, &self.subkeys[&(self.active, Purpose::of_table(table))], aad, plaintext)
    }

    /// Opens data sealed by [`Self::seal`] under any live version (or, before subkeys, directly
    /// under a live master key).
    pub fn open(&self, table: &str, record: &[u8], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (format, version) = aead::header_of(blob).ok_or(CryptoError)?;
        let key = match format {
            Format::Direct => self.masters.get(&version),
            Format::Subkey => self.subkeys.get(&(version, Purpose::of_table(table))),
        };
        let Some(key) = key else {
            if version > self.active {
                self.stale.store(true, Ordering::Relaxed);
            }
            return Err(CryptoError);
        };
        aead::open_as(format, key, Aad { tenant: self.tenant, table, record, key_version: version }, blob)
    }

    /// Seals again under the active version what [`Self::seal`] sealed under an older one (or
    /// directly under a master key); `None` when it is current already.
    pub fn reseal(&self, table: &str, record: &[u8], blob: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        if blob.starts_with(&self.current_header()) {
            return Ok(None);
        }
        let plain = zeroize::Zeroizing::new(self.open(table, record, blob)?);
        Ok(Some(self.seal(table, record, &plain)))
    }

    /// Seals a later version of the main tenant's own master key for recovery: under a key
    /// derived from its root, which the recovery key opens (the vault never holds the recovery
    /// key, so it cannot wrap a new version under it).
    pub fn wrap_own_version_for_recovery(&self, version: u32, master: &Key256) -> Vec<u8> {
        wrap_version_under_root(&self.root, self.tenant, version, master)
    }
}

fn root_recovery_key(root: &Key256, tenant: TenantId) -> Key256 {
    root.derive(format!("recovery-wrap/tenant/{tenant}").as_bytes())
}

fn wrap_version_under_root(root: &Key256, tenant: TenantId, version: u32, master: &Key256) -> Vec<u8> {
    let aad = master_aad(tenant, version, b"recovery-under-root");
    aead::seal_as(Format::Subkey, &root_recovery_key(root, tenant), aad, master.as_array())
}

/// The main tenant's keys, recovered offline from its stored recovery wrappings (`(version,
/// recovery_wrapped)`, every row of the main tenant) with the recovery key the shares rebuild:
/// version 1 (the root) under the recovery key, later versions under the root. Every other
/// tenant's versions then open with [`unwrap_master_for_main`].
pub fn recover_main_keys(recovery: &Key256, rows: &[(u32, &[u8])]) -> Result<TenantKeys, CryptoError> {
    let tenant = TenantId::MAIN;
    let (_, first) = rows.iter().find(|(version, _)| *version == 1).ok_or(CryptoError)?;
    let root = unwrap_master_for_recovery(recovery, tenant, 1, first)?;
    let mut masters = BTreeMap::from([(1, root.clone())]);
    for &(version, wrapped) in rows.iter().filter(|(version, _)| *version != 1) {
        masters.insert(version, unwrap_version_under_root(&root, tenant, version, wrapped)?);
    }
    TenantKeys::new(tenant, root, masters).ok_or(CryptoError)
}

/// Opens a master key version sealed by [`TenantKeys::wrap_own_version_for_recovery`], given the
/// root (version 1, which [`unwrap_master_for_recovery`] opens with the recovery key).
pub fn unwrap_version_under_root(
    root: &Key256,
    tenant: TenantId,
    version: u32,
    wrapped: &[u8],
) -> Result<Key256, CryptoError> {
    let aad = master_aad(tenant, version, b"recovery-under-root");
    let plain = zeroize::Zeroizing::new(aead::open_as(Format::Subkey, &root_recovery_key(root, tenant), aad, wrapped)?);
    Key256::from_slice(&plain).ok_or(CryptoError)
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
    main.seal(MASTER_KEYS, format!("recovery/tenant/{tenant}/version/{version}").as_bytes(), master.as_array())
}

/// The record label of tenant `tenant`'s master key `version` sealed under the main tenant.
pub fn main_recovery_label(tenant: TenantId, version: u32) -> String {
    format!("recovery/tenant/{tenant}/version/{version}")
}

/// Opens a master key sealed by [`wrap_master_for_main`].
pub fn unwrap_master_for_main(
    main: &TenantKeys,
    tenant: TenantId,
    version: u32,
    wrapped: &[u8],
) -> Result<Key256, CryptoError> {
    let label = format!("recovery/tenant/{tenant}/version/{version}");
    let plain = zeroize::Zeroizing::new(main.open(MASTER_KEYS, label.as_bytes(), wrapped)?);
    Key256::from_slice(&plain).ok_or(CryptoError)
}

fn master_aad(tenant: TenantId, version: u32, purpose: &'static [u8]) -> Aad<'static> {
    Aad { tenant, table: MASTER_KEYS, record: purpose, key_version: version }
}

/// Unwraps a tenant's stored master keys under `kek`, without caching them.
pub fn unwrap_tenant_keys(
    kek: &Key256,
    tenant: TenantId,
    stored: &[WrappedMasterKey],
) -> Result<TenantKeys, CryptoError> {
    let mut root = None;
    let mut masters = BTreeMap::new();
    for key in stored {
        let master = unwrap_master(kek, tenant, key.version, &key.wrapped)?;
        if key.version == 1 {
            root = Some(master.clone());
        }
        if !key.retired {
            masters.insert(key.version, master);
        }
    }
    TenantKeys::new(tenant, root.ok_or(CryptoError)?, masters).ok_or(CryptoError)
}

/// Most tenants whose unwrapped keys are kept; past it the least used are unwrapped again
/// when next needed.
pub const TENANT_KEYS_CAPACITY: u64 = 10_000;

/// How long unwrapped tenant keys are kept before they are read from the database again.
pub const TENANT_KEYS_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30);

/// The process-wide key ring: the key-encryption key and a cache of unwrapped tenant keys.
///
/// A tenant's master keys change only through operations that forget them on every replica
/// ([`KeyRing::forget`], through the change feed), and a new wrapping key re-wraps the same
/// master keys. Cached keys still expire after [`TENANT_KEYS_LIFETIME`]: a request that read the
/// keys just before a master-key rotation committed may cache them just after the feed's forget,
/// and a replica whose clock lags may miss the feed entry; either would go on sealing under a
/// version the rotation job then retires. The lifetime is below the retirement grace
/// (`BUNKER_KEY_RETIRE_GRACE`, by default 70 s; the vault warns below [`TENANT_KEYS_LIFETIME`] plus
/// ten seconds), so no replica still seals under a version when it is retired.
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
        let tenants = Cache::builder().max_capacity(TENANT_KEYS_CAPACITY).time_to_live(TENANT_KEYS_LIFETIME).build();
        KeyRing { kek: RwLock::new(kek), tenants }
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

    /// The cached keys of a tenant, if already unlocked and not found stale (a blob named a
    /// version they do not know: read them again).
    pub fn cached(&self, tenant: TenantId) -> Option<Arc<TenantKeys>> {
        let keys = self.tenants.get(&tenant)?;
        if keys.is_stale() {
            self.tenants.invalidate(&tenant);
            return None;
        }
        Some(keys)
    }

    /// Drops a tenant's cached keys: the next use unwraps them from the database again.
    pub fn forget(&self, tenant: TenantId) {
        self.tenants.invalidate(&tenant);
    }

    /// Unwraps a tenant's stored master keys and caches them. Fails on a wrong wrapping key,
    /// and when version 1 (the root) or every live version is missing.
    pub fn unlock(&self, tenant: TenantId, stored: &[WrappedMasterKey]) -> Result<Arc<TenantKeys>, CryptoError> {
        let keys = Arc::new(unwrap_tenant_keys(&self.kek(), tenant, stored)?);
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
            .unlock(TenantId::new(1), &[WrappedMasterKey { version: 1, wrapped: wrapped.clone(), retired: false }])
            .expect("unlock");
        assert!(keys.active_master().ct_eq(&master));
        let wrong = KeyRing::new(Key256::random());
        assert!(
            wrong
                .unlock(TenantId::new(1), &[WrappedMasterKey { version: 1, wrapped: wrapped.clone(), retired: false }])
                .is_err()
        );
        // The same blob presented as another tenant's key does not open either.
        assert!(ring.unlock(TenantId::new(2), &[WrappedMasterKey { version: 1, wrapped, retired: false }]).is_err());
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
        let stored = |tenant| {
            [WrappedMasterKey { version: 1, wrapped: wrap_master(&kek, tenant, 1, &Key256::random()), retired: false }]
        };
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
            &[WrappedMasterKey {
                version: 1,
                wrapped: wrap_master(&kek, TenantId::new(1), 1, &master),
                retired: false,
            }],
        )
        .expect("unlock");
        let new_kek = Key256::random();
        ring.replace_kek(new_kek.clone());
        assert!(ring.kek().ct_eq(&new_kek));
        assert!(ring.cached(TenantId::new(1)).is_some_and(|keys| keys.active_master().ct_eq(&master)));
        // Keys unwrapped from now on need the master keys re-wrapped under the new one.
        let rewrapped = wrap_master(&new_kek, TenantId::new(1), 1, &master);
        ring.forget(TenantId::new(1));
        assert!(
            ring.unlock(TenantId::new(1), &[WrappedMasterKey { version: 1, wrapped: rewrapped, retired: false }])
                .is_ok()
        );
    }

    #[test]
    fn data_keys_are_bound_to_their_row() {
        let master = Key256::random();
        let keys = TenantKeys::from_master(TenantId::new(7), 1, master);
        let data_key = Key256::random();
        let wrapped = keys.wrap_data_key(b"row-a", &data_key);
        assert!(keys.unwrap_data_key(b"row-a", &wrapped).expect("unwrap").ct_eq(&data_key));
        assert!(keys.unwrap_data_key(b"row-b", &wrapped).is_err());
    }

    #[test]
    fn session_indexes_are_domain_separated_from_token_indexes() {
        let keys = TenantKeys::from_master(TenantId::new(7), 1, Key256::random());
        let uuid = "3b1f0c2e-8d4a-4f6b-9c1d-2e7a5b8c9d0f";
        assert_eq!(keys.session_index(uuid), keys.session_index(uuid));
        assert_ne!(keys.session_index(uuid), keys.index(IndexKind::Token, uuid));
    }

    #[test]
    fn token_indexes_are_domain_separated() {
        let keys = TenantKeys::from_master(TenantId::new(7), 1, Key256::random());
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
        let other = TenantKeys::from_master(TenantId::new(8), 1, keys.active_master().clone());
        assert_ne!(keys.token_value_index(value), other.token_value_index(value));
    }

    fn stored(kek: &Key256, tenant: TenantId, masters: &[(u32, &Key256, bool)]) -> Vec<WrappedMasterKey> {
        masters
            .iter()
            .map(|&(version, master, retired)| WrappedMasterKey {
                version,
                wrapped: wrap_master(kek, tenant, version, master),
                retired,
            })
            .collect()
    }

    #[test]
    fn each_purpose_seals_under_its_own_subkey() {
        let tenant = TenantId::new(3);
        let master = Key256::random();
        let keys = TenantKeys::from_master(tenant, 1, master.clone());
        for table in ["audit_events", "tokens", "sessions", "user_keys", "tenant_keys", "tenants"] {
            let blob = keys.seal(table, b"r", b"secret");
            assert_eq!(aead::header_of(&blob), Some((Format::Subkey, 1)), "{table}");
            assert_eq!(keys.open(table, b"r", &blob).expect("opens"), b"secret");
            let aad = Aad { tenant, table, record: b"r", key_version: 1 };
            assert!(aead::open_as(Format::Subkey, &master, aad, &blob).is_err(), "{table}: not the master key");
            let purpose = Purpose::of_table(table);
            let key = subkey(&master, tenant, 1, purpose);
            assert!(aead::open_as(Format::Subkey, &key, aad, &blob).is_ok(), "{table}: its purpose's subkey");
        }
        let keys_of = |purpose| subkey(&master, tenant, 1, purpose);
        for (i, a) in Purpose::ALL.iter().enumerate() {
            assert!(Purpose::ALL[i + 1..].iter().all(|b| !keys_of(*a).ct_eq(&keys_of(*b))), "{a:?} repeats");
        }
    }

    #[test]
    fn blobs_sealed_directly_under_a_master_key_still_open() {
        let tenant = TenantId::new(3);
        let master = Key256::random();
        let keys = TenantKeys::from_master(tenant, 1, master.clone());
        let legacy = aead::seal(&master, Aad { tenant, table: "tokens", record: b"r", key_version: 1 }, b"old");
        assert_eq!(keys.open("tokens", b"r", &legacy).expect("opens"), b"old");
        let wrapped = aead::seal(&master, Aad { tenant, table: USER_KEYS, record: b"u", key_version: 1 }, &[7; 32]);
        assert_eq!(keys.unwrap_data_key(b"u", &wrapped).expect("unwraps").as_array(), &[7; 32]);
        // Re-sealing moves it to the active subkey; a current blob is left alone.
        let resealed = keys.reseal("tokens", b"r", &legacy).expect("reseal").expect("changed");
        assert!(resealed.starts_with(&keys.current_header()));
        assert_eq!(keys.open("tokens", b"r", &resealed).expect("opens"), b"old");
        assert!(keys.reseal("tokens", b"r", &resealed).expect("reseal").is_none());
    }

    #[test]
    fn a_new_version_seals_at_once_and_old_blobs_open_until_retired() {
        let (kek, tenant) = (Key256::random(), TenantId::new(4));
        let (one, two) = (Key256::random(), Key256::random());
        let ring = KeyRing::new(kek.clone());
        let before = ring.unlock(tenant, &stored(&kek, tenant, &[(1, &one, false)])).expect("unlock");
        let old_blob = before.seal("sessions", b"s", b"data");
        let old_wrap = before.wrap_data_key(b"u", &Key256::from_bytes([9; 32]));
        let after = ring.unlock(tenant, &stored(&kek, tenant, &[(1, &one, false), (2, &two, false)])).expect("unlock");
        assert_eq!(after.active_version(), 2);
        let new_blob = after.seal("sessions", b"s", b"data");
        assert_eq!(aead::header_of(&new_blob), Some((Format::Subkey, 2)));
        assert_eq!(after.open("sessions", b"s", &old_blob).expect("old opens"), b"data");
        let rewrapped = after.rewrap_data_key(b"u", &old_wrap).expect("rewrap").expect("changed");
        assert_eq!(after.unwrap_data_key(b"u", &rewrapped).expect("unwrap").as_array(), &[9; 32]);
        // Keys that predate the rotation notice a blob of the new version and ask to be reloaded.
        assert!(!before.is_stale());
        assert!(before.open("sessions", b"s", &new_blob).is_err());
        assert!(before.is_stale());
        // Once version 1 is retired its blobs no longer open, but every index stays the same.
        let retired = ring.unlock(tenant, &stored(&kek, tenant, &[(1, &one, true), (2, &two, false)])).expect("unlock");
        assert!(retired.open("sessions", b"s", &old_blob).is_err());
        assert_eq!(retired.open("sessions", b"s", &new_blob).expect("opens"), b"data");
        assert_eq!(retired.versions().collect::<Vec<_>>(), [2]);
        for keys in [&after, &retired] {
            assert_eq!(keys.index(IndexKind::Email, "a@b.c"), before.index(IndexKind::Email, "a@b.c"));
            assert_eq!(keys.token_uuid_index("x"), before.token_uuid_index("x"));
            assert_eq!(keys.session_index("x"), before.session_index("x"));
            assert!(keys.root_matches(&one));
        }
        // Without version 1 (the root) the tenant's keys cannot be built.
        assert!(ring.unlock(tenant, &stored(&kek, tenant, &[(2, &two, false)])).is_err());
    }

    #[test]
    fn stale_keys_are_not_served_from_the_cache() {
        let (kek, tenant) = (Key256::random(), TenantId::new(4));
        let ring = KeyRing::new(kek.clone());
        let one = Key256::random();
        let keys = ring.unlock(tenant, &stored(&kek, tenant, &[(1, &one, false)])).expect("unlock");
        let newer = TenantKeys::new(tenant, one.clone(), BTreeMap::from([(1, one.clone()), (2, Key256::random())]))
            .expect("keys");
        assert!(ring.cached(tenant).is_some());
        assert!(keys.open("tokens", b"t", &newer.seal("tokens", b"t", b"v")).is_err());
        assert!(ring.cached(tenant).is_none(), "a stale entry is dropped");
    }

    #[test]
    fn the_recovery_key_recovers_every_version_of_every_tenant() {
        let (recovery, root, two) = (Key256::random(), Key256::random(), Key256::random());
        let main = TenantKeys::from_master(TenantId::MAIN, 1, root.clone());
        let first = wrap_master_for_recovery(&recovery, TenantId::MAIN, 1, &root);
        let second = main.wrap_own_version_for_recovery(2, &two);
        let recovered = recover_main_keys(&recovery, &[(1, &first), (2, &second)]).expect("recovers");
        assert_eq!(recovered.active_version(), 2);
        assert!(recovered.active_master().ct_eq(&two) && recovered.root_matches(&root));
        // Another tenant's key wrapped under the main tenant's version 2 opens through them.
        let live = TenantKeys::new(TenantId::MAIN, root.clone(), BTreeMap::from([(2, two.clone())])).expect("keys");
        let other = Key256::random();
        let wrapped = wrap_master_for_main(&live, TenantId::new(9), 3, &other);
        assert!(unwrap_master_for_main(&recovered, TenantId::new(9), 3, &wrapped).expect("opens").ct_eq(&other));
        assert!(recover_main_keys(&Key256::random(), &[(1, &first), (2, &second)]).is_err());
        assert!(recover_main_keys(&recovery, &[(2, &second)]).is_err(), "version 1 is needed");
    }

    #[test]
    fn later_main_versions_recover_through_the_root() {
        let root = Key256::random();
        let main = TenantKeys::from_master(TenantId::MAIN, 1, root.clone());
        let two = Key256::random();
        let wrapped = main.wrap_own_version_for_recovery(2, &two);
        assert!(unwrap_version_under_root(&root, TenantId::MAIN, 2, &wrapped).expect("opens").ct_eq(&two));
        assert!(unwrap_version_under_root(&root, TenantId::MAIN, 3, &wrapped).is_err());
        assert!(unwrap_version_under_root(&Key256::random(), TenantId::MAIN, 2, &wrapped).is_err());
    }
}
