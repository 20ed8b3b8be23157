//! Audit events: append-only rows whose details are sealed (see `crate::audit`).

use std::sync::LazyLock;

use sqlx::Row;

use super::{Db, ScopedPool, StoreResult, TenantScope, with_pool};
use crate::tenants::TenantId;

/// One audit event as stored. Only non-identifying facts are in clear; `payload` is sealed.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Public identifier (`auditeventuuid`).
    pub uuid: String,
    /// Tenant of the request.
    pub tenant: TenantId,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// `root`, later `tenant`, `role`, `user`.
    pub principal_kind: &'static str,
    /// Access token id (never the token).
    pub principal_id: String,
    /// Operation name, e.g. `UserGet`.
    pub operation: &'static str,
    /// Coarse category: read, create, update, delete, system.
    pub event_type: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
    /// HTTP status of the answer.
    pub http_status: i64,
    /// Blind index of the concerned user's token.
    pub user_ref: Option<Vec<u8>>,
    /// Record id of the concerned user (to find the key that seals the payload).
    pub subject_rid: Option<Vec<u8>>,
    /// `user` when sealed under the user's data key, `tenant` otherwise.
    pub key_scope: &'static str,
    /// Sealed JSON details.
    pub payload: Vec<u8>,
    /// MAC binding the event to its subject (see `crate::audit::chain`).
    pub link_mac: Option<Vec<u8>>,
}

/// Inserts audit records on an executor (a transaction); expands for either backend.
macro_rules! insert {
    ($exec:expr, $records:expr) => {{
        $crate::store::audit::AuditRows::insert_audit($exec, $records).await?;
    }};
}
pub(crate) use insert;

/// The events of one user, in the tenant `$1`, whose token's blind index is `$2`. They are
/// found through the index on its first 8 bytes (`audit_events_user_prefix`), and the whole value
/// is compared too, so users who share a prefix do not see each other's events.
pub const OF_USER: &str = "tenant_id = $1 AND substr(user_ref, 1, 8) = substr($2, 1, 8) AND user_ref = $2";

pub(crate) const INSERT_COLUMNS: &str = "INSERT INTO audit_events (uuid, tenant_id, created_ms, principal_kind, principal_id, \
     operation, event_type, result, http_status, user_ref, subject_rid, key_scope, payload, link_mac) ";

/// PostgreSQL: appended to an insert of events (`{INSERT_COLUMNS} SELECT ...`), which then goes
/// in a `WITH` clause, so that [`queue_inserted`] queues every inserted event for the chain in
/// the same statement (migration 0031).
pub(crate) const RETURNING_KEYS: &str = " RETURNING tenant_id, id";

/// PostgreSQL: queues for the chain the events that the `WITH` clause `cte` inserted.
pub(crate) fn queue_inserted(cte: &str) -> String {
    format!("INSERT INTO audit_unchained (tenant_id, event_id) SELECT tenant_id, id FROM {cte}")
}

/// Appends audit rows on an open connection (inside the caller's transaction). Each backend
/// uses one statement text whatever the number of rows, so it is prepared once per connection:
/// a multi-row `VALUES` list would be a new statement, parsed and planned, for every batch size.
pub(crate) trait AuditRows {
    /// Inserts `records`.
    async fn insert_audit(&mut self, records: &[AuditRecord]) -> Result<(), sqlx::Error>;
}

impl AuditRows for sqlx::PgConnection {
    async fn insert_audit(&mut self, records: &[AuditRecord]) -> Result<(), sqlx::Error> {
        if records.is_empty() {
            return Ok(());
        }
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH e AS ({INSERT_COLUMNS} SELECT {PG_COLUMNS} FROM {}{RETURNING_KEYS}) {}",
                pg_unnest(1),
                queue_inserted("e")
            )
        });
        let records: Vec<&AuditRecord> = records.iter().collect();
        PgColumns::of(&records).bind(sqlx::query(&SQL)).execute(self).await?;
        Ok(())
    }
}

/// The selected columns of [`pg_unnest`], in [`INSERT_COLUMNS`] order.
pub(crate) const PG_COLUMNS: &str = "e.uuid, e.tenant_id, e.created_ms, e.principal_kind, e.principal_id, \
     e.operation, e.event_type, e.result, e.http_status, e.user_ref, e.subject_rid, e.key_scope, e.payload, e.link_mac";

