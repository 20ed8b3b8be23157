//! The vault-wide reads and writes of user profiles behind the `System*UserProfiles`
//! operations: one statement over every tenant instead of one round trip per tenant.
//!
//! The only store handle that reaches more than one tenant's users. It is built from a
//! [`VaultWide`] proof, which only the main tenant's administrator acting in the main tenant
//! can obtain; every row it answers carries its tenant, and each tenant's rows are looked up
//! by that tenant's own blind indexes (the caller computes them with each tenant's keys).

use std::collections::BTreeMap;

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::bulk::prefixed;
use super::users::{USER_COLUMNS, UserRow, decode_user_at, index_column, live};
use super::{Db, ScopedPool, StoreError, StoreResult, placeholders, with_pool};
use crate::access::VaultWide;
use crate::crypto::keyring::WrappedMasterKey;
use crate::crypto::{IndexKind, IndexValue};
use crate::search::grams::Gram;
use crate::tenants::TenantId;

/// Pairs (of a tenant and a value) per SQLite statement: two binds each, under its limit.
const SQLITE_PAIRS: usize = 4000;

/// A live (not deleted) tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTenant {
    /// Its id.
    pub id: TenantId,
    /// Its name.
    pub name: String,
}

/// A user row and its tenant.
#[derive(Debug, Clone)]
pub struct TenantUser {
    /// The user's tenant.
    pub tenant: TenantId,
    /// The row.
    pub row: UserRow,
}

impl Db {
    /// The vault-wide profile handle, for the main tenant's administrator only.
    pub fn every_tenant(&self, _: &VaultWide) -> EveryTenant<'_> {
        EveryTenant(self)
    }
}

/// Profiles of every tenant.
#[derive(Debug, Clone, Copy)]
pub struct EveryTenant<'a>(&'a Db);

