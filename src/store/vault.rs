//! Vault initialisation state, tenant master keys and access tokens.

use sqlx::Row;

use super::{BeginWrite, Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};
use crate::crypto::keyring::WrappedMasterKey;
use crate::tenants::TenantId;

/// Everything written when an empty vault is initialised.
pub struct Initialisation<'a> {
    /// Unix time of initialisation.
    pub now: i64,
    /// Name of the main tenant (id 1).
    pub main_tenant: &'a str,
    /// Main tenant master key sealed under the key-encryption key.
    pub master_wrapped: Vec<u8>,
    /// Main tenant master key sealed under the recovery key.
    pub recovery_wrapped: Vec<u8>,
    /// Identifier of the root access token.
    pub root_token_id: String,
    /// SHA-256 of the root access token.
    pub root_token_digest: [u8; 32],
}

/// An access token row.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Token identifier (recorded in audit events; never the secret).
    pub id: String,
    /// Tenant the token belongs to.
    pub tenant: TenantId,
    /// Principal kind, e.g. `root`.
    pub kind: String,
    /// Expiry (unix seconds), if any.
    pub expires_at: Option<i64>,
    /// Stored digest, compared again in constant time by the caller.
    pub digest: Vec<u8>,
    /// The role a role token acts as.
    pub role_id: Option<i64>,
    /// The user record a user token belongs to.
    pub user_rid: Option<Vec<u8>>,
}

/// A master key with both of its wrappings, for re-wrapping.
#[derive(Debug, Clone)]
pub struct StoredMasterKey {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Key version.
    pub version: u32,
    /// Sealed under the key-encryption key.
    pub wrapped: Vec<u8>,
    /// Sealed under the recovery key.
    pub recovery_wrapped: Vec<u8>,
}

/// True when the vault has been initialised.
pub async fn is_initialised(db: &Db) -> StoreResult<bool> {
    with_pool!(db, pool => {
        let row = sqlx::query("SELECT COUNT(*) FROM vault_meta").fetch_one(pool).await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    })
}

/// Initialises an empty vault in one transaction. Returns false when another process won the
/// race (its keys are the ones in force; nothing of ours was written).
pub async fn initialise(db: &Db, init: &Initialisation<'_>) -> StoreResult<bool> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let claimed = sqlx::query("INSERT INTO vault_meta (id, created_at) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .bind(init.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("INSERT INTO tenants (id, name, org, created_at) VALUES (1, $1, '', $2)")
            .bind(init.main_tenant)
            .bind(init.now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tenant_keys (tenant_id, version, wrapped, recovery_wrapped, created_at) \
             VALUES (1, 1, $1, $2, $3)",
        )
        .bind(&init.master_wrapped)
        .bind(&init.recovery_wrapped)
        .bind(init.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO access_tokens (id, tenant_id, digest, kind, created_at) VALUES ($1, 1, $2, 'root', $3)")
            .bind(&init.root_token_id)
            .bind(&init.root_token_digest[..])
            .bind(init.now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    })
}

/// The vault of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Vault<'a>(pub(super) TenantScope<'a>);

impl Vault<'_> {
    /// The stored master keys of one tenant, oldest first (retired ones too: see
    /// [`WrappedMasterKey::retired`]).
    pub async fn tenant_master_keys(&self) -> StoreResult<Vec<WrappedMasterKey>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT version, wrapped, retired_at IS NOT NULL FROM tenant_keys WHERE tenant_id = $1 ORDER BY version",
            )
                .bind(tenant)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(WrappedMasterKey {
                        version: u32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
                        wrapped: row.try_get(1)?,
                        retired: row.try_get(2)?,
                    })
                })
                .collect()
        })
    }
}

/// Every stored master key with both wrappings.
pub async fn all_master_keys(db: &Db) -> StoreResult<Vec<StoredMasterKey>> {
    with_pool!(db, pool => {
        let rows = sqlx::query(
            "SELECT tenant_id, version, wrapped, recovery_wrapped FROM tenant_keys ORDER BY tenant_id, version",
        )
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredMasterKey {
                    tenant: row.try_get(0)?,
                    version: u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                    wrapped: row.try_get(2)?,
                    recovery_wrapped: row.try_get(3)?,
                })
            })
            .collect()
    })
}

