//! Tenants: the vault's own records of who it serves, their keys' first version, their admin
//! tokens, deletion in two steps, and the change feed that keeps replicas' caches in step.
//!
//! These are not tenant data (nothing here is reached through [`super::TenantScope`]): they are
//! administered from the main tenant, and each statement names the tenant it concerns.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::{Db, ScopedPool, StoreError, StoreResult, with_pool};
use crate::tenants::TenantId;

/// A live tenant as stored.
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// Its id.
    pub id: TenantId,
    /// Unique name (`X-Bunker-Tenant`).
    pub name: String,
    /// Organisation.
    pub org: String,
    /// Admin email sealed under the tenant's own master key, if one was given.
    pub email: Option<Vec<u8>>,
    /// Creation time (unix seconds).
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, org, email, created_at";
const LIVE: &str = "deleted_at IS NULL";

/// The statement that appends to the change feed (kind, tenant, writer's milliseconds).
pub(super) const RECORD_CHANGE: &str = "INSERT INTO vault_changes (kind, tenant_id, created_ms) VALUES ($1, $2, $3)";

/// Appends to the change feed inside the caller's transaction.
macro_rules! record_change {
    ($tx:expr, $kind:expr, $id:expr, $now_ms:expr) => {
        sqlx::query(RECORD_CHANGE).bind($kind).bind($id).bind($now_ms).execute(&mut *$tx).await?
    };
}

fn decode<R: Row>(row: &R) -> Result<TenantRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    TenantId: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TenantRow {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        org: row.try_get(2)?,
        email: row.try_get(3)?,
        created_at: row.try_get(4)?,
    })
}

/// The id of the live tenant with this name.
pub async fn id_by_name(db: &Db, name: &str) -> StoreResult<Option<TenantId>> {
    let sql = format!("SELECT id FROM tenants WHERE name = $1 AND {LIVE}");
    with_pool!(db, pool => {
        let row = sqlx::query(&sql).bind(name).fetch_optional(pool).await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    })
}

/// A live tenant by id.
pub async fn get(db: &Db, id: TenantId) -> StoreResult<Option<TenantRow>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1 AND {LIVE}");
    with_pool!(db, pool => {
        let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await?;
        Ok(row.as_ref().map(decode).transpose()?)
    })
}

/// A page of the live tenants, oldest first, and how many there are.
pub async fn list(db: &Db, offset: i64, limit: i64) -> StoreResult<(i64, Vec<TenantRow>)> {
    let count = format!("SELECT COUNT(*) FROM tenants WHERE {LIVE}");
    let page = format!("SELECT {COLUMNS} FROM tenants WHERE {LIVE} ORDER BY id LIMIT $1 OFFSET $2");
    with_pool!(db, pool => {
        let total: i64 = sqlx::query(&count).fetch_one(pool).await?.try_get(0)?;
        let rows = sqlx::query(&page).bind(limit).bind(offset).fetch_all(pool).await?;
        Ok((total, rows.iter().map(decode).collect::<Result<_, _>>()?))
    })
}

/// A tenant to create.
#[derive(Debug)]
pub struct NewTenant<'a> {
    /// Unique name.
    pub name: &'a str,
    /// Organisation.
    pub org: &'a str,
    /// Creation time (unix seconds).
    pub now: i64,
    /// Identifier of its admin token (recorded in audit events; never the secret).
    pub token_id: &'a str,
    /// SHA-256 of its admin token.
    pub token_digest: [u8; 32],
    /// Check value of the wrapping key its master key is wrapped under (must be the one in force).
    pub kek_check: [u8; 32],
    /// The tenant the creation's event is written in (the main tenant).
    pub actor: TenantId,
}

/// What is sealed for a new tenant once its id is known (keys and labels are bound to it).
pub struct Sealed {
    /// The tenant's master key under the key-encryption key.
    pub master_wrapped: Vec<u8>,
    /// The tenant's master key under the main tenant's master key (the recovery path).
    pub recovery_wrapped: Vec<u8>,
    /// The admin email under the tenant's master key.
    pub email: Option<Vec<u8>>,
    /// The main tenant's event for the creation.
    pub event: AuditRecord,
    /// The main tenant's master-key version `recovery_wrapped` was sealed under: checked to be
    /// its latest, so that no retirement of an older one leaves the tenant unrecoverable.
    pub main_version: u32,
}