/// `UNNEST(...) AS e (...)` over 14 array parameters from `$first`, as [`PgColumns::bind`]
/// binds them (PostgreSQL only).
pub(crate) fn pg_unnest(first: usize) -> String {
    let types = [
        "text", "int8", "int8", "text", "text", "text", "text", "text", "int8", "bytea", "bytea", "text", "bytea",
        "bytea",
    ];
    let arrays: Vec<String> = (first..).zip(types).map(|(n, t)| format!("${n}::{t}[]")).collect();
    format!(
        "UNNEST({}) AS e (uuid, tenant_id, created_ms, principal_kind, principal_id, operation, event_type, \
         result, http_status, user_ref, subject_rid, key_scope, payload, link_mac)",
        arrays.join(", ")
    )
}

/// Audit records as 14 column arrays, for [`pg_unnest`].
pub(crate) struct PgColumns<'a> {
    texts: [Vec<&'a str>; 7],
    numbers: [Vec<i64>; 3],
    refs: [Vec<Option<&'a [u8]>>; 3],
    payloads: Vec<&'a [u8]>,
}

impl<'a> PgColumns<'a> {
    /// Splits `records` into columns.
    pub(crate) fn of(records: &[&'a AuditRecord]) -> PgColumns<'a> {
        let text = |f: fn(&'a AuditRecord) -> &'a str| records.iter().map(|r| f(r)).collect::<Vec<_>>();
        let number = |f: fn(&AuditRecord) -> i64| records.iter().map(|r| f(r)).collect::<Vec<_>>();
        PgColumns {
            texts: [
                text(|r| &r.uuid),
                text(|r| r.principal_kind),
                text(|r| &r.principal_id),
                text(|r| r.operation),
                text(|r| r.event_type),
                text(|r| r.result),
                text(|r| r.key_scope),
            ],
            numbers: [number(|r| r.tenant.get()), number(|r| r.created_ms), number(|r| r.http_status)],
            refs: [
                records.iter().map(|r| r.user_ref.as_deref()).collect(),
                records.iter().map(|r| r.subject_rid.as_deref()).collect(),
                records.iter().map(|r| r.link_mac.as_deref()).collect(),
            ],
            payloads: records.iter().map(|r| r.payload.as_slice()).collect(),
        }
    }

    /// Binds the 14 arrays, in [`pg_unnest`] order, after the query's earlier parameters.
    pub(crate) fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        let [uuid, kind, principal, operation, event_type, result, scope] = self.texts;
        let [tenant, created, status] = self.numbers;
        let [user_ref, subject_rid, link_mac] = self.refs;
        query
            .bind(uuid)
            .bind(tenant)
            .bind(created)
            .bind(kind)
            .bind(principal)
            .bind(operation)
            .bind(event_type)
            .bind(result)
            .bind(status)
            .bind(user_ref)
            .bind(subject_rid)
            .bind(scope)
            .bind(self.payloads)
            .bind(link_mac)
    }
}

impl AuditRows for sqlx::SqliteConnection {
    async fn insert_audit(&mut self, records: &[AuditRecord]) -> Result<(), sqlx::Error> {
        // In-process: one prepared single-row statement per record costs no round trips. A
        // trigger queues each event for the chain (migration 0031).
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("{INSERT_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
        });
        let sql = SQL.as_str();
        for r in records {
            sqlx::query(sql)
                .bind(r.uuid.as_str())
                .bind(r.tenant)
                .bind(r.created_ms)
                .bind(r.principal_kind)
                .bind(r.principal_id.as_str())
                .bind(r.operation)
                .bind(r.event_type)
                .bind(r.result)
                .bind(r.http_status)
                .bind(r.user_ref.as_deref())
                .bind(r.subject_rid.as_deref())
                .bind(r.key_scope)
                .bind(r.payload.as_slice())
                .bind(r.link_mac.as_deref())
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }
}

/// Commits a batch of events atomically (the group-commit writer's unit of work): one
/// statement in a transaction whose COMMIT is sent only after the statement has answered and
/// `proceed` agrees; otherwise it rolls back and answers false. An event held up by the
/// network therefore never lands after its request was answered without it.
pub async fn insert_batch(db: &Db, records: &[AuditRecord], proceed: impl FnOnce() -> bool) -> StoreResult<bool> {
    match db {
        Db::Postgres(pool) => {
            let mut tx = pool.begin_all().await?;
            tx.insert_audit(records).await?;
            if !proceed() {
                tx.rollback().await?;
                return Ok(false);
            }
            tx.commit().await?;
        }
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_all().await?;
            tx.insert_audit(records).await?;
            if !proceed() {
                tx.rollback().await?;
                return Ok(false);
            }
            tx.commit().await?;
        }
    }
    Ok(true)
}

/// An audit row read back.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Public identifier.
    pub uuid: String,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Principal kind.
    pub principal_kind: String,
    /// Principal id.
    pub principal_id: String,
    /// Operation name.
    pub operation: String,
    /// Category.
    pub event_type: String,
    /// `ok` / `error`.
    pub result: String,
    /// HTTP status.
    pub http_status: i64,
    /// Concerned user's record id.
    pub subject_rid: Option<Vec<u8>>,
    /// `user` or `tenant`.
    pub key_scope: String,
    /// Sealed details.
    pub payload: Vec<u8>,
}

pub(crate) const COLUMNS: &str = "uuid, created_ms, principal_kind, principal_id, operation, event_type, result, \
                       http_status, subject_rid, key_scope, payload";

pub(crate) fn decode<R: Row>(row: &R) -> Result<AuditRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditRow {
        uuid: row.try_get(0)?,
        created_ms: row.try_get(1)?,
        principal_kind: row.try_get(2)?,
        principal_id: row.try_get(3)?,
        operation: row.try_get(4)?,
        event_type: row.try_get(5)?,
        result: row.try_get(6)?,
        http_status: row.try_get(7)?,
        subject_rid: row.try_get(8)?,
        key_scope: row.try_get(9)?,
        payload: row.try_get(10)?,
    })
}

