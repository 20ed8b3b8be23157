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
    /// The administrator account whose login session this is.
    pub account_id: Option<String>,
    /// For a console session: when the console last used it (unix seconds).
    pub console_seen_at: Option<i64>,
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
    /// Sealed under the recovery key (the main tenant's keys) or under the main tenant's
    /// master key (every other tenant's).
    pub recovery_wrapped: Vec<u8>,
    /// Sealed under the key-encryption key of a pending wrapping-key rotation.
    pub next_wrapped: Option<Vec<u8>>,
    /// The main tenant's root only, while a recovery-key rotation is pending: sealed under the
    /// previous recovery key (the old shares).
    pub previous_recovery_wrapped: Option<Vec<u8>>,
}

/// Which recovery wrapping of the main tenant's root (its first master key) three shares opened.
#[derive(Debug, Clone)]
pub enum SharesOpened {
    /// The one in force: the shares of the last recovery-key rotation (or of initialisation).
    /// Using them while an older wrapping is kept confirms that rotation: the older one is
    /// dropped in the same transaction as the write they prove custody for.
    Current(Vec<u8>),
    /// The one kept while a recovery-key rotation is pending (the shares before it).
    Previous(Vec<u8>),
}

/// The check values of the wrapping key in force and of a pending rotation's new key.
#[derive(Debug, Clone, Default)]
pub struct KekChecks {
    /// The key in force (none in vaults made before check values existed).
    pub current: Option<Vec<u8>>,
    /// The new key of a pending rotation.
    pub next: Option<Vec<u8>>,
}

/// A new wrapping of one master key, made from the wrapping in force.
#[derive(Debug, Clone)]
pub struct Rewrapped {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Key version.
    pub version: u32,
    /// The wrapping it was made from (the write is refused if it changed since).
    pub previous: Vec<u8>,
    /// The new wrapping.
    pub wrapped: Vec<u8>,
}

/// What a start with a rotation's new key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    /// The new wrappings are now the ones in force.
    Promoted,
    /// The key is not the pending one (any more): nothing changed.
    NotPending,
    /// Some master key has no new wrapping: nothing changed.
    Incomplete,
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

/// Every stored master key with all its wrappings.
pub async fn all_master_keys(db: &Db) -> StoreResult<Vec<StoredMasterKey>> {
    with_pool!(db, pool => {
        let rows = sqlx::query(
            "SELECT tenant_id, version, wrapped, recovery_wrapped, next_wrapped, previous_recovery_wrapped FROM tenant_keys \
             ORDER BY tenant_id, version",
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
                    next_wrapped: row.try_get(4)?,
                    previous_recovery_wrapped: row.try_get(5)?,
                })
            })
            .collect()
    })
}

/// Locks the vault row (PostgreSQL: `FOR UPDATE`; SQLite: the write transaction already holds
/// the database) and reads the check values of the wrapping key in force and of a pending one.
macro_rules! lock_kek {
    ($tx:expr, $db:expr) => {{
        let lock = if matches!($db, Db::Postgres(_)) { " FOR UPDATE" } else { "" };
        let row = sqlx::query(&format!("SELECT kek_check, next_kek_check FROM vault_meta WHERE id = 1{lock}"))
            .fetch_one(&mut *$tx)
            .await?;
        $crate::store::vault::KekChecks { current: row.try_get(0)?, next: row.try_get(1)? }
    }};
}