/// Locks the vault row and checks that `kek_check` is the wrapping key in force (recording it
/// when none is recorded yet); [`StoreError::WrappingKeyChanged`] otherwise. Every write of a
/// wrapped master key does this in its transaction first.
macro_rules! check_kek {
    ($tx:expr, $db:expr, $check:expr) => {{
        let lock = if matches!($db, Db::Postgres(_)) { " FOR UPDATE" } else { "" };
        let row =
            sqlx::query(&format!("SELECT kek_check FROM vault_meta WHERE id = 1{lock}")).fetch_one(&mut *$tx).await?;
        let stored: Option<Vec<u8>> = row.try_get(0)?;
        match stored {
            Some(stored) if !crate::crypto::secrets::digests_match(&stored, &$check[..]) => {
                return Err(StoreError::WrappingKeyChanged);
            }
            Some(_) => {}
            None => {
                sqlx::query("UPDATE vault_meta SET kek_check = $1 WHERE id = 1")
                    .bind(&$check[..])
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}
pub(crate) use check_kek;

/// Records the check value of the wrapping key the vault was just opened with, if none is.
pub async fn record_kek_check(db: &Db, check: &[u8; 32]) -> StoreResult<()> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE vault_meta SET kek_check = $1 WHERE id = 1 AND kek_check IS NULL").bind(&check[..]).execute(pool).await?;
        Ok(())
    })
}

/// Replaces the operational wrapping of every master key, with the audit event, atomically.
/// `old_check`/`new_check` are the check values of the wrapping keys before and after: a
/// rotation that another one (on any replica) overtook, or that missed a key stored since it
/// read them, changes nothing and answers [`StoreError::WrappingKeyChanged`].
pub async fn rewrap_master_keys(
    db: &Db,
    rewrapped: &[(StoredMasterKey, Vec<u8>)],
    old_check: &[u8; 32],
    new_check: &[u8; 32],
    event: &super::audit::AuditRecord,
) -> StoreResult<()> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(event.tenant).await?;
        check_kek!(tx, db, old_check);
        let stored: i64 = sqlx::query("SELECT COUNT(*) FROM tenant_keys").fetch_one(&mut *tx).await?.try_get(0)?;
        if usize::try_from(stored).ok() != Some(rewrapped.len()) {
            return Err(StoreError::WrappingKeyChanged);
        }
        for (key, previous) in rewrapped {
            let updated = sqlx::query("UPDATE tenant_keys SET wrapped = $1 WHERE tenant_id = $2 AND version = $3 AND wrapped = $4")
                .bind(&key.wrapped)
                .bind(key.tenant)
                .bind(i64::from(key.version))
                .bind(previous)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated != 1 {
                return Err(StoreError::WrappingKeyChanged);
            }
        }
        sqlx::query("UPDATE vault_meta SET kek_check = $1 WHERE id = 1").bind(&new_check[..]).execute(&mut *tx).await?;
        super::audit::insert!(&mut *tx, std::slice::from_ref(event));
        tx.commit().await?;
        Ok(())
    })
}

/// Finds an access token by the digest of its secret.
pub async fn find_token(db: &Db, digest: &[u8; 32]) -> StoreResult<Option<TokenRow>> {
    with_pool!(db, pool => {
        let row = sqlx::query(
            "SELECT id, tenant_id, kind, expires_at, digest, role_id, user_rid FROM access_tokens WHERE digest = $1",
        )
            .bind(&digest[..])
            .fetch_optional(pool)
            .await?;
        row.map(|row| {
            Ok(TokenRow {
                id: row.try_get(0)?,
                tenant: row.try_get(1)?,
                kind: row.try_get(2)?,
                expires_at: row.try_get(3)?,
                digest: row.try_get(4)?,
                role_id: row.try_get(5)?,
                user_rid: row.try_get(6)?,
            })
        })
        .transpose()
    })
}
