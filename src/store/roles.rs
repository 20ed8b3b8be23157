//! Roles, policies, the links between them, and the access tokens that act as a role or a user.
//! Catalogue records in clear (a policy is configuration, not personal data). Every change
//! commits with its audit event and a `vault_changes` entry, so every replica drops the access
//! decisions it compiled for the tenant and, when tokens die, the principals it verified.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::tenants::{Change, RECORD_CHANGE as CHANGED};
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};

/// A role as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Role {
    /// Id, unique in the vault.
    pub id: i64,
    /// Name, unique in the tenant.
    pub name: String,
    /// Description.
    pub descr: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
}

/// A policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Policy {
    /// Id, unique in the vault.
    pub id: i64,
    /// Name, unique in the tenant.
    pub name: String,
    /// Description.
    pub descr: String,
    /// The policy document as given (JSON text), validated when written.
    pub document: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
}

/// A group, role or policy named by id or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ref {
    /// By id.
    Id(i64),
    /// By name.
    Name(String),
}

/// How many records use a role: the cbadmin seed's usage counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleUsage {
    /// Policies linked to it.
    pub policies: i64,
    /// Memberships that hold it.
    pub members: i64,
    /// Live access tokens that act as it.
    pub tokens: i64,
}

/// A new role or user access token: only its digest is kept.
#[derive(Debug, Clone)]
pub struct NewXToken<'a> {
    /// Token id (recorded in events; not the secret).
    pub id: &'a str,
    /// SHA-256 of the secret.
    pub digest: &'a [u8; 32],
    /// `role` or `user`.
    pub kind: &'static str,
    /// The role it acts as.
    pub role_id: Option<i64>,
    /// The user it belongs to.
    pub user_rid: Option<&'a [u8]>,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

/// Inserts a [`NewXToken`] of `tenant` on an open connection (inside the caller's
/// transaction, with its event), on any backend.
macro_rules! insert_xtoken {
    ($exec:expr, $tenant:expr, $token:expr) => {{
        let token: &$crate::store::roles::NewXToken<'_> = $token;
        sqlx::query(
            "INSERT INTO access_tokens (id, tenant_id, digest, kind, created_at, expires_at, role_id, user_rid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token.id)
        .bind($tenant)
        .bind(&token.digest[..])
        .bind(token.kind)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.role_id)
        .bind(token.user_rid)
        .execute($exec)
        .await?;
    }};
}
pub(crate) use insert_xtoken;

const ROLE_COLUMNS: &str = "id, name, descr, created_at, updated_at";
const POLICY_COLUMNS: &str = "id, name, descr, document, created_at, updated_at";

/// The roles, policies and access tokens of one tenant.
#[derive(Debug, Clone, Copy)]
pub struct Roles<'a>(pub(super) TenantScope<'a>);

