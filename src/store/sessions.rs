//! Sessions: sealed data under a blind index of the caller's session uuid.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::{ScopedPool, StoreResult, TenantScope, with_pool};
use crate::crypto::IndexValue;
use crate::expiry::Lifetime;

/// A session row to write (insert or replace).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Blind index of the session uuid.
    pub sid_idx: IndexValue,
    /// The bound user's record id, if any.
    pub user_rid: Option<Vec<u8>>,
    /// Sealed session (under the user's data key when bound, else the tenant key).
    pub data: Vec<u8>,
    /// Time of the write.
    pub now: i64,
    /// Lifetime; `expires_at` is always set.
    pub lifetime: Lifetime,
    /// Blind indexes of the identities an unbound session names (empty when bound).
    pub names: Vec<IndexValue>,
}

/// A live session read back, with the bound user's wrapped data key.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The bound user's record id, if any.
    pub user_rid: Option<Vec<u8>>,
    /// The bound user's wrapped data key, if any.
    pub wrapped_key: Option<Vec<u8>>,
    /// Sealed session.
    pub data: Vec<u8>,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// A session of a user: its index (the AAD of `data`) and sealed data.
#[derive(Debug, Clone)]
pub struct UserSessionRow {
    /// Blind index of the session uuid.
    pub sid_idx: Vec<u8>,
    /// Sealed session.
    pub data: Vec<u8>,
}

/// The sessions of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'a>(pub(super) TenantScope<'a>);

impl Sessions<'_> {
    /// Inserts or replaces a session with its audit event in one transaction; expired sessions of
    /// the tenant are purged on the way, so their sealed data does not linger.
    pub async fn upsert(&self, session: &NewSession, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND expires_at <= $2")
                .bind(tenant)
                .bind(session.now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO sessions (tenant_id, sid_idx, user_rid, data, created_at, updated_at, sliding_secs, \
                 final_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) \
                 ON CONFLICT (tenant_id, sid_idx) DO UPDATE SET user_rid = excluded.user_rid, data = excluded.data, \
                 updated_at = excluded.updated_at, sliding_secs = excluded.sliding_secs, \
                 final_at = excluded.final_at, expires_at = excluded.expires_at",
            )
            .bind(tenant)
            .bind(&session.sid_idx[..])
            .bind(session.user_rid.as_deref())
            .bind(session.data.as_slice())
            .bind(session.now)
            .bind(session.lifetime.sliding_secs)
            .bind(session.lifetime.final_at)
            .bind(session.lifetime.expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM session_names WHERE tenant_id = $1 AND sid_idx = $2")
                .bind(tenant)
                .bind(&session.sid_idx[..])
                .execute(&mut *tx)
                .await?;
            if !session.names.is_empty() {
                let values: Vec<String> = (0..session.names.len()).map(|i| format!("($1, $2, ${})", i + 3)).collect();
                let sql = format!("INSERT INTO session_names (tenant_id, sid_idx, name_idx) VALUES {}", values.join(", "));
                let mut query = sqlx::query(&sql).bind(tenant).bind(&session.sid_idx[..]);
                for name in &session.names {
                    query = query.bind(&name[..]);
                }
                query.execute(&mut *tx).await?;
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// A live (unexpired) session by its index.
    pub async fn get(&self, sid_idx: &IndexValue, now: i64) -> StoreResult<Option<SessionRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT s.user_rid, u.wrapped_key, s.data, s.sliding_secs, s.final_at, s.expires_at FROM sessions s \
                 LEFT JOIN users u ON u.tenant_id = s.tenant_id AND u.rid = s.user_rid \
                 WHERE s.tenant_id = $1 AND s.sid_idx = $2 AND s.expires_at > $3 AND u.held_until IS NULL",
            )
            .bind(tenant)
            .bind(&sid_idx[..])
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            let decoded = row.map(|row| -> Result<SessionRow, sqlx::Error> {
                Ok(SessionRow {
                    user_rid: row.try_get(0)?,
                    wrapped_key: row.try_get(1)?,
                    data: row.try_get(2)?,
                    lifetime: Lifetime {
                        sliding_secs: row.try_get(3)?,
                        final_at: row.try_get(4)?,
                        expires_at: row.try_get(5)?,
                    },
                })
            });
            Ok(decoded.transpose()?)
        })
    }

    /// Moves a live session's expiry forward (a sliding session read again); the guard keeps it
    /// from resurrecting an expired row or moving backwards.
    pub async fn extend(&self, sid_idx: &IndexValue, now: i64, expires_at: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            sqlx::query(
                "UPDATE sessions SET expires_at = $4 \
                 WHERE tenant_id = $1 AND sid_idx = $2 AND expires_at > $3 AND expires_at < $4",
            )
                .bind(tenant)
                .bind(&sid_idx[..])
                .bind(now)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    /// Deletes a live session with its audit event; returns whether one was deleted.
    pub async fn delete(&self, sid_idx: &IndexValue, now: i64, event: &AuditRecord) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let deleted = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND sid_idx = $2 AND expires_at > $3")
                .bind(tenant)
                .bind(&sid_idx[..])
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                // Nothing changed: no event for a change that did not happen.
                tx.rollback().await?;
                return Ok(false);
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Deletes the unbound sessions that name any of `names` (an erased user's identities);
    /// returns how many. No event of its own: the erasure's event covers it.
    pub async fn delete_naming(&self, names: &[IndexValue]) -> StoreResult<u64> {
        let (db, tenant) = self.0.parts();
        let mut deleted = 0;
        for chunk in names.chunks(1000) {
            let sql = format!(
                "DELETE FROM sessions WHERE tenant_id = $1 AND user_rid IS NULL AND sid_idx IN \
                 (SELECT sid_idx FROM session_names WHERE tenant_id = $1 AND name_idx IN ({}))",
                super::placeholders(2, chunk.len())
            );
            deleted += with_pool!(db, pool => {
                let mut conn = pool.conn_for(tenant).await?;
                let mut query = sqlx::query(&sql).bind(tenant);
                for name in chunk {
                    query = query.bind(&name[..]);
                }
                query.execute(&mut *conn).await?.rows_affected()
            });
        }
        Ok(deleted)
    }

    /// The live sessions bound to a user, oldest first.
    pub async fn list_for_user(&self, user_rid: &[u8], now: i64) -> StoreResult<Vec<UserSessionRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT sid_idx, data FROM sessions WHERE tenant_id = $1 AND user_rid = $2 AND expires_at > $3 \
                 ORDER BY created_at, sid_idx",
            )
            .bind(tenant)
            .bind(user_rid)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| Ok(UserSessionRow { sid_idx: row.try_get(0)?, data: row.try_get(1)? }))
                .collect()
        })
    }
}