impl EveryTenant<'_> {
    /// Every tenant not deleted, by id.
    pub async fn tenants(&self) -> StoreResult<Vec<LiveTenant>> {
        with_pool!(self.0, pool => {
            let rows = sqlx::query("SELECT id, name FROM tenants WHERE deleted_at IS NULL ORDER BY id")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| Ok(LiveTenant { id: row.try_get(0)?, name: row.try_get(1)? }))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// The stored master keys of `tenants` (those whose keys this process has not unlocked
    /// yet), oldest first per tenant, in one statement.
    pub async fn master_keys(&self, tenants: &[TenantId]) -> StoreResult<BTreeMap<TenantId, Vec<WrappedMasterKey>>> {
        let mut out: BTreeMap<TenantId, Vec<WrappedMasterKey>> = BTreeMap::new();
        for chunk in tenants.chunks(SQLITE_PAIRS) {
            let sql = format!(
                "SELECT tenant_id, version, wrapped, retired_at IS NOT NULL FROM tenant_keys WHERE tenant_id IN ({}) \
                 ORDER BY tenant_id, version",
                placeholders(1, chunk.len())
            );
            let rows: Vec<(TenantId, WrappedMasterKey)> = with_pool!(self.0, pool => {
                let mut tx = pool.begin_all().await?;
                let mut query = sqlx::query(&sql);
                for tenant in chunk {
                    query = query.bind(*tenant);
                }
                let rows = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            row.try_get(0)?,
                            WrappedMasterKey {
                                version: u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
                                wrapped: row.try_get(2)?,
                                retired: row.try_get(3)?,
                            },
                        ))
                    })
                    .collect::<Result<_, sqlx::Error>>()?
            });
            for (tenant, key) in rows {
                out.entry(tenant).or_default().push(key);
            }
        }
        Ok(out)
    }

    /// Live users whose `kind` index in their tenant is the value given for that tenant:
    /// `wanted` holds one `(tenant, index value)` pair per tenant. One statement (on SQLite,
    /// one per few thousand tenants).
    pub async fn find(
        &self,
        kind: IndexKind,
        wanted: &[(TenantId, IndexValue)],
        now: i64,
    ) -> StoreResult<Vec<TenantUser>> {
        let pairs: Vec<(TenantId, &[u8])> = wanted.iter().map(|(t, v)| (*t, &v[..])).collect();
        self.by_pairs(index_column(kind), &pairs, now).await
    }

    /// Live users by `(tenant, rid)`.
    pub async fn users_by_rid(&self, wanted: &[(TenantId, Vec<u8>)], now: i64) -> StoreResult<Vec<TenantUser>> {
        let pairs: Vec<(TenantId, &[u8])> = wanted.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        self.by_pairs("rid", &pairs, now).await
    }

    async fn by_pairs(&self, column: &str, pairs: &[(TenantId, &[u8])], now: i64) -> StoreResult<Vec<TenantUser>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        match self.0 {
            Db::Postgres(pool) => {
                let sql = format!(
                    "SELECT u.tenant_id, {} FROM users u \
                     JOIN unnest($1::bigint[], $2::bytea[]) AS w(t, v) ON u.tenant_id = w.t AND u.{column} = w.v \
                     WHERE {}",
                    prefixed("u", USER_COLUMNS),
                    live("u.", "$3")
                );
                let tenants: Vec<i64> = pairs.iter().map(|(t, _)| t.get()).collect();
                let values: Vec<&[u8]> = pairs.iter().map(|(_, v)| *v).collect();
                let mut tx = pool.begin_all().await?;
                let rows = sqlx::query(&sql).bind(tenants).bind(values).bind(now).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                for row in &rows {
                    out.push(TenantUser { tenant: row.try_get(0)?, row: decode_user_at(row, 1)? });
                }
            }
            Db::Sqlite(pool) => {
                for chunk in pairs.chunks(SQLITE_PAIRS) {
                    let values = (0..chunk.len())
                        .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "SELECT tenant_id, {USER_COLUMNS} FROM users WHERE (tenant_id, {column}) IN (VALUES {values}) AND {}",
                        live("", "$1")
                    );
                    let mut query = sqlx::query(&sql).bind(now);
                    for (tenant, value) in chunk {
                        query = query.bind(*tenant).bind(*value);
                    }
                    for row in &query.fetch_all(pool).await? {
                        out.push(TenantUser { tenant: row.try_get(0)?, row: decode_user_at(row, 1)? });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Search candidates over every tenant: users holding at least `min_shared` of their own
    /// tenant's `grams`, most shared first, at most `cap`: `(tenant, rid, shared)`.
    pub async fn candidates(
        &self,
        grams: &[(TenantId, Vec<Gram>)],
        min_shared: usize,
        cap: usize,
    ) -> StoreResult<Vec<(TenantId, Vec<u8>, i64)>> {
        let min = i64::try_from(min_shared).unwrap_or(i64::MAX);
        let cap_rows = i64::try_from(cap).unwrap_or(i64::MAX);
        let mut found: Vec<(TenantId, Vec<u8>, i64)> = Vec::new();
        match self.0 {
            Db::Postgres(pool) => {
                let mut tenants = Vec::new();
                let mut shorts = Vec::new();
                for (tenant, digests) in grams {
                    for digest in digests {
                        tenants.push(tenant.get());
                        shorts.push(*digest);
                    }
                }
                if shorts.is_empty() {
                    return Ok(Vec::new());
                }
                let mut any = shorts.clone();
                any.sort_unstable();
                any.dedup();
                // The GIN index finds the users sharing any digest of any tenant; each one's
                // count is its overlap with its own tenant's digests only.
                let mut tx = pool.begin_all().await?;
                let rows = sqlx::query(
                    "SELECT g.tenant_id, g.rid, s.shared FROM user_grams g \
                     JOIN users u ON u.tenant_id = g.tenant_id AND u.rid = g.rid AND u.held_until IS NULL \
                     CROSS JOIN LATERAL (SELECT COUNT(*) AS shared FROM unnest(g.grams) AS x \
                        JOIN unnest($1::bigint[], $2::bigint[]) AS q(t, gram) ON q.t = g.tenant_id AND q.gram = x) s \
                     WHERE g.grams && $3 AND s.shared >= $4 \
                     ORDER BY s.shared DESC, g.tenant_id, g.rid LIMIT $5",
                )
                .bind(tenants)
                .bind(shorts)
                .bind(any)
                .bind(min)
                .bind(cap_rows)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                for row in &rows {
                    found.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
                }
            }
            Db::Sqlite(pool) => {
                // The index and the pending list in one snapshot (see `super::search`).
                let mut tx = pool.begin().await?;
                // A tenant's digests stay in one statement, so each user's count is whole.
                // SQLite keeps a gram as an 8-byte blob (see `super::search`).
                let mut batch: Vec<(TenantId, [u8; 8])> = Vec::new();
                let mut batches = Vec::new();
                for (tenant, digests) in grams {
                    if !batch.is_empty() && batch.len() + digests.len() > SQLITE_PAIRS {
                        batches.push(std::mem::take(&mut batch));
                    }
                    batch.extend(digests.iter().map(|d| (*tenant, d.to_be_bytes())));
                }
                batches.push(batch);
                for batch in batches.iter().filter(|b| !b.is_empty()) {
                    let n = batch.len();
                    let values =
                        (0..n).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(", ");
                    let sql = format!(
                        "SELECT g.tenant_id, g.rid, COUNT(*) AS shared FROM search_grams g \
                         JOIN users u ON u.tenant_id = g.tenant_id AND u.rid = g.rid AND u.held_until IS NULL \
                         WHERE (g.tenant_id, g.gram) IN (VALUES {values}) \
                         GROUP BY g.tenant_id, g.rid HAVING COUNT(*) >= ${} ORDER BY shared DESC, g.tenant_id, g.rid LIMIT ${}",
                        2 * n + 1,
                        2 * n + 2
                    );
                    let mut query = sqlx::query(&sql);
                    for (tenant, gram) in batch {
                        query = query.bind(*tenant).bind(gram.to_vec());
                    }
                    for row in &query.bind(min).bind(cap_rows).fetch_all(&mut *tx).await? {
                        found.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
                    }
                }
                let wanted =
                    grams.iter().map(|(tenant, digests)| (*tenant, digests.iter().copied().collect())).collect();
                found.extend(super::search::pending_shared(&mut tx, &wanted, min).await?);
                tx.commit().await?;
                found.sort_by(|a, b| (std::cmp::Reverse(a.2), a.0, &a.1).cmp(&(std::cmp::Reverse(b.2), b.0, &b.1)));
                found.truncate(cap);
            }
        }
        Ok(found)
    }

    /// Holds live users (a system deletion): each becomes absent to every read until `until`
    /// (unix seconds), when the retention sweeper erases it, unless restored before. Their own
    /// access tokens go now. The events `events` builds from the users actually held (others
    /// may have gone meanwhile) are written in the same transaction.
    pub async fn hold<F>(
        &self,
        users: &[(TenantId, Vec<u8>)],
        until: i64,
        now_ms: i64,
        events: F,
    ) -> StoreResult<Vec<(TenantId, Vec<u8>)>>
    where
        F: FnOnce(&[(TenantId, Vec<u8>)]) -> Vec<AuditRecord>,
    {
        let mut by_tenant: BTreeMap<TenantId, Vec<&[u8]>> = BTreeMap::new();
        for (tenant, rid) in users {
            by_tenant.entry(*tenant).or_default().push(rid);
        }
        with_pool!(self.0, pool => {
            let mut tx = pool.begin_all().await?;
            let mut held = Vec::new();
            for (tenant, rids) in &by_tenant {
                for chunk in rids.chunks(500) {
                    let sql = format!(
                        "UPDATE users SET held_until = $2 WHERE tenant_id = $1 AND held_until IS NULL AND rid IN ({}) RETURNING rid",
                        placeholders(3, chunk.len())
                    );
                    let mut query = sqlx::query(&sql).bind(*tenant).bind(until);
                    for rid in chunk {
                        query = query.bind(*rid);
                    }
                    let mut rids_held = Vec::new();
                    for row in query.fetch_all(&mut *tx).await? {
                        rids_held.push(row.try_get::<Vec<u8>, _>(0)?);
                    }
                    if rids_held.is_empty() {
                        continue;
                    }
                    let sql = format!(
                        "DELETE FROM access_tokens WHERE tenant_id = $1 AND user_rid IN ({})",
                        placeholders(2, rids_held.len())
                    );
                    let mut query = sqlx::query(&sql).bind(*tenant);
                    for rid in &rids_held {
                        query = query.bind(rid.as_slice());
                    }
                    if query.execute(&mut *tx).await?.rows_affected() > 0 {
                        sqlx::query(super::tenants::RECORD_CHANGE)
                            .bind(super::tenants::Change::TOKENS)
                            .bind(*tenant)
                            .bind(now_ms)
                            .execute(&mut *tx)
                            .await?;
                    }
                    held.extend(rids_held.into_iter().map(|rid| (*tenant, rid)));
                }
            }
            let records = events(&held);
            insert_audit!(&mut *tx, &records);
            tx.commit().await?;
            Ok(held)
        })
    }

    /// Restores the held user of `tenant` whose token index is `token_idx` and whose grace
    /// period has not ended at `now`: it is live again, as it was. `build` sees the row (to
    /// open it) and gives the events written with the change; its error comes back untouched.
    /// `None` when there is no such user.
    pub async fn restore<E, F>(
        &self,
        tenant: TenantId,
        token_idx: &IndexValue,
        now: i64,
        build: F,
    ) -> StoreResult<Option<Result<UserRow, E>>>
    where
        F: FnOnce(&UserRow) -> Result<Vec<AuditRecord>, E>,
    {
        let lock = if matches!(self.0, Db::Postgres(_)) { " FOR UPDATE" } else { "" };
        let select = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND token_idx = $2 AND held_until > $3 \
             AND (expires_at IS NULL OR expires_at > $3){lock}"
        );
        with_pool!(self.0, pool => {
            let mut tx = pool.begin_all().await?;
            let row = sqlx::query(&select).bind(tenant).bind(&token_idx[..]).bind(now).fetch_optional(&mut *tx).await?;
            let Some(row) = row.as_ref().map(|r| decode_user_at(r, 0)).transpose()? else {
                return Ok(None);
            };
            let records = match build(&row) {
                Ok(records) => records,
                Err(err) => return Ok(Some(Err(err))),
            };
            sqlx::query("UPDATE users SET held_until = NULL WHERE tenant_id = $1 AND rid = $2")
                .bind(tenant)
                .bind(row.rid.as_slice())
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &records);
            tx.commit().await?;
            Ok(Some(Ok(row)))
        })
    }
}