/// The audit of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a>(pub(super) TenantScope<'a>);

impl Audit<'_> {
    /// A page of one user's events, newest first, and the total count.
    pub async fn list_for_user(&self, user_ref: &[u8], offset: i64, limit: i64) -> StoreResult<(i64, Vec<AuditRow>)> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM audit_events WHERE {OF_USER}"))
                .bind(tenant)
                .bind(user_ref)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let sql = format!(
                "SELECT {COLUMNS} FROM audit_events WHERE {OF_USER} ORDER BY id DESC LIMIT $3 OFFSET $4"
            );
            let rows = sqlx::query(&sql)
                .bind(tenant)
                .bind(user_ref)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut *conn)
                .await?;
            let rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            Ok((total, rows))
        })
    }

    /// One event by its public id, within the tenant.
    pub async fn get(&self, uuid: &str) -> StoreResult<Option<AuditRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE tenant_id = $1 AND uuid = $2");
            let row = sqlx::query(&sql).bind(tenant).bind(uuid).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode).transpose()?)
        })
    }

    /// Per operation, the events concerning one user, by operation name.
    pub async fn counts_for_user(&self, user_ref: &[u8]) -> StoreResult<Vec<OperationCount>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(&format!(
                "SELECT operation, COUNT(*), MIN(created_ms), MAX(created_ms) FROM audit_events \
                 WHERE {OF_USER} GROUP BY operation ORDER BY operation"
            ))
            .bind(tenant)
            .bind(user_ref)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(OperationCount {
                        operation: row.try_get(0)?,
                        count: row.try_get(1)?,
                        first_ms: row.try_get(2)?,
                        last_ms: row.try_get(3)?,
                    })
                })
                .collect()
        })
    }
}

/// How many events one operation left on a user, and when the first and last were (unix ms).
#[derive(Debug, Clone)]
pub struct OperationCount {
    /// Operation name.
    pub operation: String,
    /// Number of events.
    pub count: i64,
    /// First event.
    pub first_ms: i64,
    /// Last event.
    pub last_ms: i64,
}
