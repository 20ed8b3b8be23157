//! The audit chain's storage: positions and links of chained events, each tenant's head, and
//! the clearing of an erased subject's links (see `crate::audit::chain`).
//!
//! An event row is written once: its insert queues it in `audit_unchained`, and the chainer
//! records its position and link in `audit_links` and takes it off the queue (migration 0031).
//! Only subject links (`user_ref`, `subject_rid`, `link_mac`) are ever updated in place.

use std::collections::HashSet;

use sqlx::Row;

use super::{Db, ScopedPool, StoreResult, TenantScope, placeholders, with_pool};
use crate::tenants::TenantId;

/// An event with everything the chain covers and its links.
#[derive(Debug, Clone)]
pub struct ChainRow {
    /// Row id (commit order is not id order; the chain's position is `chain_seq`).
    pub id: i64,
    /// Public identifier.
    pub uuid: String,
    /// Tenant.
    pub tenant: i64,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Principal kind.
    pub principal_kind: String,
    /// Principal id.
    pub principal_id: String,
    /// Operation.
    pub operation: String,
    /// Category.
    pub event_type: String,
    /// `ok` / `error`.
    pub result: String,
    /// HTTP status.
    pub http_status: i64,
    /// Blind index of the subject's token (cleared by erasure).
    pub user_ref: Option<Vec<u8>>,
    /// The subject's record id (cleared by erasure).
    pub subject_rid: Option<Vec<u8>>,
    /// `user` or `tenant`.
    pub key_scope: String,
    /// Sealed details.
    pub payload: Vec<u8>,
    /// Position in the chain (0 while not chained).
    pub chain_seq: i64,
    /// The event's link.
    pub chain_mac: Option<Vec<u8>>,
    /// MAC of the subject links, or of their erasure.
    pub link_mac: Option<Vec<u8>>,
}

/// The event's own columns (of `audit_events a`), then its position and link: in the order
/// [`decode`] reads them.
macro_rules! columns {
    ($chain:literal) => {
        concat!(
            "a.id, a.uuid, a.tenant_id, a.created_ms, a.principal_kind, a.principal_id, a.operation, a.event_type, \
             a.result, a.http_status, a.user_ref, a.subject_rid, a.key_scope, a.payload, a.link_mac, ",
            $chain
        )
    };
}

fn decode<R: Row>(row: &R) -> Result<ChainRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ChainRow {
        id: row.try_get(0)?,
        uuid: row.try_get(1)?,
        tenant: row.try_get(2)?,
        created_ms: row.try_get(3)?,
        principal_kind: row.try_get(4)?,
        principal_id: row.try_get(5)?,
        operation: row.try_get(6)?,
        event_type: row.try_get(7)?,
        result: row.try_get(8)?,
        http_status: row.try_get(9)?,
        user_ref: row.try_get(10)?,
        subject_rid: row.try_get(11)?,
        key_scope: row.try_get(12)?,
        payload: row.try_get(13)?,
        link_mac: row.try_get(14)?,
        chain_seq: row.try_get(15)?,
        chain_mac: row.try_get(16)?,
    })
}

/// A tenant's chain head: the last position and its link (0 and no link for an empty chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Last position.
    pub seq: i64,
    /// Its link.
    pub link: Vec<u8>,
}

/// What the chainer decided for one pending event.
#[derive(Debug, Clone)]
pub struct Chained {
    /// Row id.
    pub id: i64,
    /// Its position.
    pub seq: i64,
    /// Its link.
    pub mac: Vec<u8>,
    /// Its subject no longer exists: clear the links and store this erased tag.
    pub erased: Option<Vec<u8>>,
    /// Its subject links have no MAC yet (events older than the chain): store this one.
    pub link: Option<Vec<u8>>,
}

impl Chained {
    /// True when the event's own row changes too (its subject links), not only its link.
    fn relinks(&self) -> bool {
        self.erased.is_some() || self.link.is_some()
    }
}

/// Marks an erased subject's audit events: the tag for an event's uuid (see
/// `crate::audit::chain::erased_tag`).
pub type ErasedTag = Box<dyn Fn(&str) -> [u8; 32] + Send + Sync>;

/// Most events chained per transaction.
pub const BATCH: i64 = 1000;

/// Tenants with events not chained yet (a deleted tenant's wait for its purge).
pub async fn tenants_pending(db: &Db) -> StoreResult<Vec<TenantId>> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_all().await?;
        let rows = sqlx::query("SELECT DISTINCT tenant_id FROM audit_unchained \
             WHERE tenant_id IN (SELECT id FROM tenants WHERE deleted_at IS NULL)")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
    })
}

