//! Search grams: keyed digests of profile trigrams, one row per user and digest.
//!
//! Written in the same transaction as the user row they describe (see [`super::users`]);
//! deleting a user deletes its grams by cascade.

use sqlx::Row;

use super::{Db, StoreResult, placeholders, with_pool};
use crate::crypto::IndexValue;

/// Rows per multi-row INSERT: 3 binds each stays under both backends' parameter limits.
pub(crate) const CHUNK: usize = 5000;

/// Inserts the grams of users on an executor (a transaction): `$users` yields
/// `(rid: &[u8], grams: &[IndexValue])`. Expands for either backend.
macro_rules! insert_grams {
    ($exec:expr, $tenant:expr, $users:expr) => {{
        let rows: Vec<(&[u8], &$crate::crypto::IndexValue)> = $users
            .into_iter()
            .flat_map(|(rid, grams): (&[u8], &[$crate::crypto::IndexValue])| grams.iter().map(move |gram| (rid, gram)))
            .collect();
        for chunk in rows.chunks($crate::store::search::CHUNK) {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO search_grams (tenant_id, gram, rid) ");
            qb.push_values(chunk, |mut b, (rid, gram)| {
                b.push_bind($tenant).push_bind(&gram[..]).push_bind(*rid);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute($exec).await?;
        }
    }};
}
pub(crate) use insert_grams;

/// Replaces the grams of one user on an executor (a transaction). Expands for either backend.
macro_rules! replace_grams {
    ($exec:expr, $tenant:expr, $rid:expr, $grams:expr) => {{
        let rid: &[u8] = $rid;
        sqlx::query("DELETE FROM search_grams WHERE tenant_id = $1 AND rid = $2")
            .bind($tenant)
            .bind(rid)
            .execute($exec)
            .await?;
        let grams: &[$crate::crypto::IndexValue] = $grams;
        $crate::store::search::insert_grams!($exec, $tenant, [(rid, grams)]);
    }};
}
pub(crate) use replace_grams;

/// Users holding at least `min_shared` of `grams`, most shared first, at most `cap` of them:
/// `(rid, shared)`. One indexed lookup per gram, counted by the database.
pub async fn candidates(
    db: &Db,
    tenant: i64,
    grams: &[IndexValue],
    min_shared: usize,
    cap: usize,
) -> StoreResult<Vec<(Vec<u8>, i64)>> {
    if grams.is_empty() {
        return Ok(Vec::new());
    }
    let n = grams.len();
    let sql = format!(
        "SELECT rid, COUNT(*) AS shared FROM search_grams WHERE tenant_id = $1 AND gram IN ({}) \
         GROUP BY rid HAVING COUNT(*) >= ${} ORDER BY shared DESC, rid LIMIT ${}",
        placeholders(2, n),
        n + 2,
        n + 3
    );
    let min = i64::try_from(min_shared).unwrap_or(i64::MAX);
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    with_pool!(db, pool => {
        let mut query = sqlx::query(&sql).bind(tenant);
        for gram in grams {
            query = query.bind(&gram[..]);
        }
        let rows = query.bind(min).bind(cap).fetch_all(pool).await?;
        Ok(rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    })
}