/// Creates a tenant with its first master key and its admin token, and the event, in one
/// transaction. `Conflict` when the name is taken.
pub async fn create(db: &Db, new: &NewTenant<'_>, seal: impl FnOnce(TenantId) -> Sealed) -> StoreResult<TenantId> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(new.actor).await?;
        let _pending = super::vault::check_kek!(tx, db, new.kek_check);
        let id: TenantId = sqlx::query("INSERT INTO tenants (name, org, created_at) VALUES ($1, $2, $3) RETURNING id")
            .bind(new.name)
            .bind(new.org)
            .bind(new.now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let sealed = seal(id);
        let main_latest: i64 = sqlx::query("SELECT MAX(version) FROM tenant_keys WHERE tenant_id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if main_latest != i64::from(sealed.main_version) {
            return Err(StoreError::Busy("The main tenant's master key was rotated meanwhile: retry"));
        }
        sqlx::query("UPDATE tenants SET email = $2 WHERE id = $1")
            .bind(id)
            .bind(sealed.email.as_deref())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tenant_keys (tenant_id, version, wrapped, recovery_wrapped, created_at) VALUES ($1, 1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&sealed.master_wrapped)
        .bind(&sealed.recovery_wrapped)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO access_tokens (id, tenant_id, digest, kind, created_at) VALUES ($1, $2, $3, 'tenant', $4)")
            .bind(new.token_id)
            .bind(id)
            .bind(&new.token_digest[..])
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
        insert_audit!(&mut *tx, std::slice::from_ref(&sealed.event));
        tx.commit().await?;
        Ok(id)
    })
}

/// A change to a tenant; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct TenantChange {
    /// New name.
    pub name: Option<String>,
    /// New organisation.
    pub org: Option<String>,
    /// New admin email, sealed.
    pub email: Option<Vec<u8>>,
}

/// Applies a change to a live tenant with its event; a rename is announced to the other replicas
/// (their name caches). `NotFound` for no such tenant, `Conflict` for a taken name.
pub async fn update(db: &Db, id: TenantId, change: &TenantChange, now_ms: i64, event: &AuditRecord) -> StoreResult<()> {
    let sql = format!(
        "UPDATE tenants SET name = COALESCE($2, name), org = COALESCE($3, org), email = COALESCE($4, email) \
         WHERE id = $1 AND {LIVE}"
    );
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(event.tenant).await?;
        let updated = sqlx::query(&sql)
            .bind(id)
            .bind(change.name.as_deref())
            .bind(change.org.as_deref())
            .bind(change.email.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        if change.name.is_some() {
            record_change!(tx, Change::RENAMED, id, now_ms);
        }
        insert_audit!(&mut *tx, std::slice::from_ref(event));
        tx.commit().await?;
        Ok(())
    })
}

/// First step of deleting a tenant, in one transaction with its event: its master keys are
/// destroyed (every record of the tenant is unreadable from this commit on, backups included),
/// its tokens revoked, its name freed, and the other replicas told. [`purge`] then removes the
/// rows. `NotFound` for no such live tenant.
pub async fn delete(db: &Db, id: TenantId, now_ms: i64, event: &AuditRecord) -> StoreResult<()> {
    // The name becomes `#<id>`, outside the names a tenant may take, so it is free at once and
    // ids are never given out again (SQLite would reuse the highest id of a deleted row).
    let tombstone = format!(
        "UPDATE tenants SET deleted_at = $2, name = '#' || CAST(id AS TEXT), org = '', email = NULL \
         WHERE id = $1 AND {LIVE}"
    );
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(event.tenant).await?;
        let deleted = sqlx::query(&tombstone).bind(id).bind(now_ms.div_euclid(1000)).execute(&mut *tx).await?.rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM access_tokens WHERE tenant_id = $1").bind(id).execute(&mut *tx).await?;
        record_change!(tx, Change::DELETED, id, now_ms);
        insert_audit!(&mut *tx, std::slice::from_ref(event));
        tx.commit().await?;
        Ok(())
    })
}