/// The chain of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct AuditChain<'a>(pub(super) TenantScope<'a>);

impl AuditChain<'_> {
    /// The stored head.
    pub async fn head(&self) -> StoreResult<Head> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT seq, head FROM audit_chain WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(match row {
                Some(row) => Head { seq: row.try_get(0)?, link: row.try_get(1)? },
                None => Head { seq: 0, link: crate::audit::chain::GENESIS.to_vec() },
            })
        })
    }

    /// Events not chained yet.
    pub async fn pending(&self) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT COUNT(*) FROM audit_unchained WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *conn)
                .await?;
            Ok(row.try_get(0)?)
        })
    }

    /// Chained events from position `from`, in order, at most `limit`. A position whose event
    /// is gone is left out (the walk names it missing).
    pub async fn page(&self, from: i64, limit: i64) -> StoreResult<Vec<ChainRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            columns!("l.chain_seq, l.chain_mac"),
            " FROM audit_links l JOIN audit_events a ON a.tenant_id = l.tenant_id AND a.id = l.event_id \
             WHERE l.tenant_id = $1 AND l.chain_seq >= $2 ORDER BY l.chain_seq LIMIT $3"
        );
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(SQL).bind(tenant).bind(from).bind(limit).fetch_all(&mut *conn).await?;
            Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
        })
    }

    /// The link stored at position `seq`, if an event holds it.
    pub async fn link_at(&self, seq: i64) -> StoreResult<Option<Vec<u8>>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT l.chain_mac FROM audit_links l JOIN audit_events a ON a.tenant_id = l.tenant_id \
                 AND a.id = l.event_id WHERE l.tenant_id = $1 AND l.chain_seq = $2",
            )
            .bind(tenant)
            .bind(seq)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(|row| row.try_get(0)).transpose()?)
        })
    }

    /// Chains up to [`BATCH`] pending events, oldest first: locks the head, lets `plan` link
    /// them (given the head, the events and which of their subjects still exist), stores the
    /// links and the new head. Returns how many were chained; `None` when `wait` is false and
    /// another transaction (on any replica) holds the head.
    pub async fn extend<F>(&self, now_ms: i64, wait: bool, plan: F) -> StoreResult<Option<usize>>
    where
        F: FnOnce(&Head, &[ChainRow], &HashSet<Vec<u8>>) -> Vec<Chained>,
    {
        let (db, tenant) = self.0.parts();
        let lock = match (db, wait) {
            (Db::Sqlite(_), _) => "",
            (Db::Postgres(_), true) => " FOR UPDATE",
            (Db::Postgres(_), false) => " FOR UPDATE SKIP LOCKED",
        };
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query(
                "INSERT INTO audit_chain (tenant_id, seq, head, updated_ms) VALUES ($1, 0, $2, $3) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(&crate::audit::chain::GENESIS[..])
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            let sql = format!("SELECT seq, head FROM audit_chain WHERE tenant_id = $1{lock}");
            let Some(row) = sqlx::query(&sql).bind(tenant).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let head = Head { seq: row.try_get(0)?, link: row.try_get(1)? };
            // The queue's oldest events.
            let queued: Vec<i64> = sqlx::query_scalar(
                "SELECT event_id FROM audit_unchained WHERE tenant_id = $1 ORDER BY event_id LIMIT $2",
            )
            .bind(tenant)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if queued.is_empty() {
                tx.rollback().await?;
                return Ok(Some(0));
            }
            // PostgreSQL: the events are locked before their users (below), in the order an
            // erasure locks them (its events, then its user row), so the two cannot deadlock.
            let rows_lock = if matches!(db, Db::Postgres(_)) { " FOR UPDATE" } else { "" };
            let sql = format!(
                concat!(
                    "SELECT ",
                    columns!("CAST(0 AS BIGINT), NULL"),
                    " FROM audit_events a WHERE a.tenant_id = $1 AND a.id IN ({}) ORDER BY a.id{}"
                ),
                placeholders(2, queued.len()),
                rows_lock
            );
            // Not prepared: its text changes with the number of events.
            let mut query = sqlx::query(&sql).persistent(false).bind(tenant);
            for id in &queued {
                query = query.bind(*id);
            }
            let rows: Vec<ChainRow> =
                query.fetch_all(&mut *tx).await?.iter().map(decode).collect::<Result<_, _>>()?;
            if rows.len() < queued.len() {
                // Queued events whose rows are gone (removed by hand before they were chained,
                // which nothing else could tell) leave the queue, or they would hold it up.
                let found: HashSet<i64> = rows.iter().map(|r| r.id).collect();
                let gone: Vec<i64> = queued.into_iter().filter(|id| !found.contains(id)).collect();
                tracing::warn!(tenant = tenant.get(), events = gone.len(), "queued audit events no longer exist");
                tx.dequeue(tenant, &gone).await?;
            }
            if rows.is_empty() {
                tx.commit().await?;
                return Ok(Some(0));
            }
            let rids: Vec<&[u8]> = rows.iter().filter_map(|r| r.subject_rid.as_deref()).collect();
            let mut live = HashSet::new();
            if !rids.is_empty() {
                // PostgreSQL: a user being erased right now is waited for (its deletion holds
                // the row), so an event that committed after the erasure cleared the user's
                // links is not chained as if the user lived on.
                let share = if matches!(db, Db::Postgres(_)) { " FOR KEY SHARE" } else { "" };
                let sql = format!(
                    "SELECT rid FROM users WHERE tenant_id = $1 AND rid IN ({}){share}",
                    placeholders(2, rids.len())
                );
                let mut query = sqlx::query(&sql).bind(tenant);
                for rid in &rids {
                    query = query.bind(*rid);
                }
                for row in query.fetch_all(&mut *tx).await? {
                    live.insert(row.try_get::<Vec<u8>, _>(0)?);
                }
            }
            let chained = plan(&head, &rows, &live);
            let Some(last) = chained.last() else {
                tx.rollback().await?;
                return Ok(Some(0));
            };
            let (seq, link) = (last.seq, last.mac.clone());
            tx.store_links(tenant, &chained).await?;
            sqlx::query("UPDATE audit_chain SET seq = $1, head = $2, updated_ms = $3 WHERE tenant_id = $4")
                .bind(seq)
                .bind(&link)
                .bind(now_ms)
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(chained.len()))
        })
    }
}

