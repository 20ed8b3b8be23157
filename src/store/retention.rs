//! Erasure of expired records.

use crate::tenants::TenantId;
use std::collections::BTreeMap;

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::audit_chain::ChainWrites;
use super::{Db, ScopedPool, StoreResult, with_pool};

/// Most expired users one sweep erases (the rest go in the next sweep).
const SWEEP_USERS: i64 = 10_000;

/// The users a sweep at `$1` erases: expired, or held past their grace period.
const ERASABLE: &str =
    "((expires_at IS NOT NULL AND expires_at <= $1) OR (held_until IS NOT NULL AND held_until <= $1))";

/// Advisory lock key: one sweeper at a time across every replica sharing a PostgreSQL database.
const SWEEP_LOCK: i64 = 0x6275_6e6b_6572_0001;

/// Expired records erased in one tenant by one sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Users (with everything that cascades from them), including held ones.
    pub users: u64,
    /// Of those, profiles whose grace period after a system deletion ended (`held_until`).
    pub held_users: u64,
    /// App records of users still live (with their versions).
    pub app_records: u64,
    /// Sessions.
    pub sessions: u64,
    /// Shared records.
    pub shared_records: u64,
    /// Format-preserving tokens.
    pub tokens: u64,
    /// Files of users still live (with their tags and content; blobs are queued for removal).
    pub files: u64,
}

/// Deletes every record expired at `now` and writes the events `events` builds from the
/// per-tenant counts, in one transaction. `None` when another replica holds the sweep lock.
/// `erased_tags` gives each tenant's tag for the audit events of its erased users (see
/// `crate::audit::chain`); the expired users of a tenant without one stay for a later sweep.
pub async fn sweep<F, T>(
    db: &Db,
    now: i64,
    erased_tags: T,
    events: F,
) -> StoreResult<Option<BTreeMap<TenantId, Erased>>>
where
    F: FnOnce(&BTreeMap<TenantId, Erased>) -> Vec<AuditRecord>,
    T: Fn(TenantId) -> Option<super::audit_chain::ErasedTag>,
{
    let postgres = matches!(db, Db::Postgres(_));
    with_pool!(db, pool => {
        let mut tx = pool.begin_all().await?;
        if postgres {
            let locked: bool =
                sqlx::query("SELECT pg_try_advisory_xact_lock($1)").bind(SWEEP_LOCK).fetch_one(&mut *tx).await?.try_get(0)?;
            if !locked {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let mut erased: BTreeMap<TenantId, Erased> = BTreeMap::new();
        // At most SWEEP_USERS users a sweep (the rest go in the next), each tenant's only once
        // their audit events could be unlinked (a tenant whose keys cannot be read now, e.g. on
        // a replica whose wrapping key was just replaced, waits for a sweep that can).
        // Profiles held after a system deletion go once their grace period ends, as expired ones.
        let mut expiring: BTreeMap<TenantId, Vec<Vec<u8>>> = BTreeMap::new();
        let mut held: BTreeMap<TenantId, u64> = BTreeMap::new();
        // Locked (PostgreSQL; SQLite's write transaction already excludes every writer): a
        // restore running now either commits first, and the row no longer qualifies below, or
        // waits and finds nothing to restore.
        let lock = if postgres { " FOR UPDATE" } else { "" };
        let select = format!(
            "SELECT tenant_id, rid, held_until IS NOT NULL AND held_until <= $1 FROM users WHERE {ERASABLE} LIMIT $2{lock}"
        );
        for row in sqlx::query(&select)
        .bind(now)
        .bind(SWEEP_USERS)
        .fetch_all(&mut *tx)
        .await?
        {
            let tenant: TenantId = row.try_get(0)?;
            expiring.entry(tenant).or_default().push(row.try_get(1)?);
            if row.try_get::<bool, _>(2)? {
                *held.entry(tenant).or_default() += 1;
            }
        }
        for (tenant, rids) in &expiring {
            let Some(tag) = erased_tags(*tenant) else {
                tracing::warn!(tenant = tenant.get(), "expired users left for a later sweep: the tenant's keys are not at hand");
                continue;
            };
            tx.unlink_subjects(*tenant, rids, &*tag).await?;
            // Deleting a user row destroys its wrapped data key; app data, agreements, sessions,
            // shared records and files cascade from it.
            for chunk in rids.chunks(500) {
                let sql = format!(
                    "DELETE FROM users WHERE tenant_id = $1 AND {} AND rid IN ({})",
                    ERASABLE.replace("$1", "$2"),
                    super::placeholders(3, chunk.len())
                );
                let mut query = sqlx::query(&sql).bind(*tenant).bind(now);
                for rid in chunk {
                    query = query.bind(rid.as_slice());
                }
                erased.entry(*tenant).or_default().users += query.execute(&mut *tx).await?.rows_affected();
            }
            if let Some(count) = held.get(tenant) {
                erased.entry(*tenant).or_default().held_users = *count;
            }
        }
        for row in
            sqlx::query("DELETE FROM userapps WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING tenant_id")
                .bind(now)
                .fetch_all(&mut *tx)
                .await?
        {
            erased.entry(row.try_get(0)?).or_default().app_records += 1;
        }
        for row in sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 RETURNING tenant_id")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
        {
            erased.entry(row.try_get(0)?).or_default().sessions += 1;
        }
        for row in sqlx::query("DELETE FROM shared_records WHERE expires_at <= $1 RETURNING tenant_id")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
        {
            erased.entry(row.try_get(0)?).or_default().shared_records += 1;
        }
        for row in
            sqlx::query("DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING tenant_id")
                .bind(now)
                .fetch_all(&mut *tx)
                .await?
        {
            erased.entry(row.try_get(0)?).or_default().tokens += 1;
        }
        for row in sqlx::query("DELETE FROM files WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING tenant_id")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
        {
            erased.entry(row.try_get(0)?).or_default().files += 1;
        }
        let records = events(&erased);
        insert_audit!(&mut *tx, &records);
        tx.commit().await?;
        Ok(Some(erased))
    })
}

/// Ids of every tenant (the sweeper unlocks their keys before sweeping).
pub async fn tenant_ids(db: &Db) -> StoreResult<Vec<TenantId>> {
    with_pool!(db, pool => {
        let rows = sqlx::query("SELECT id FROM tenants WHERE deleted_at IS NULL ORDER BY id").fetch_all(pool).await?;
        Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
    })
}