/// Every table that holds a tenant's rows, children before their parents (and the backend's search
/// index table first).
const TENANT_TABLES: [&str; 33] = [
    "portal_codes",
    "portal_captchas",
    "account_tokens",
    "accounts",
    "connector_erasures",
    "connectors",
    "access_group_members",
    "access_role_policies",
    "access_groups",
    "access_policies",
    "bulk_unlocks",
    "session_names",
    "sessions",
    "shared_records",
    "user_requests",
    "tokens",
    "file_tags",
    "files",
    "agreement_history",
    "agreements",
    "userapp_versions",
    "userapps",
    "user_versions",
    "users",
    "processing_activity_legal_bases",
    "processing_activities",
    "legal_bases",
    "audit_events",
    "audit_links",
    "audit_unchained",
    "audit_chain",
    "access_tokens",
    "access_roles",
];

/// The record counts (migration 0023), purged after every table above, whose deletes move them.
/// On PostgreSQL the pending deltas go before the base counts, the order the compaction locks them in.
const COUNT_TABLES_PG: &[&str] = &["record_count_deltas", "record_counts"];
const COUNT_TABLES_SQLITE: &[&str] = &["record_counts"];

/// Second step of deleting a tenant: removes every row it had (its file blobs are queued for
/// removal by the files' own trigger). Runs again harmlessly; the sweeper finishes a purge that
/// a stopped process left undone.
pub async fn purge(db: &Db, id: TenantId, now: i64) -> StoreResult<()> {
    let (search, counts): (&[&str], _) = match db {
        Db::Sqlite(_) => (&["search_grams", "search_pending"], COUNT_TABLES_SQLITE),
        Db::Postgres(_) => (&["user_grams"], COUNT_TABLES_PG),
    };
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(id).await?;
        if matches!(db, Db::Postgres(_)) {
            // The compaction folds deltas of every tenant batch by batch, locking deltas and
            // counts in turn: a purge waits for it (and it skips a run while a purge goes on)
            // rather than the two deadlocking on each other's rows.
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(super::counts::COMPACT_LOCK).execute(&mut *tx).await?;
        }
        for table in search.iter().copied().chain(TENANT_TABLES).chain(counts.iter().copied()) {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1")).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM key_rotations WHERE tenant_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("UPDATE tenants SET purged_at = $2 WHERE id = $1 AND deleted_at IS NOT NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Deleted tenants whose rows are not all removed yet.
pub async fn unpurged(db: &Db) -> StoreResult<Vec<TenantId>> {
    with_pool!(db, pool => {
        let rows = sqlx::query("SELECT id FROM tenants WHERE deleted_at IS NOT NULL AND purged_at IS NULL ORDER BY id")
            .fetch_all(pool)
            .await?;
        Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
    })
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its id (each is applied once).
    pub id: i64,
    /// What changed: [`Change::RENAMED`], [`Change::DELETED`], [`Change::TOKENS`].
    pub kind: String,
    /// The tenant concerned.
    pub tenant: TenantId,
}

impl Change {
    /// A tenant was renamed.
    pub const RENAMED: &'static str = "renamed";
    /// A tenant was deleted.
    pub const DELETED: &'static str = "deleted";
    /// A tenant's access tokens changed (one revoked).
    pub const TOKENS: &'static str = "tokens";
    /// A tenant's groups, roles, policies or memberships changed.
    pub const ACCESS: &'static str = "access";
    /// A tenant's master keys changed (a new version, or older ones retired).
    pub const KEYS: &'static str = "keys";
    /// A licence was installed (vault-wide; recorded under the main tenant).
    pub const LICENCE: &'static str = "licence";
}

/// The changes recorded since `since_ms` (by the writer's clock), oldest first.
pub async fn changes_since(db: &Db, since_ms: i64) -> StoreResult<Vec<Change>> {
    with_pool!(db, pool => {
        let rows = sqlx::query("SELECT id, kind, tenant_id FROM vault_changes WHERE created_ms >= $1 ORDER BY id")
            .bind(since_ms)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|row| Ok(Change { id: row.try_get(0)?, kind: row.try_get(1)?, tenant: row.try_get(2)? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    })
}

/// Forgets the changes recorded before `before_ms`.
pub async fn prune_changes(db: &Db, before_ms: i64) -> StoreResult<u64> {
    with_pool!(db, pool => {
        Ok(sqlx::query("DELETE FROM vault_changes WHERE created_ms < $1").bind(before_ms).execute(pool).await?.rows_affected())
    })
}