/// Events cleared per statement when a subject is erased.
const UNLINK_CHUNK: i64 = 1000;

/// The chain's writes on an open connection (inside the caller's transaction), one statement
/// per batch on PostgreSQL.
pub(crate) trait ChainWrites {
    /// Stores the positions and links the chainer decided and takes their events off the queue.
    async fn store_links(&mut self, tenant: TenantId, chained: &[Chained]) -> Result<(), sqlx::Error>;

    /// Takes the events `ids` off the queue without chaining them.
    async fn dequeue(&mut self, tenant: TenantId, ids: &[i64]) -> Result<(), sqlx::Error>;

    /// Clears the links of every event of the users `rids` (call before their rows are
    /// deleted, in the same transaction) and marks each event erased with `tag(uuid)`:
    /// afterwards nothing in the trail names them.
    async fn unlink_subjects(
        &mut self,
        tenant: TenantId,
        rids: &[Vec<u8>],
        tag: &(dyn Fn(&str) -> [u8; 32] + Sync),
    ) -> Result<(), sqlx::Error>;
}

/// The first [`UNLINK_CHUNK`] events still linked to the user `rid`.
const LINKED_EVENTS: &str = "WITH u AS (SELECT token_idx FROM users WHERE tenant_id = $1 AND rid = $2) \
     SELECT uuid FROM audit_events WHERE tenant_id = $1 AND user_ref IS NOT NULL \
     AND substr(user_ref, 1, 8) = (SELECT substr(token_idx, 1, 8) FROM u) \
     AND user_ref = (SELECT token_idx FROM u) LIMIT $3";

