//! Search grams: keyed digests of profile trigrams, cut to their first 8 bytes
//! ([`crate::search::grams::Gram`]).
//!
//! PostgreSQL keeps one row per user in `user_grams` with its grams in a `bigint[]` under a GIN
//! index: a user's grams cost one row and one GIN entry per digest (deferred into GIN's pending
//! list) instead of sixty B-tree insertions, which made bulk creation ten times slower.
//!
//! SQLite keeps one row per user and gram in `search_grams` (the gram as an 8-byte blob), found
//! through its primary key, and a pending list of its own, `search_pending`: a new user's grams
//! wait there, one row per user, until a thousand users do, then move into the index in gram
//! order (see migration 0029). A user's grams go with it by trigger.
//!
//! A shorter digest only adds false candidates, and every candidate is judged on its opened
//! value anyway.
//!
//! Written in the same transaction as the user row they describe (see [`super::users`]);
//! deleting a user deletes its grams (by cascade on PostgreSQL, by trigger on SQLite).

use sqlx::Row;

use super::{Db, ScopedPool, StoreResult, TenantScope, placeholders};
use crate::search::grams::Gram;
use crate::tenants::TenantId;

/// Rows per multi-row INSERT on SQLite: 3 binds each stays under its parameter limit.
const CHUNK: usize = 5000;

/// Users per grams statement on PostgreSQL.
const PG_USERS_PER_STATEMENT: usize = 500;

/// The grams of several users for one PostgreSQL statement: `(lo, hi, grams)`, all of them in
/// one flat array and each user's, in order, as its slice `lo..=hi` (1-based; empty when
/// `hi < lo`). The database cuts each user's array out of the flat one, where grouping
/// `(owner, gram)` pairs back into arrays cost a join and a sort (about 50 ms per 1,000 users,
/// against 13 ms). A user's grams are already distinct (see [`crate::search::grams::of_profile`]).
pub(crate) fn pg_slices<'a>(users: impl Iterator<Item = &'a [Gram]>) -> (Vec<i32>, Vec<i32>, Vec<i64>) {
    let (mut lo, mut hi, mut grams) = (Vec::new(), Vec::new(), Vec::new());
    for own in users {
        lo.push(i32::try_from(grams.len() + 1).unwrap_or(i32::MAX));
        grams.extend_from_slice(own);
        hi.push(i32::try_from(grams.len()).unwrap_or(i32::MAX));
    }
    (lo, hi, grams)
}

/// Inserts the grams of users on an executor (a transaction): `$users` yields
/// `(rid: &[u8], grams: &[Gram])`. Expands for either backend.
macro_rules! insert_grams {
    ($exec:expr, $tenant:expr, $users:expr) => {{
        let users: Vec<(&[u8], &[$crate::search::grams::Gram])> = $users.into_iter().collect();
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
    async fn insert_grams(&mut self, tenant: TenantId, users: &[(&[u8], &[Gram])]) -> Result<(), sqlx::Error>;
    /// Replaces one user's grams.
    async fn replace_grams(&mut self, tenant: TenantId, rid: &[u8], grams: &[Gram]) -> Result<(), sqlx::Error>;
}

/// Users waiting in SQLite's `search_pending` past which an insert moves them into the index.
const SQLITE_PENDING_USERS: i64 = 1000;

/// Pending users per statement on SQLite.
const SQLITE_PENDING_PER_STATEMENT: usize = 500;

/// A user's grams packed for `search_pending`: 8 bytes each, in the digest's byte order.
fn packed(grams: &[Gram]) -> Vec<u8> {
    grams.iter().flat_map(|gram| gram.to_be_bytes()).collect()
}

/// The grams of a `search_pending` row (a trailing partial gram, which is never written, is
/// ignored).
fn unpacked(packed: &[u8]) -> impl Iterator<Item = Gram> + '_ {
    packed.chunks_exact(8).map(|head| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(head);
        i64::from_be_bytes(bytes)
    })
}

