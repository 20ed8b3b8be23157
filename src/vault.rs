//! Opening the vault: first-start initialisation, or unlocking with the wrapping key.

use std::sync::Arc;

use crate::crypto::keyring::{
    WrappedMasterKey, kek_check, unwrap_master, unwrap_master_for_main, unwrap_master_for_recovery,
    unwrap_version_under_root, wrap_master, wrap_master_for_recovery,
};
use crate::crypto::secrets::{digests_match, random_uuid_string, token_digest};
use crate::crypto::{Key256, KeyRing, WrappingKey, shamir};
use crate::store::vault::{SharesOpened, StoredMasterKey};
use crate::store::{self, Db, StoreError};
use crate::tenants::TenantId;

/// Name of the main tenant (id 1).
pub const MAIN_TENANT_NAME: &str = "main";

/// Secrets created at initialisation, to be shown once to the operator.
pub struct InitSecrets {
    /// The root access token.
    pub root_token: String,
    /// Hex Shamir shares of the recovery key (3 of 5 recover the master key).
    pub shares: Vec<String>,
}

/// Why the vault could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The wrapping key does not open the stored master key.
    #[error(
        "the wrapping key does not match this vault (DATABUNKER_WRAPPINGKEY or DATABUNKER_WRAPPINGKEY_FILE): \
         refusing to start rather than serve unreadable data (after a completed rotation only the new key opens it; \
         a lost key is replaced with `bunker recover` and three recovery shares)"
    )]
    WrongWrappingKey,
    /// The key is a pending rotation's new key but some master key lacks its new wrapping.
    #[error(
        "this is the new wrapping key of a pending rotation, but some master key has no wrapping under it: \
         start with the previous wrapping key and call SystemGenerateWrappingKey again (or use `bunker recover`)"
    )]
    IncompleteRotation,
    /// Storage failed.
    #[error("storage error while opening the vault: {0}")]
    Store(#[from] StoreError),
}

/// Initialises an empty vault (master key, root token, recovery shares) or unlocks an existing
/// one. Returns the key ring and, on first start only, the secrets to show.
pub async fn open(
    db: &Db,
    wrapping: &WrappingKey,
    root_token: Option<&str>,
    now: i64,
) -> Result<(Arc<KeyRing>, Option<InitSecrets>), VaultError> {
    let ring = Arc::new(KeyRing::new(wrapping.kek()));
    let mut secrets = None;
    if !store::vault::is_initialised(db).await? {
        let master = Key256::random();
        let recovery = Key256::random();
        let token = root_token.map_or_else(random_uuid_string, str::to_owned);
        let init = store::vault::Initialisation {
            now,
            main_tenant: MAIN_TENANT_NAME,
            master_wrapped: wrap_master(&ring.kek(), TenantId::MAIN, 1, &master),
            recovery_wrapped: wrap_master_for_recovery(&recovery, TenantId::MAIN, 1, &master),
            root_token_id: random_uuid_string(),
            root_token_digest: token_digest(&token),
        };
        if store::vault::initialise(db, &init).await? {
            secrets = Some(InitSecrets { root_token: token, shares: shamir::split(&recovery) });
        }
    }
    let check = kek_check(&ring.kek());
    let pending = complete_rotation(db, &ring.kek(), &check).await?;
    let stored = db.tenant(TenantId::MAIN).vault().tenant_master_keys().await?;
    ring.unlock(TenantId::MAIN, &stored).map_err(|_| VaultError::WrongWrappingKey)?;
    if pending {
        tracing::warn!(
            "a wrapping-key rotation is pending: this start used the previous wrapping key, which keeps working; \
             start with the new key (answered by SystemGenerateWrappingKey) to complete the rotation"
        );
    }
    // Vaults made before the check value existed record it now that the key is proven.
    store::vault::record_kek_check(db, &check).await?;
    Ok((ring, secrets))
}

/// A start with the new key of a pending wrapping-key rotation completes it (after checking
/// that the key opens every new wrapping). Returns true when a rotation is still pending,
/// i.e. the vault is being opened with another key (the previous one, or a wrong one).
async fn complete_rotation(db: &Db, kek: &Key256, check: &[u8; 32]) -> Result<bool, VaultError> {
    let checks = store::vault::kek_checks(db).await?;
    let Some(next) = checks.next else {
        return Ok(false);
    };
    if !digests_match(&next, check) {
        return Ok(true);
    }
    for key in store::vault::all_master_keys(db).await? {
        let next = key.next_wrapped.as_deref().ok_or(VaultError::IncompleteRotation)?;
        unwrap_master(kek, key.tenant, key.version, next).map_err(|_| VaultError::WrongWrappingKey)?;
    }
    match store::vault::promote_wrapping_key(db, check).await? {
        store::vault::Promotion::Promoted => {
            tracing::info!(
                "wrapping-key rotation completed: the new key is in force, the previous one no longer opens the vault"
            );
        }
        // Another replica completed it first, or a newer rotation replaced this one (the
        // unlock below says whether this key still opens the vault).
        store::vault::Promotion::NotPending => {}
        store::vault::Promotion::Incomplete => return Err(VaultError::IncompleteRotation),
    }
    Ok(false)
}

