//! The web console's sessions: access tokens marked as the console's own (`console_seen_at`),
//! which the API refuses from anyone but the console, with the time of their last use for the
//! idle timeout. Kept in the database, so every replica sees a session start, move and end.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::roles::NewXToken;
use super::tenants::{Change, RECORD_CHANGE as CHANGED};
use super::{ScopedPool, StoreError, StoreResult, TenantScope, with_pool};

/// The console's sessions in one tenant.
#[derive(Debug, Clone, Copy)]
pub struct Console<'a>(pub(super) TenantScope<'a>);

impl Console<'_> {
    /// Opens a session acting as an administrator (`root` or `tenant`), with its event.
    pub async fn open(&self, token: &NewXToken<'_>, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query(
                "INSERT INTO access_tokens (id, tenant_id, digest, kind, created_at, expires_at, console_seen_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $5)",
            )
            .bind(token.id)
            .bind(tenant)
            .bind(&token.digest[..])
            .bind(token.kind)
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Makes a login session the console's own (an account's) or the portal's (a user's).
    /// `NotFound` when it is gone.
    pub async fn adopt(&self, digest: &[u8; 32], now: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let done = sqlx::query(
                "UPDATE access_tokens SET console_seen_at = $3 \
                 WHERE tenant_id = $1 AND digest = $2 AND (account_id IS NOT NULL OR kind = 'user')",
            )
            .bind(tenant)
            .bind(&digest[..])
            .bind(now)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }

    /// Records a use of the session. `NotFound` when it is gone.
    pub async fn touch(&self, id: &str, now: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let done = sqlx::query(
                "UPDATE access_tokens SET console_seen_at = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND console_seen_at IS NOT NULL",
            )
            .bind(tenant)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }

    /// Ends a session (logout, idle or expired), on every replica, with its event when given.
    /// `false` when it had already ended.
    pub async fn end(&self, id: &str, event: Option<&AuditRecord>, now_ms: i64) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let done = sqlx::query(
                "DELETE FROM access_tokens WHERE tenant_id = $1 AND id = $2 AND console_seen_at IS NOT NULL",
            )
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let ended = done.rows_affected() > 0;
            if ended {
                sqlx::query(CHANGED).bind(Change::TOKENS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            }
            if let Some(event) = event {
                insert_audit!(&mut *tx, std::slice::from_ref(event));
            }
            tx.commit().await?;
            Ok(ended)
        })
    }

    /// The tenant's audit events per day (UTC) since `since_ms`: (day number since the epoch,
    /// count), in order.
    pub async fn events_per_day(&self, since_ms: i64) -> StoreResult<Vec<(i64, i64)>> {
        let (db, tenant) = self.0.parts();
        let sql = "SELECT created_ms / 86400000 AS day, COUNT(*) FROM audit_events \
                   WHERE tenant_id = $1 AND created_ms >= $2 GROUP BY day ORDER BY day";
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(sql).bind(tenant).bind(since_ms).fetch_all(&mut *conn).await?;
            rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
        })
    }
}