impl Roles<'_> {
    /// One role by id or name.
    pub async fn role(&self, role: &Ref) -> StoreResult<Option<Role>> {
        let (db, tenant) = self.0.parts();
        let by_id = format!("SELECT {ROLE_COLUMNS} FROM access_roles WHERE tenant_id = $1 AND id = $2");
        let by_name = format!("SELECT {ROLE_COLUMNS} FROM access_roles WHERE tenant_id = $1 AND name = $2");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let query = match role {
                Ref::Id(id) => sqlx::query_as::<_, Role>(&by_id).bind(tenant).bind(*id),
                Ref::Name(name) => sqlx::query_as::<_, Role>(&by_name).bind(tenant).bind(name.as_str()),
            };
            Ok(query.fetch_optional(&mut *conn).await?)
        })
    }

    /// Every role of the tenant, oldest first (at most `limit`).
    pub async fn roles(&self, limit: i64) -> StoreResult<Vec<Role>> {
        let (db, tenant) = self.0.parts();
        let sql = format!("SELECT {ROLE_COLUMNS} FROM access_roles WHERE tenant_id = $1 ORDER BY id LIMIT $2");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            Ok(sqlx::query_as::<_, Role>(&sql).bind(tenant).bind(limit).fetch_all(&mut *conn).await?)
        })
    }

    /// One policy by id or name.
    pub async fn policy(&self, policy: &Ref) -> StoreResult<Option<Policy>> {
        let (db, tenant) = self.0.parts();
        let by_id = format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE tenant_id = $1 AND id = $2");
        let by_name = format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE tenant_id = $1 AND name = $2");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let query = match policy {
                Ref::Id(id) => sqlx::query_as::<_, Policy>(&by_id).bind(tenant).bind(*id),
                Ref::Name(name) => sqlx::query_as::<_, Policy>(&by_name).bind(tenant).bind(name.as_str()),
            };
            Ok(query.fetch_optional(&mut *conn).await?)
        })
    }

    /// Every policy of the tenant, oldest first, at most `limit` from `offset`.
    pub async fn policies(&self, offset: i64, limit: i64) -> StoreResult<Vec<Policy>> {
        let (db, tenant) = self.0.parts();
        let sql =
            format!("SELECT {POLICY_COLUMNS} FROM access_policies WHERE tenant_id = $1 ORDER BY id LIMIT $2 OFFSET $3");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            Ok(sqlx::query_as::<_, Policy>(&sql).bind(tenant).bind(limit).bind(offset).fetch_all(&mut *conn).await?)
        })
    }

    /// How many policies the tenant has.
    pub async fn count_policies(&self) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT COUNT(*) FROM access_policies WHERE tenant_id = $1").bind(tenant).fetch_one(&mut *conn).await?;
            Ok(row.try_get(0)?)
        })
    }

    /// The policies linked to a role.
    pub async fn linked_policies(&self, role_id: i64) -> StoreResult<Vec<Policy>> {
        let (db, tenant) = self.0.parts();
        let sql = "SELECT p.id, p.name, p.descr, p.document, p.created_at, p.updated_at FROM access_policies p \
                   JOIN access_role_policies l ON l.tenant_id = p.tenant_id AND l.policy_id = p.id \
                   WHERE p.tenant_id = $1 AND l.role_id = $2 ORDER BY p.id";
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            Ok(sqlx::query_as::<_, Policy>(sql).bind(tenant).bind(role_id).fetch_all(&mut *conn).await?)
        })
    }

    /// How many records use a role.
    pub async fn role_usage(&self, role_id: i64, now: i64) -> StoreResult<RoleUsage> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM access_role_policies WHERE tenant_id = $1 AND role_id = $2), \
                 (SELECT COUNT(*) FROM access_group_members WHERE tenant_id = $1 AND role_id = $2), \
                 (SELECT COUNT(*) FROM access_tokens WHERE tenant_id = $1 AND role_id = $2 AND expires_at > $3)",
            )
            .bind(tenant)
            .bind(role_id)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            Ok(RoleUsage { policies: row.try_get(0)?, members: row.try_get(1)?, tokens: row.try_get(2)? })
        })
    }

    /// How many roles a policy is linked to.
    pub async fn policy_usage(&self, policy_id: i64) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT COUNT(*) FROM access_role_policies WHERE tenant_id = $1 AND policy_id = $2")
                .bind(tenant)
                .bind(policy_id)
                .fetch_one(&mut *conn)
                .await?;
            Ok(row.try_get(0)?)
        })
    }

    /// Inserts a role with its event; its id. `Conflict` when the name is taken.
    pub async fn insert_role(&self, role: &Role, event: &AuditRecord) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(
                "INSERT INTO access_roles (tenant_id, name, descr, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
            )
            .bind(tenant)
            .bind(&role.name)
            .bind(&role.descr)
            .bind(role.created_at)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = row.try_get(0)?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Stores a changed role with its event. `NotFound`, or `Conflict` on a taken name.
    pub async fn update_role(&self, role: &Role, now_ms: i64, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let done = sqlx::query("UPDATE access_roles SET name = $3, descr = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(role.id)
                .bind(&role.name)
                .bind(&role.descr)
                .bind(role.updated_at)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a role with its event: its policy links go, memberships keep the user in the
    /// group without a role, and its access tokens die (on every replica: the feed says so).
    pub async fn delete_role(&self, role_id: i64, now_ms: i64, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query("DELETE FROM access_role_policies WHERE tenant_id = $1 AND role_id = $2")
                .bind(tenant).bind(role_id).execute(&mut *tx).await?;
            sqlx::query("UPDATE access_group_members SET role_id = NULL WHERE tenant_id = $1 AND role_id = $2")
                .bind(tenant).bind(role_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM access_tokens WHERE tenant_id = $1 AND role_id = $2")
                .bind(tenant).bind(role_id).execute(&mut *tx).await?;
            // Its accounts keep their place without a role: they cannot log in until given one.
            sqlx::query("UPDATE accounts SET role_id = NULL WHERE tenant_id = $1 AND role_id = $2")
                .bind(tenant).bind(role_id).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM access_roles WHERE tenant_id = $1 AND id = $2")
                .bind(tenant).bind(role_id).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            sqlx::query(CHANGED).bind(Change::TOKENS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Inserts a policy with its event; its id. `Conflict` when the name is taken.
    pub async fn insert_policy(&self, policy: &Policy, event: &AuditRecord) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(
                "INSERT INTO access_policies (tenant_id, name, descr, document, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(tenant)
            .bind(&policy.name)
            .bind(&policy.descr)
            .bind(&policy.document)
            .bind(policy.created_at)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = row.try_get(0)?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Stores a changed policy with its event. `NotFound`, or `Conflict` on a taken name.
    pub async fn update_policy(&self, policy: &Policy, now_ms: i64, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let done = sqlx::query(
                "UPDATE access_policies SET name = $3, descr = $4, document = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(policy.id)
            .bind(&policy.name)
            .bind(&policy.descr)
            .bind(&policy.document)
            .bind(policy.updated_at)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a policy with its event. A policy still linked to a role is refused with
    /// `Conflict` unless `unlink` (then its links go with it).
    pub async fn delete_policy(
        &self,
        policy_id: i64,
        unlink: bool,
        now_ms: i64,
        event: &AuditRecord,
    ) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let links: i64 = sqlx::query("SELECT COUNT(*) FROM access_role_policies WHERE tenant_id = $1 AND policy_id = $2")
                .bind(tenant).bind(policy_id).fetch_one(&mut *tx).await?.try_get(0)?;
            if links > 0 && !unlink {
                return Err(StoreError::Conflict);
            }
            sqlx::query("DELETE FROM access_role_policies WHERE tenant_id = $1 AND policy_id = $2")
                .bind(tenant).bind(policy_id).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM access_policies WHERE tenant_id = $1 AND id = $2")
                .bind(tenant).bind(policy_id).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(links)
        })
    }

    /// Links a policy to a role (or unlinks it) with the event; true when something changed.
    pub async fn link(
        &self,
        role_id: i64,
        policy_id: i64,
        linked: bool,
        now_ms: i64,
        event: &AuditRecord,
    ) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let done = if linked {
                sqlx::query(
                    "INSERT INTO access_role_policies (tenant_id, role_id, policy_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id, role_id, policy_id) DO NOTHING",
                )
                .bind(tenant).bind(role_id).bind(policy_id).execute(&mut *tx).await?
            } else {
                sqlx::query("DELETE FROM access_role_policies WHERE tenant_id = $1 AND role_id = $2 AND policy_id = $3")
                    .bind(tenant).bind(role_id).bind(policy_id).execute(&mut *tx).await?
            };
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Stores a new role or user access token with its event. A user's token only while the user
    /// is live: its row is share-locked (PostgreSQL; SQLite's write transaction excludes every
    /// writer), so a deletion or a hold committing meanwhile cannot miss the new token; `NotFound`
    /// when the user is gone or held.
    pub async fn insert_token(&self, token: &NewXToken<'_>, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        let lock = if matches!(db, Db::Postgres(_)) { " FOR SHARE" } else { "" };
        let live = format!("SELECT 1 FROM users WHERE tenant_id = $1 AND rid = $2 AND held_until IS NULL{lock}");
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            if let Some(rid) = token.user_rid {
                let found = sqlx::query(&live).bind(tenant).bind(rid).fetch_optional(&mut *tx).await?;
                if found.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            insert_xtoken!(&mut *tx, tenant, token);
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }
}

/// Removes access tokens past their expiry (the sweeper); how many.
pub async fn sweep_expired_tokens(db: &Db, now: i64) -> StoreResult<u64> {
    with_pool!(db, pool => {
        Ok(sqlx::query("DELETE FROM access_tokens WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected())
    })
}