/// Locks the vault row and checks that `kek_check` is the wrapping key in force (recording it
/// when none is recorded yet); [`StoreError::WrappingKeyChanged`] otherwise. Every write of a
/// wrapped master key does this in its transaction first. A master key written while a
/// wrapping-key rotation is pending has no wrapping under the new key: the start with the new key
/// then refuses to complete the rotation (nothing is lost, the previous key keeps opening the
/// vault) until `SystemGenerateWrappingKey` is called again, which wraps every key, this one too.
/// Refusing the write instead would break clients that create tenants after a rotation, as the
/// vendor's vault allows. Evaluates to whether a rotation is pending.
macro_rules! check_kek {
    ($tx:expr, $db:expr, $check:expr) => {{
        let checks = $crate::store::vault::lock_kek!($tx, $db);
        match checks.current {
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
        checks.next.is_some()
    }};
}
/// Under the vault row's lock (`lock_kek!` first): checks that the recovery wrapping of the main
/// tenant's root that the shares opened is still stored, [`StoreError::RecoveryKeyChanged`]
/// otherwise (a concurrent recovery-key rotation). Shares of the wrapping in force confirm a
/// pending recovery-key rotation: the previous wrapping is dropped, and its shares open nothing.
macro_rules! hold_recovery {
    ($tx:expr, $opened:expr) => {{
        let held = match $opened {
            $crate::store::vault::SharesOpened::Current(wrapping) => sqlx::query(
                "UPDATE tenant_keys SET previous_recovery_wrapped = NULL \
                 WHERE tenant_id = 1 AND version = 1 AND recovery_wrapped = $1",
            )
            .bind(wrapping)
            .execute(&mut *$tx)
            .await?
            .rows_affected(),
            $crate::store::vault::SharesOpened::Previous(wrapping) => sqlx::query(
                "SELECT COUNT(*) FROM tenant_keys WHERE tenant_id = 1 AND version = 1 AND previous_recovery_wrapped = $1",
            )
            .bind(wrapping)
            .fetch_one(&mut *$tx)
            .await?
            .try_get::<i64, _>(0)?
            .unsigned_abs(),
        };
        if held != 1 {
            return Err(StoreError::RecoveryKeyChanged);
        }
    }};
}
pub(crate) use {check_kek, lock_kek};

/// Records the check value of the wrapping key the vault was just opened with, if none is.
pub async fn record_kek_check(db: &Db, check: &[u8; 32]) -> StoreResult<()> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE vault_meta SET kek_check = $1 WHERE id = 1 AND kek_check IS NULL").bind(&check[..]).execute(pool).await?;
        Ok(())
    })
}

/// The check values of the wrapping key in force and of a pending rotation.
pub async fn kek_checks(db: &Db) -> StoreResult<KekChecks> {
    with_pool!(db, pool => {
        let row = sqlx::query("SELECT kek_check, next_kek_check FROM vault_meta WHERE id = 1").fetch_optional(pool).await?;
        row.map_or(Ok(KekChecks::default()), |row| Ok(KekChecks { current: row.try_get(0)?, next: row.try_get(1)? }))
    })
}

/// Stores a new wrapping of every master key beside the one in force, with the new key's check
/// value and the audit event, atomically under the vault row's lock: the first phase of a
/// wrapping-key rotation. A pending rotation is replaced. `old_check` is the check value of the
/// key in force the wrappings were made from: if it changed, or a master key was stored or
/// re-wrapped since they were read, nothing is written ([`StoreError::WrappingKeyChanged`]).
/// `opened` is the recovery wrapping the caller's shares opened (`hold_recovery!`).
pub async fn stage_wrapping_key(
    db: &Db,
    opened: &SharesOpened,
    rewrapped: &[Rewrapped],
    old_check: &[u8; 32],
    new_check: &[u8; 32],
    event: &super::audit::AuditRecord,
) -> StoreResult<()> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(event.tenant).await?;
        let checks = lock_kek!(tx, db);
        if !checks.current.is_some_and(|current| crate::crypto::secrets::digests_match(&current, &old_check[..])) {
            return Err(StoreError::WrappingKeyChanged);
        }
        hold_recovery!(tx, opened);
        let stored: i64 = sqlx::query("SELECT COUNT(*) FROM tenant_keys").fetch_one(&mut *tx).await?.try_get(0)?;
        if usize::try_from(stored).ok() != Some(rewrapped.len()) {
            return Err(StoreError::WrappingKeyChanged);
        }
        for key in rewrapped {
            let updated = sqlx::query(
                "UPDATE tenant_keys SET next_wrapped = $1 WHERE tenant_id = $2 AND version = $3 AND wrapped = $4",
            )
            .bind(&key.wrapped)
            .bind(key.tenant)
            .bind(i64::from(key.version))
            .bind(&key.previous)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(StoreError::WrappingKeyChanged);
            }
        }
        sqlx::query("UPDATE vault_meta SET next_kek_check = $1 WHERE id = 1").bind(&new_check[..]).execute(&mut *tx).await?;
        super::audit::insert!(&mut *tx, std::slice::from_ref(event));
        tx.commit().await?;
        Ok(())
    })
}