/// Why `bunker recover` could not re-wrap the vault's master keys.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The vault has no data yet.
    #[error("the vault is not initialised: there is nothing to recover")]
    NotInitialised,
    /// The shares do not recover the main tenant's master key.
    #[error("the shares do not recover this vault's master key (Master key mismatch): use three shares of this vault")]
    SharesMismatch,
    /// A master key could not be recovered through the main tenant's keys.
    #[error("the master key version {version} of tenant {tenant} cannot be recovered: nothing was changed")]
    Unrecoverable {
        /// The tenant.
        tenant: TenantId,
        /// The key version.
        version: u32,
    },
    /// Storage failed (or a concurrent recovery-key rotation replaced the wrapping the shares
    /// opened).
    #[error("storage error during recovery: {0}")]
    Store(#[from] StoreError),
}

/// Offline recovery: the recovery key (from three shares) opens the main tenant's master keys,
/// which open every other tenant's; all of them are wrapped under `wrapping`, which becomes
/// the key in force (any pending rotation is dropped), in one transaction. While a recovery-key
/// rotation is pending the old shares work too; the new ones confirm it in that transaction (see
/// `SystemRotateRecoveryKey`). Returns how many master keys were re-wrapped.
pub async fn recover(db: &Db, recovery: &Key256, wrapping: &WrappingKey) -> Result<usize, RecoverError> {
    if !store::vault::is_initialised(db).await? {
        return Err(RecoverError::NotInitialised);
    }
    let kek = wrapping.kek();
    let stored = store::vault::all_master_keys(db).await?;
    // The recovery key opens the main tenant's root (version 1); its later versions are wrapped
    // under the root.
    let Some((root, opened)) = stored
        .iter()
        .find(|key| key.tenant == TenantId::MAIN && key.version == 1)
        .and_then(|key| open_root_for_recovery(recovery, key))
    else {
        return Err(RecoverError::SharesMismatch);
    };
    let mut recovered: Vec<Option<Key256>> = stored
        .iter()
        .map(|key| match (key.tenant == TenantId::MAIN, key.version) {
            (true, 1) => Some(root.clone()),
            (true, version) => unwrap_version_under_root(&root, key.tenant, version, &key.recovery_wrapped).ok(),
            _ => None,
        })
        .collect();
    // Other keys are sealed for the main tenant (under whichever of its versions was active
    // then, which may itself be sealed that way): open what the main keys known so far open,
    // until nothing more opens.
    loop {
        let main: Vec<WrappedMasterKey> = stored
            .iter()
            .zip(&recovered)
            .filter(|(key, _)| key.tenant == TenantId::MAIN)
            .filter_map(|(key, master)| {
                let master = master.as_ref()?;
                Some(WrappedMasterKey {
                    version: key.version,
                    wrapped: wrap_master(&kek, key.tenant, key.version, master),
                    retired: false,
                })
            })
            .collect();
        let main = KeyRing::new(kek.clone()).unlock(TenantId::MAIN, &main).map_err(|_| RecoverError::SharesMismatch)?;
        let mut progress = false;
        for (key, master) in stored.iter().zip(recovered.iter_mut()).filter(|(_, master)| master.is_none()) {
            if let Ok(opened) = unwrap_master_for_main(&main, key.tenant, key.version, &key.recovery_wrapped) {
                *master = Some(opened);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    let mut rewrapped = Vec::with_capacity(stored.len());
    for (key, master) in stored.iter().zip(&recovered) {
        let master = master.as_ref().ok_or(RecoverError::Unrecoverable { tenant: key.tenant, version: key.version })?;
        rewrapped.push(store::vault::Rewrapped {
            tenant: key.tenant,
            version: key.version,
            previous: key.wrapped.clone(),
            wrapped: wrap_master(&kek, key.tenant, key.version, master),
        });
    }
    store::vault::install_wrapping_key(db, &opened, &rewrapped, &kek_check(&kek)).await?;
    Ok(rewrapped.len())
}

/// Opens the main tenant's root (`root`, its stored version 1) with a recovery key: through the
/// recovery wrapping in force or, while a recovery-key rotation is pending, the previous one
/// (the old shares). Says which one opened, for the write that the shares prove custody for.
pub fn open_root_for_recovery(recovery: &Key256, root: &StoredMasterKey) -> Option<(Key256, SharesOpened)> {
    let open = |wrapped: &[u8]| unwrap_master_for_recovery(recovery, root.tenant, root.version, wrapped).ok();
    if let Some(key) = open(&root.recovery_wrapped) {
        return Some((key, SharesOpened::Current(root.recovery_wrapped.clone())));
    }
    let previous = root.previous_recovery_wrapped.as_ref()?;
    open(previous).map(|key| (key, SharesOpened::Previous(previous.clone())))
}