/// SQLite: a new user's grams are appended to `search_pending` (one row, a few per page) and
/// moved into the index with the others when a thousand are waiting (see migration 0029).
impl GramRows for sqlx::SqliteConnection {
    async fn insert_grams(&mut self, tenant: TenantId, users: &[(&[u8], &[Gram])]) -> Result<(), sqlx::Error> {
        let rows: Vec<(&[u8], Vec<u8>)> =
            users.iter().filter(|(_, grams)| !grams.is_empty()).map(|(rid, grams)| (*rid, packed(grams))).collect();
        for chunk in rows.chunks(SQLITE_PENDING_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO search_pending (rid, tenant_id, grams) ");
            qb.push_values(chunk, |mut b, (rid, grams)| {
                b.push_bind(*rid).push_bind(tenant).push_bind(grams.as_slice());
            });
            qb.push(" ON CONFLICT (rid) DO UPDATE SET grams = excluded.grams");
            // A statement of this many rows is seldom seen again: not kept prepared (see users.rs).
            qb.build().persistent(false).execute(&mut *self).await?;
        }
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_pending").fetch_one(&mut *self).await?;
        if waiting >= SQLITE_PENDING_USERS {
            merge_pending(self).await?;
        }
        Ok(())
    }

    async fn replace_grams(&mut self, tenant: TenantId, rid: &[u8], grams: &[Gram]) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM search_grams WHERE tenant_id = $1 AND rid = $2")
            .bind(tenant)
            .bind(rid)
            .execute(&mut *self)
            .await?;
        sqlx::query("DELETE FROM search_pending WHERE rid = $1").bind(rid).execute(&mut *self).await?;
        self.insert_grams(tenant, &[(rid, grams)]).await
    }
}

