//! Search grams: keyed digests of profile trigrams.
//!
//! SQLite keeps one row per user and digest in `search_grams`, found through its primary key.
//! PostgreSQL keeps one row per user in `user_grams` with the digests, cut to their first
//! 8 bytes, in a `bigint[]` under a GIN index: a user's grams cost one row and one GIN entry per
//! digest (deferred into GIN's pending list) instead of sixty B-tree insertions, which made bulk
//! creation ten times slower. A shorter digest only adds false candidates, and every candidate
//! is judged on its opened value anyway.
//!
//! Written in the same transaction as the user row they describe (see [`super::users`]);
//! deleting a user deletes its grams by cascade.

use sqlx::Row;

use super::{Db, ScopedPool, StoreResult, TenantScope, placeholders};
use crate::crypto::IndexValue;
use crate::tenants::TenantId;

/// Rows per multi-row INSERT on SQLite: 3 binds each stays under its parameter limit.
const CHUNK: usize = 5000;

/// Users per grams statement on PostgreSQL.
const PG_USERS_PER_STATEMENT: usize = 500;

/// The PostgreSQL form of a gram digest: its first 8 bytes, big-endian.
pub fn short_gram(gram: &IndexValue) -> i64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&gram[..8]);
    i64::from_be_bytes(head)
}

/// The grams of several users for one PostgreSQL statement: `(lo, hi, grams)`, all of them in
/// one flat array and each user's, in order, as its slice `lo..=hi` (1-based; empty when
/// `hi < lo`). The database cuts each user's array out of the flat one, where grouping
/// `(owner, gram)` pairs back into arrays cost a join and a sort (about 50 ms per 1,000 users,
/// against 13 ms). A user's grams are already distinct (see [`crate::search::grams::of_profile`]).
pub(crate) fn pg_slices<'a>(users: impl Iterator<Item = &'a [IndexValue]>) -> (Vec<i32>, Vec<i32>, Vec<i64>) {
    let (mut lo, mut hi, mut grams) = (Vec::new(), Vec::new(), Vec::new());
    for own in users {
        lo.push(i32::try_from(grams.len() + 1).unwrap_or(i32::MAX));
        grams.extend(own.iter().map(short_gram));
        hi.push(i32::try_from(grams.len()).unwrap_or(i32::MAX));
    }
    (lo, hi, grams)
}

/// Inserts the grams of users on an executor (a transaction): `$users` yields
/// `(rid: &[u8], grams: &[IndexValue])`. Expands for either backend.
macro_rules! insert_grams {
    ($exec:expr, $tenant:expr, $users:expr) => {{
        let users: Vec<(&[u8], &[$crate::crypto::IndexValue])> = $users.into_iter().collect();
        $crate::store::search::GramRows::insert_grams($exec, $tenant, &users).await?;
    }};
}
pub(crate) use insert_grams;

/// Replaces the grams of one user on an executor (a transaction). Expands for either backend.
macro_rules! replace_grams {
    ($exec:expr, $tenant:expr, $rid:expr, $grams:expr) => {{
        $crate::store::search::GramRows::replace_grams($exec, $tenant, $rid, $grams).await?;
    }};
}
pub(crate) use replace_grams;

/// Writes grams on an open connection, inside the caller's transaction.
pub(crate) trait GramRows {
    /// Inserts the grams of newly inserted users.
    async fn insert_grams(&mut self, tenant: TenantId, users: &[(&[u8], &[IndexValue])]) -> Result<(), sqlx::Error>;
    /// Replaces one user's grams.
    async fn replace_grams(&mut self, tenant: TenantId, rid: &[u8], grams: &[IndexValue]) -> Result<(), sqlx::Error>;
}