/// The second phase of a wrapping-key rotation: when `check` is the pending key's check value,
/// its wrappings become the ones in force and the previous ones are dropped, in one transaction
/// under the vault row's lock.
pub async fn promote_wrapping_key(db: &Db, check: &[u8; 32]) -> StoreResult<Promotion> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let checks = lock_kek!(tx, db);
        if !checks.next.is_some_and(|next| crate::crypto::secrets::digests_match(&next, &check[..])) {
            tx.rollback().await?;
            return Ok(Promotion::NotPending);
        }
        let missing: i64 = sqlx::query("SELECT COUNT(*) FROM tenant_keys WHERE next_wrapped IS NULL")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if missing > 0 {
            tx.rollback().await?;
            return Ok(Promotion::Incomplete);
        }
        sqlx::query("UPDATE tenant_keys SET wrapped = next_wrapped, next_wrapped = NULL").execute(&mut *tx).await?;
        sqlx::query("UPDATE vault_meta SET kek_check = next_kek_check, next_kek_check = NULL WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Promotion::Promoted)
    })
}

/// Installs a wrapping key chosen by `bunker recover`: every master key's wrapping is replaced,
/// the key's check value recorded and any pending rotation dropped, in one transaction. A master
/// key stored or changed since the new wrappings were made refuses it all
/// ([`StoreError::WrappingKeyChanged`]). `opened` is the recovery wrapping the shares opened
/// (`hold_recovery!`).
pub async fn install_wrapping_key(
    db: &Db,
    opened: &SharesOpened,
    rewrapped: &[Rewrapped],
    check: &[u8; 32],
) -> StoreResult<()> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let _ = lock_kek!(tx, db);
        hold_recovery!(tx, opened);
        let stored: i64 = sqlx::query("SELECT COUNT(*) FROM tenant_keys").fetch_one(&mut *tx).await?.try_get(0)?;
        if usize::try_from(stored).ok() != Some(rewrapped.len()) {
            return Err(StoreError::WrappingKeyChanged);
        }
        for key in rewrapped {
            let updated = sqlx::query(
                "UPDATE tenant_keys SET wrapped = $1, next_wrapped = NULL \
                 WHERE tenant_id = $2 AND version = $3 AND wrapped = $4",
            )
            .bind(&key.wrapped)
            .bind(key.tenant)
            .bind(i64::from(key.version))
            .bind(&key.previous)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(StoreError::WrappingKeyChanged);
            }
        }
        sqlx::query("UPDATE vault_meta SET kek_check = $1, next_kek_check = NULL WHERE id = 1")
            .bind(&check[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// A new recovery key, with the audit event, atomically under the vault row's lock: `wrapped`
/// (the main tenant's root under it) becomes the recovery wrapping in force. Shares of the
/// wrapping in force start a rotation: that wrapping is kept as the previous one, so the old
/// shares still work if the new ones never arrive. Shares of the previous wrapping (a rotation
/// is pending, its answer presumably lost) keep it and replace the pending new one. Nothing is
/// written if the wrapping the shares opened changed since ([`StoreError::RecoveryKeyChanged`]).
pub async fn rotate_recovery_key(
    db: &Db,
    opened: &SharesOpened,
    wrapped: &[u8],
    event: &super::audit::AuditRecord,
) -> StoreResult<()> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(event.tenant).await?;
        let _ = lock_kek!(tx, db);
        let (sql, shares) = match opened {
            SharesOpened::Current(wrapping) => (
                "UPDATE tenant_keys SET previous_recovery_wrapped = recovery_wrapped, recovery_wrapped = $1 \
                 WHERE tenant_id = 1 AND version = 1 AND recovery_wrapped = $2",
                wrapping,
            ),
            SharesOpened::Previous(wrapping) => (
                "UPDATE tenant_keys SET recovery_wrapped = $1 \
                 WHERE tenant_id = 1 AND version = 1 AND previous_recovery_wrapped = $2",
                wrapping,
            ),
        };
        let updated = sqlx::query(sql).bind(wrapped).bind(shares).execute(&mut *tx).await?.rows_affected();
        if updated != 1 {
            return Err(StoreError::RecoveryKeyChanged);
        }
        super::audit::insert!(&mut *tx, std::slice::from_ref(event));
        tx.commit().await?;
        Ok(())
    })
}

/// Finds an access token by the digest of its secret.
pub async fn find_token(db: &Db, digest: &[u8; 32]) -> StoreResult<Option<TokenRow>> {
    with_pool!(db, pool => {
        let row = sqlx::query(
            "SELECT id, tenant_id, kind, expires_at, digest, role_id, user_rid, account_id, console_seen_at \
             FROM access_tokens \
             WHERE digest = $1",
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
                account_id: row.try_get(7)?,
                console_seen_at: row.try_get(8)?,
            })
        })
        .transpose()
    })
}