/// Moves every user of `search_pending` into the index, a thousand users at a time, each
/// thousand's grams inserted in index order.
pub async fn merge_pending(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    loop {
        let rows = sqlx::query("SELECT rid, tenant_id, grams FROM search_pending ORDER BY rid LIMIT $1")
            .bind(SQLITE_PENDING_USERS)
            .fetch_all(&mut *conn)
            .await?;
        let Some(last) = rows.last() else { return Ok(()) };
        let last: Vec<u8> = last.try_get(0)?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push((row.try_get::<Vec<u8>, _>(0)?, row.try_get::<i64, _>(1)?, row.try_get::<Vec<u8>, _>(2)?));
        }
        let mut entries: Vec<(i64, [u8; 8], &[u8])> = users
            .iter()
            .flat_map(|(rid, tenant, grams)| {
                unpacked(grams).map(move |gram| (*tenant, gram.to_be_bytes(), rid.as_slice()))
            })
            .collect();
        entries.sort_unstable();
        for chunk in entries.chunks(CHUNK) {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO search_grams (tenant_id, gram, rid) ");
            qb.push_values(chunk, |mut b, (tenant, gram, rid)| {
                b.push_bind(*tenant).push_bind(&gram[..]).push_bind(*rid);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().persistent(false).execute(&mut *conn).await?;
        }
        sqlx::query("DELETE FROM search_pending WHERE rid <= $1").bind(last).execute(&mut *conn).await?;
    }
}

/// The users of `search_pending` (live, of the tenants asked about) sharing at least
/// `min_shared` of their own tenant's `wanted` grams: `(tenant, rid, shared)`. The list is short
/// (at most about a thousand users, see [`merge_pending`]), so it is read whole and counted here.
pub(crate) async fn pending_shared(
    conn: &mut sqlx::SqliteConnection,
    wanted: &std::collections::HashMap<TenantId, std::collections::HashSet<Gram>>,
    min_shared: i64,
) -> Result<Vec<(TenantId, Vec<u8>, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.tenant_id, p.rid, p.grams FROM search_pending p \
         JOIN users u ON u.tenant_id = p.tenant_id AND u.rid = p.rid AND u.held_until IS NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut found = Vec::new();
    for row in &rows {
        let tenant: TenantId = row.try_get(0)?;
        let Some(grams) = wanted.get(&tenant) else { continue };
        let packed: Vec<u8> = row.try_get(2)?;
        let shared = unpacked(&packed).filter(|gram| grams.contains(gram)).count();
        let shared = i64::try_from(shared).unwrap_or(i64::MAX);
        if shared >= min_shared && shared > 0 {
            found.push((tenant, row.try_get(1)?, shared));
        }
    }
    Ok(found)
}

impl GramRows for sqlx::PgConnection {
    async fn insert_grams(&mut self, tenant: TenantId, users: &[(&[u8], &[Gram])]) -> Result<(), sqlx::Error> {
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

    async fn replace_grams(&mut self, tenant: TenantId, rid: &[u8], grams: &[Gram]) -> Result<(), sqlx::Error> {
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
    pub async fn candidates(&self, grams: &[Gram], min_shared: usize, cap: usize) -> StoreResult<Vec<(Vec<u8>, i64)>> {
        let (db, tenant) = self.0.parts();
        if grams.is_empty() {
            return Ok(Vec::new());
        }
        let min = i64::try_from(min_shared).unwrap_or(i64::MAX);
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let rows = match db {
            Db::Sqlite(pool) => {
                // One indexed lookup per gram, and the pending list beside it, in one snapshot
                // (a merge between the two would otherwise hide the users it moved).
                let mut tx = pool.begin().await?;
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
                    query = query.bind(gram.to_be_bytes().to_vec());
                }
                let rows = query.bind(min).bind(cap).fetch_all(&mut *tx).await?;
                let mut found: Vec<(Vec<u8>, i64)> = rows
                    .iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect::<Result<_, sqlx::Error>>()?;
                let wanted = std::collections::HashMap::from([(tenant, grams.iter().copied().collect())]);
                let pending = pending_shared(&mut tx, &wanted, min).await?;
                tx.commit().await?;
                found.extend(pending.into_iter().map(|(_, rid, shared)| (rid, shared)));
                found.sort_by(|a, b| (std::cmp::Reverse(a.1), &a.0).cmp(&(std::cmp::Reverse(b.1), &b.0)));
                found.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
                found
            }
            Db::Postgres(pool) => {
                let mut conn = pool.conn_for(tenant).await?;
                // The GIN index finds the users sharing any digest; each one's count is its overlap.
                let mut wanted: Vec<Gram> = grams.to_vec();
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

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    async fn scalar(conn: &mut SqliteConnection, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(conn).await.expect(sql)
    }

    /// SQLite's migration 0029 carries 32-byte grams over as their 8-byte heads (what the vault
    /// now computes), and a deleted user's grams still go with it, by trigger.
    #[tokio::test]
    async fn sqlite_grams_are_cut_to_eight_bytes_and_go_with_their_user() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.expect("connect");
        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut conn).await.expect("pragma");
        let all = sqlx::migrate!("./migrations/sqlite");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = all.migrations.iter().filter(|m| m.version < 29).cloned().collect::<Vec<_>>().into();
        before.run(&mut conn).await.expect("migrations up to 0028");

        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (7, 'acme', 0)")
            .execute(&mut conn)
            .await
            .expect("statement");
        for rid in [[1u8; 16], [2u8; 16]] {
            sqlx::query(
                "INSERT INTO users (rid, tenant_id, token_idx, wrapped_key, record, version, created_at, updated_at) \
                 VALUES ($1, 7, $1, x'00', x'00', 1, 0, 0)",
            )
            .bind(&rid[..])
            .execute(&mut conn)
            .await
            .expect("statement");
        }
        let mut digest = [0xabu8; 32];
        digest[..8].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 1]);
        for (rid, last) in [([1u8; 16], 1u8), ([1u8; 16], 2), ([2u8; 16], 1)] {
            let mut gram = digest;
            gram[31] = last;
            sqlx::query("INSERT INTO search_grams (tenant_id, gram, rid) VALUES (7, $1, $2)")
                .bind(&gram[..])
                .bind(&rid[..])
                .execute(&mut conn)
                .await
                .expect("statement");
        }

        all.run(&mut conn).await.expect("migration 0029");
        let head = crate::search::grams::short(&digest).to_be_bytes().to_vec();
        let carried: Vec<Vec<u8>> = sqlx::query_scalar("SELECT gram FROM search_grams ORDER BY rid")
            .fetch_all(&mut conn)
            .await
            .expect("statement");
        // The first user's two digests differed only past the head: one gram is left of them.
        assert_eq!(carried, [head.clone(), head.clone()]);

        // A user waiting in the pending list (as the first might, after a change) loses those too.
        sqlx::query("INSERT INTO search_pending (rid, tenant_id, grams) VALUES ($1, 7, $2)")
            .bind(&[1u8; 16][..])
            .bind(&head[..])
            .execute(&mut conn)
            .await
            .expect("statement");
        sqlx::query("DELETE FROM users WHERE rid = $1")
            .bind(&[1u8; 16][..])
            .execute(&mut conn)
            .await
            .expect("statement");
        assert_eq!(scalar(&mut conn, "SELECT COUNT(*) FROM search_grams").await, 1);
        assert_eq!(scalar(&mut conn, "SELECT COUNT(*) FROM search_pending").await, 0);
        assert_eq!(
            scalar(&mut conn, "SELECT COUNT(*) FROM search_grams WHERE rid = x'02020202020202020202020202020202'")
                .await,
            1
        );
    }
}