impl ChainWrites for sqlx::PgConnection {
    async fn store_links(&mut self, tenant: TenantId, chained: &[Chained]) -> Result<(), sqlx::Error> {
        let ids: Vec<i64> = chained.iter().map(|c| c.id).collect();
        sqlx::query(
            "WITH l AS (INSERT INTO audit_links (tenant_id, chain_seq, event_id, chain_mac) \
             SELECT $1, v.seq, v.id, v.mac FROM UNNEST($2::int8[], $3::int8[], $4::bytea[]) AS v (id, seq, mac)) \
             DELETE FROM audit_unchained WHERE tenant_id = $1 AND event_id = ANY($2)",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(chained.iter().map(|c| c.seq).collect::<Vec<_>>())
        .bind(chained.iter().map(|c| c.mac.as_slice()).collect::<Vec<_>>())
        .execute(&mut *self)
        .await?;
        let relinked: Vec<&Chained> = chained.iter().filter(|c| c.relinks()).collect();
        if relinked.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE audit_events a SET \
             user_ref = CASE WHEN v.erased IS NULL THEN a.user_ref ELSE NULL END, \
             subject_rid = CASE WHEN v.erased IS NULL THEN a.subject_rid ELSE NULL END, \
             link_mac = COALESCE(v.erased, a.link_mac, v.link) \
             FROM UNNEST($2::int8[], $3::bytea[], $4::bytea[]) AS v (id, erased, link) \
             WHERE a.tenant_id = $1 AND a.id = v.id",
        )
        .bind(tenant)
        .bind(relinked.iter().map(|c| c.id).collect::<Vec<_>>())
        .bind(relinked.iter().map(|c| c.erased.as_deref()).collect::<Vec<_>>())
        .bind(relinked.iter().map(|c| c.link.as_deref()).collect::<Vec<_>>())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn dequeue(&mut self, tenant: TenantId, ids: &[i64]) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM audit_unchained WHERE tenant_id = $1 AND event_id = ANY($2)")
            .bind(tenant)
            .bind(ids)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn unlink_subjects(
        &mut self,
        tenant: TenantId,
        rids: &[Vec<u8>],
        tag: &(dyn Fn(&str) -> [u8; 32] + Sync),
    ) -> Result<(), sqlx::Error> {
        for rid in rids {
            loop {
                let uuids: Vec<String> = sqlx::query_scalar(LINKED_EVENTS)
                    .bind(tenant)
                    .bind(rid.as_slice())
                    .bind(UNLINK_CHUNK)
                    .fetch_all(&mut *self)
                    .await?;
                if uuids.is_empty() {
                    break;
                }
                let tags: Vec<Vec<u8>> = uuids.iter().map(|uuid| tag(uuid).to_vec()).collect();
                sqlx::query(
                    "UPDATE audit_events a SET user_ref = NULL, subject_rid = NULL, link_mac = v.tag \
                     FROM UNNEST($2::text[], $3::bytea[]) AS v (uuid, tag) WHERE a.tenant_id = $1 AND a.uuid = v.uuid",
                )
                .bind(tenant)
                .bind(&uuids)
                .bind(&tags)
                .execute(&mut *self)
                .await?;
            }
        }
        Ok(())
    }
}

impl ChainWrites for sqlx::SqliteConnection {
    async fn store_links(&mut self, tenant: TenantId, chained: &[Chained]) -> Result<(), sqlx::Error> {
        // In-process: prepared statements per event cost no round trips. A trigger takes each
        // event off the queue as its link goes in (migration 0031).
        for item in chained {
            sqlx::query("INSERT INTO audit_links (tenant_id, chain_seq, event_id, chain_mac) VALUES ($1, $2, $3, $4)")
                .bind(tenant)
                .bind(item.seq)
                .bind(item.id)
                .bind(&item.mac)
                .execute(&mut *self)
                .await?;
            if item.relinks() {
                sqlx::query(
                    "UPDATE audit_events SET \
                     user_ref = CASE WHEN $1 IS NULL THEN user_ref ELSE NULL END, \
                     subject_rid = CASE WHEN $1 IS NULL THEN subject_rid ELSE NULL END, \
                     link_mac = COALESCE($1, link_mac, $2) \
                     WHERE tenant_id = $3 AND id = $4",
                )
                .bind(item.erased.as_deref())
                .bind(item.link.as_deref())
                .bind(tenant)
                .bind(item.id)
                .execute(&mut *self)
                .await?;
            }
        }
        Ok(())
    }

    async fn dequeue(&mut self, tenant: TenantId, ids: &[i64]) -> Result<(), sqlx::Error> {
        for id in ids {
            sqlx::query("DELETE FROM audit_unchained WHERE tenant_id = $1 AND event_id = $2")
                .bind(tenant)
                .bind(*id)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    async fn unlink_subjects(
        &mut self,
        tenant: TenantId,
        rids: &[Vec<u8>],
        tag: &(dyn Fn(&str) -> [u8; 32] + Sync),
    ) -> Result<(), sqlx::Error> {
        for rid in rids {
            loop {
                let uuids: Vec<String> = sqlx::query_scalar(LINKED_EVENTS)
                    .bind(tenant)
                    .bind(rid.as_slice())
                    .bind(UNLINK_CHUNK)
                    .fetch_all(&mut *self)
                    .await?;
                if uuids.is_empty() {
                    break;
                }
                for uuid in &uuids {
                    sqlx::query(
                        "UPDATE audit_events SET user_ref = NULL, subject_rid = NULL, link_mac = $1 \
                         WHERE tenant_id = $2 AND uuid = $3",
                    )
                    .bind(&tag(uuid)[..])
                    .bind(tenant)
                    .bind(uuid.as_str())
                    .execute(&mut *self)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
