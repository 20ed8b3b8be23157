//! Record counts.
// TEMPORARY: replaced by the stats branch (its indexed counts; this is a plain COUNT).

use sqlx::Row;

use super::{Db, ScopedPool, StoreResult};

/// Users (not held by a system deletion) plus tokens over every tenant not deleted: the
/// licence's records.
pub async fn vault_records(db: &Db) -> StoreResult<i64> {
    const SQL: &str = "SELECT \
        (SELECT COUNT(*) FROM users WHERE held_until IS NULL \
            AND tenant_id IN (SELECT id FROM tenants WHERE deleted_at IS NULL)) + \
        (SELECT COUNT(*) FROM tokens WHERE tenant_id IN (SELECT id FROM tenants WHERE deleted_at IS NULL))";
    match db {
        // No row-level security: a plain read, without SQLite's write lock.
        Db::Sqlite(pool) => Ok(sqlx::query(SQL).fetch_one(pool).await?.try_get(0)?),
        Db::Postgres(pool) => {
            let mut tx = pool.begin_all().await?;
            let count = sqlx::query(SQL).fetch_one(&mut *tx).await?.try_get(0)?;
            tx.rollback().await?;
            Ok(count)
        }
    }
}
