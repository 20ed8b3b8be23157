//! Tenant lookups.

use crate::tenants::TenantId;
use sqlx::Row;

use super::{Db, StoreResult, with_pool};

/// The id of the tenant with this name.
pub async fn id_by_name(db: &Db, name: &str) -> StoreResult<Option<TenantId>> {
    with_pool!(db, pool => {
        let row = sqlx::query("SELECT id FROM tenants WHERE name = $1").bind(name).fetch_optional(pool).await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    })
}
