//! Opening the vault: first-start initialisation, or unlocking with the wrapping key.

use std::sync::Arc;

use crate::crypto::keyring::{kek_check, wrap_master, wrap_master_for_recovery};
use crate::crypto::secrets::{random_uuid_string, token_digest};
use crate::crypto::{Key256, KeyRing, WrappingKey, shamir};
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
         refusing to start rather than serve unreadable data"
    )]
    WrongWrappingKey,
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
    let stored = db.tenant(TenantId::MAIN).vault().tenant_master_keys().await?;
    ring.unlock(TenantId::MAIN, &stored).map_err(|_| VaultError::WrongWrappingKey)?;
    // Vaults made before the check value existed record it now that the key is proven.
    store::vault::record_kek_check(db, &kek_check(&ring.kek())).await?;
    Ok((ring, secrets))
}