impl GramRows for sqlx::SqliteConnection {
    async fn insert_grams(&mut self, tenant: TenantId, users: &[(&[u8], &[IndexValue])]) -> Result<(), sqlx::Error> {
        let rows: Vec<(&[u8], &IndexValue)> =
            users.iter().flat_map(|(rid, grams)| grams.iter().map(move |gram| (*rid, gram))).collect();
        for chunk in rows.chunks(CHUNK) {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO search_grams (tenant_id, gram, rid) ");
            qb.push_values(chunk, |mut b, (rid, gram)| {
                b.push_bind(tenant).push_bind(&gram[..]).push_bind(*rid);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            // A statement of this many rows is seldom seen again: not kept prepared (see users.rs).
            qb.build().persistent(false).execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn replace_grams(&mut self, tenant: TenantId, rid: &[u8], grams: &[IndexValue]) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM search_grams WHERE tenant_id = $1 AND rid = $2")
            .bind(tenant)
            .bind(rid)
            .execute(&mut *self)
            .await?;
        self.insert_grams(tenant, &[(rid, grams)]).await
    }
}

impl GramRows for sqlx::PgConnection {
    async fn insert_grams(&mut self, tenant: TenantId, users: &[(&[u8], &[IndexValue])]) -> Result<(), sqlx::Error> {
        // One statement text for any number of users: the rids, and each digest with the
        // position of its user among them, grouped back into one row per user by the database.
        // A few hundred users per statement keep the encoded arguments small.
        for chunk in users.chunks(PG_USERS_PER_STATEMENT) {
            let rids: Vec<&[u8]> = chunk.iter().map(|(rid, _)| *rid).collect();
            let (lo, hi, grams) = pg_slices(chunk.iter().map(|(_, grams)| *grams));
            if grams.is_empty() {
                continue;
            }
            sqlx::query(
                "INSERT INTO user_grams (rid, tenant_id, grams) \
                 SELECT u.rid, $1, ($5::int8[])[u.lo:u.hi] FROM UNNEST($2::bytea[], $3::int4[], $4::int4[]) AS u (rid, lo, hi) \
                 WHERE u.hi >= u.lo ON CONFLICT (tenant_id, rid) DO UPDATE SET grams = EXCLUDED.grams",
            )
            .bind(tenant)
            .bind(rids)
            .bind(lo)
            .bind(hi)
            .bind(grams)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn replace_grams(&mut self, tenant: TenantId, rid: &[u8], grams: &[IndexValue]) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM user_grams WHERE rid = $1").bind(rid).execute(&mut *self).await?;
        self.insert_grams(tenant, &[(rid, grams)]).await
    }
}

/// The search of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Search<'a>(pub(super) TenantScope<'a>);

impl Search<'_> {
    /// Users holding at least `min_shared` of `grams`, most shared first, at most `cap` of them:
    /// `(rid, shared)`, counted by the database.
    pub async fn candidates(
        &self,
        grams: &[IndexValue],
        min_shared: usize,
        cap: usize,
    ) -> StoreResult<Vec<(Vec<u8>, i64)>> {
        let (db, tenant) = self.0.parts();
        if grams.is_empty() {
            return Ok(Vec::new());
        }
        let min = i64::try_from(min_shared).unwrap_or(i64::MAX);
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let rows = match db {
            Db::Sqlite(pool) => {
                // One indexed lookup per gram.
                let n = grams.len();
                let sql = format!(
                    "SELECT g.rid, COUNT(*) AS shared FROM search_grams g \
                     JOIN users u ON u.tenant_id = g.tenant_id AND u.rid = g.rid AND u.held_until IS NULL \
                     WHERE g.tenant_id = $1 AND g.gram IN ({}) \
                     GROUP BY g.rid HAVING COUNT(*) >= ${} ORDER BY shared DESC, g.rid LIMIT ${}",
                    placeholders(2, n),
                    n + 2,
                    n + 3
                );
                let mut query = sqlx::query(&sql).bind(tenant);
                for gram in grams {
                    query = query.bind(&gram[..]);
                }
                let rows = query.bind(min).bind(cap).fetch_all(pool).await?;
                rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?
            }
            Db::Postgres(pool) => {
                let mut conn = pool.conn_for(tenant).await?;
                // The GIN index finds the users sharing any digest; each one's count is its overlap.
                let mut wanted: Vec<i64> = grams.iter().map(short_gram).collect();
                wanted.sort_unstable();
                wanted.dedup();
                let rows = sqlx::query(
                    "SELECT g.rid, s.shared FROM user_grams g \
                     JOIN users u ON u.tenant_id = g.tenant_id AND u.rid = g.rid AND u.held_until IS NULL \
                     CROSS JOIN LATERAL (SELECT COUNT(*) AS shared FROM unnest(g.grams) AS x WHERE x = ANY($2)) s \
                     WHERE g.grams && $2 AND g.tenant_id = $1 AND s.shared >= $3 \
                     ORDER BY s.shared DESC, g.rid LIMIT $4",
                )
                .bind(tenant)
                .bind(wanted)
                .bind(min)
                .bind(cap)
                .fetch_all(&mut *conn)
                .await?;
                rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?
            }
        };
        Ok(rows)
    }
}
