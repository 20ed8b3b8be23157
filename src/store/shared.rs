//! Shared records: a sealed snapshot under a blind index of the record uuid.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::{ScopedPool, StoreResult, TenantScope, with_pool};
use crate::crypto::IndexValue;

/// A shared record to insert.
#[derive(Debug, Clone)]
pub struct NewSharedRecord {
    /// Blind index of the record uuid.
    pub rec_idx: IndexValue,
    /// The owning user's record id.
    pub user_rid: Vec<u8>,
    /// Sealed snapshot (under the user's data key).
    pub data: Vec<u8>,
    /// Time of the write.
    pub now: i64,
    /// When the record stops resolving.
    pub expires_at: i64,
}

/// A live shared record read back, with the owner's wrapped data key.
#[derive(Debug, Clone)]
pub struct SharedRecordRow {
    /// The owning user's record id.
    pub user_rid: Vec<u8>,
    /// The owner's wrapped data key.
    pub wrapped_key: Vec<u8>,
    /// Sealed snapshot.
    pub data: Vec<u8>,
}

/// The shared of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct SharedRecords<'a>(pub(super) TenantScope<'a>);

impl SharedRecords<'_> {
    /// Inserts a shared record with its audit event in one transaction; expired records of the
    /// tenant are purged on the way, so their sealed data does not linger.
    pub async fn insert(&self, record: &NewSharedRecord, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query("DELETE FROM shared_records WHERE tenant_id = $1 AND expires_at <= $2")
                .bind(tenant)
                .bind(record.now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO shared_records (tenant_id, rec_idx, user_rid, data, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant)
            .bind(&record.rec_idx[..])
            .bind(record.user_rid.as_slice())
            .bind(record.data.as_slice())
            .bind(record.now)
            .bind(record.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// The live shared records of one user, oldest first.
    pub async fn list_for_user(&self, user_rid: &[u8], now: i64) -> StoreResult<Vec<UserSharedRecordRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT rec_idx, data, created_at, expires_at FROM shared_records \
                 WHERE tenant_id = $1 AND user_rid = $2 AND expires_at > $3 ORDER BY created_at, rec_idx",
            )
            .bind(tenant)
            .bind(user_rid)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(UserSharedRecordRow {
                        rec_idx: row.try_get(0)?,
                        data: row.try_get(1)?,
                        created_at: row.try_get(2)?,
                        expires_at: row.try_get(3)?,
                    })
                })
                .collect()
        })
    }

    /// A live (unexpired) shared record by its index.
    pub async fn get(&self, rec_idx: &IndexValue, now: i64) -> StoreResult<Option<SharedRecordRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT s.user_rid, u.wrapped_key, s.data FROM shared_records s \
                 JOIN users u ON u.tenant_id = s.tenant_id AND u.rid = s.user_rid \
                 WHERE s.tenant_id = $1 AND s.rec_idx = $2 AND s.expires_at > $3 AND u.held_until IS NULL",
            )
            .bind(tenant)
            .bind(&rec_idx[..])
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            let decoded = row.map(|row| -> Result<SharedRecordRow, sqlx::Error> {
                Ok(SharedRecordRow { user_rid: row.try_get(0)?, wrapped_key: row.try_get(1)?, data: row.try_get(2)? })
            });
            Ok(decoded.transpose()?)
        })
    }
}

/// A live shared record of a user, as listed in the user's report.
#[derive(Debug, Clone)]
pub struct UserSharedRecordRow {
    /// Blind index of the record uuid (bound into the sealed data).
    pub rec_idx: Vec<u8>,
    /// Sealed snapshot.
    pub data: Vec<u8>,
    /// When it was created.
    pub created_at: i64,
    /// When it stops resolving.
    pub expires_at: i64,
}
