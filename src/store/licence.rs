//! The licence in force: one row for the whole vault (migration 0024). Its text is kept as
//! installed; the terms beside it are what the vault enforces (they were verified when it was
//! installed, and whoever can write this table can delete the row anyway).

use sqlx::Row;

use super::audit::AuditRecord;
use super::tenants::{Change, RECORD_CHANGE};
use super::{Db, ScopedPool, StoreResult, with_pool};
use crate::licence::Terms;
use crate::tenants::TenantId;

/// The terms of the licence in force, if one was installed.
pub async fn load(db: &Db) -> StoreResult<Option<Terms>> {
    with_pool!(db, pool => {
        let row = sqlx::query("SELECT version, customer, max_records, expires, issued FROM licence WHERE id = 1")
            .fetch_optional(pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get(0)?;
        Ok(Some(Terms {
            v: u32::try_from(version).unwrap_or(u32::MAX),
            customer: row.try_get(1)?,
            max_records: row.try_get(2)?,
            expires: row.try_get(3)?,
            issued: row.try_get(4)?,
        }))
    })
}

/// How an installation treats a licence already in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Replace it (`SystemSetLicenseKey`).
    Replace,
    /// Keep it, installing only into an empty table (the preload at start).
    IfAbsent,
}

/// Installs a verified licence with its audit event and a change-feed entry (so every replica
/// reads it again), in one transaction. Returns false when `IfAbsent` found one in force.
pub async fn install(
    db: &Db,
    text: &str,
    terms: &Terms,
    mode: Install,
    now_ms: i64,
    event: &AuditRecord,
) -> StoreResult<bool> {
    let on_conflict = match mode {
        Install::Replace => {
            "DO UPDATE SET text = excluded.text, version = excluded.version, customer = excluded.customer, \
             max_records = excluded.max_records, expires = excluded.expires, issued = excluded.issued, \
             installed_ms = excluded.installed_ms"
        }
        Install::IfAbsent => "DO NOTHING",
    };
    let sql = format!(
        "INSERT INTO licence (id, text, version, customer, max_records, expires, issued, installed_ms) \
         VALUES (1, $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) {on_conflict}"
    );
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(event.tenant).await?;
        let written = sqlx::query(&sql)
            .bind(text)
            .bind(i64::from(terms.v))
            .bind(&terms.customer)
            .bind(terms.max_records)
            .bind(terms.expires)
            .bind(terms.issued)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if written == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(RECORD_CHANGE).bind(Change::LICENCE).bind(TenantId::MAIN).bind(now_ms).execute(&mut *tx).await?;
        super::audit::insert!(&mut *tx, std::slice::from_ref(event));
        tx.commit().await?;
        Ok(true)
    })
}
