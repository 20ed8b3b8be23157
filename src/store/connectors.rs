//! Connectors (the company's own databases the vault reaches into) and the erasures queued for
//! them. The password and a queued erasure's identities are sealed by the caller under the
//! tenant's key; the rest is configuration, stored in clear.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};
use crate::tenants::TenantId;

/// Most connectors one tenant may define.
pub const MAX_PER_TENANT: i64 = 100;

/// A connector as stored (`id` is 0 before its insert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRow {
    /// Its id (`connectorid`).
    pub id: i64,
    /// Unique name within the tenant.
    pub name: String,
    /// Engine name (`postgresql`, `mysql`).
    pub engine: String,
    /// Free text.
    pub description: String,
    /// Host name or address, as given.
    pub host: String,
    /// Port.
    pub port: i64,
    /// Database name.
    pub dbname: String,
    /// The table holding the subjects' rows.
    pub tablename: String,
    /// Database user.
    pub username: String,
    /// Record label the secret is sealed under.
    pub seal_id: Vec<u8>,
    /// The sealed password.
    pub secret: Vec<u8>,
    /// `active` or `disabled`.
    pub status: String,
    /// JSON object: identity mode → column.
    pub identity_columns: String,
    /// `delete` or `nullify`.
    pub erase_mode: String,
    /// Whether a user's erasure in the vault also erases the user's rows here.
    pub in_erasure: bool,
    /// Whether the user's report includes the user's rows here.
    pub in_reports: bool,
    /// When its configuration last changed (unix milliseconds): an update applies only to the
    /// configuration it was made from.
    pub updated_ms: i64,
}

/// An erasure to queue for every active connector taking part in erasure, in the transaction
/// that erases the user in the vault.
#[derive(Debug, Clone)]
pub struct NewErasure {
    /// The vault event the erasure follows (`auditeventuuid` of the deletion).
    pub origin: String,
    /// Record label the identities are sealed under.
    pub seal_id: Vec<u8>,
    /// The user's identities, sealed.
    pub identities: Vec<u8>,
    /// When it was queued (unix milliseconds); also its first due time.
    pub created_ms: i64,
}

/// A queued erasure claimed by the worker, with its connector.
#[derive(Debug, Clone)]
pub struct ErasureJob {
    /// Its id.
    pub id: i64,
    /// Its tenant.
    pub tenant: TenantId,
    /// The deletion event it follows.
    pub origin: String,
    /// Record label of the identities.
    pub seal_id: Vec<u8>,
    /// The sealed identities.
    pub identities: Vec<u8>,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The lease this claim holds (unix milliseconds): only its holder may finish the job.
    pub lease_ms: i64,
    /// Its connector.
    pub connector: ConnectorRow,
}

const COLUMNS: &str = "id, name, engine, description, host, port, dbname, tablename, username, seal_id, secret, \
     status, identity_columns, erase_mode, in_erasure, in_reports, updated_ms";

fn decode<R: Row>(row: &R, at: usize) -> Result<ConnectorRow, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(ConnectorRow {
        id: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        engine: row.try_get(at + 2)?,
        description: row.try_get(at + 3)?,
        host: row.try_get(at + 4)?,
        port: row.try_get(at + 5)?,
        dbname: row.try_get(at + 6)?,
        tablename: row.try_get(at + 7)?,
        username: row.try_get(at + 8)?,
        seal_id: row.try_get(at + 9)?,
        secret: row.try_get(at + 10)?,
        status: row.try_get(at + 11)?,
        identity_columns: row.try_get(at + 12)?,
        erase_mode: row.try_get(at + 13)?,
        in_erasure: row.try_get(at + 14)?,
        in_reports: row.try_get(at + 15)?,
        updated_ms: row.try_get(at + 16)?,
    })
}

/// Binds a connector's configuration, `name` to `in_reports` in [`COLUMNS`] order, to `$query`.
macro_rules! bind_configuration {
    ($query:expr, $row:expr) => {
        $query
            .bind(&$row.name)
            .bind(&$row.engine)
            .bind(&$row.description)
            .bind(&$row.host)
            .bind($row.port)
            .bind(&$row.dbname)
            .bind(&$row.tablename)
            .bind(&$row.username)
            .bind(&$row.seal_id)
            .bind(&$row.secret)
            .bind(&$row.status)
            .bind(&$row.identity_columns)
            .bind(&$row.erase_mode)
            .bind($row.in_erasure)
            .bind($row.in_reports)
    };
}

/// The connectors of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Connectors<'a>(pub(super) TenantScope<'a>);

impl Connectors<'_> {
    /// Inserts a connector with its audit event (`event` builds it from the new id); `Conflict`
    /// for a name taken, `Busy` past [`MAX_PER_TENANT`]. Returns its id.
    pub async fn insert(
        &self,
        row: &ConnectorRow,
        event: impl FnOnce(i64) -> AuditRecord,
        now_ms: i64,
    ) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        let postgres = matches!(db, Db::Postgres(_));
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            // Creates of one tenant one at a time, so the count below holds (SQLite's write
            // transactions are serial already).
            if postgres {
                sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE").bind(tenant).execute(&mut *tx).await?;
            }
            let count: i64 = sqlx::query("SELECT COUNT(*) FROM connectors WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if count >= MAX_PER_TENANT {
                return Err(StoreError::Busy("This tenant has the most connectors it may have"));
            }
            let query = sqlx::query(
                "INSERT INTO connectors (tenant_id, name, engine, description, host, port, dbname, tablename, \
                 username, seal_id, secret, status, identity_columns, erase_mode, in_erasure, in_reports, \
                 created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17) RETURNING id",
            );
            let id: i64 = bind_configuration!(query.bind(tenant), row)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            insert_audit!(&mut *tx, &[event(id)]);
            tx.commit().await?;
            Ok(id)
        })
    }

    /// A connector by id.
    pub async fn get(&self, id: i64) -> StoreResult<Option<ConnectorRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM connectors WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.map(|row| decode(&row, 0)).transpose()?)
        })
    }

    /// Every connector of the tenant, by id.
    pub async fn list(&self) -> StoreResult<Vec<ConnectorRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM connectors WHERE tenant_id = $1 ORDER BY id LIMIT $2"))
                .bind(tenant)
                .bind(MAX_PER_TENANT)
                .fetch_all(&mut *conn)
                .await?;
            Ok(rows.iter().map(|row| decode(row, 0)).collect::<Result<_, _>>()?)
        })
    }

    /// Replaces a connector's configuration (not its id) if it is still `expected` (unchanged
    /// since it was read), with its event; `NotFound` when it is gone, `Busy` when it changed
    /// meanwhile, `Conflict` for a name taken.
    pub async fn update(
        &self,
        expected: &ConnectorRow,
        row: &ConnectorRow,
        event: &AuditRecord,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        let updated_ms = now_ms.max(expected.updated_ms + 1);
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let query = sqlx::query(
                "UPDATE connectors SET name = $3, engine = $4, description = $5, host = $6, port = $7, dbname = $8, \
                 tablename = $9, username = $10, seal_id = $11, secret = $12, status = $13, identity_columns = $14, \
                 erase_mode = $15, in_erasure = $16, in_reports = $17, updated_ms = $18 \
                 WHERE tenant_id = $1 AND id = $2 AND updated_ms = $19",
            );
            let changed = bind_configuration!(query.bind(tenant).bind(expected.id), row)
            .bind(updated_ms)
            .bind(expected.updated_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                let exists = sqlx::query("SELECT 1 FROM connectors WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(expected.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(match exists {
                    Some(_) => StoreError::Busy("The connector changed meanwhile: read it again and retry"),
                    None => StoreError::NotFound,
                });
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a connector with its event; returns how many queued erasures went with it.
    /// `NotFound` when there is none.
    pub async fn delete(&self, id: i64, event: &AuditRecord) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let abandoned = sqlx::query("DELETE FROM connector_erasures WHERE tenant_id = $1 AND connector_id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let deleted = sqlx::query("DELETE FROM connectors WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(i64::try_from(abandoned).unwrap_or(i64::MAX))
        })
    }

    /// Erasures queued and not yet carried out, per connector id.
    pub async fn pending(&self) -> StoreResult<Vec<(i64, i64)>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT connector_id, COUNT(*) FROM connector_erasures WHERE tenant_id = $1 GROUP BY connector_id",
            )
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
        })
    }
}

/// The statement that queues `NewErasure`s inside a deletion's transaction: one job per active
/// connector of the tenant taking part in erasure (`$1` tenant, then the erasure's fields).
pub(crate) const QUEUE_ERASURE: &str = "INSERT INTO connector_erasures \
     (tenant_id, connector_id, origin, seal_id, identities, due_ms, created_ms) \
     SELECT tenant_id, id, $2, $3, $4, $5, $5 FROM connectors \
     WHERE tenant_id = $1 AND in_erasure = $6 AND status = 'active'";

/// Queues `erasures` on an open transaction of `tenant` (see [`QUEUE_ERASURE`]); one lookup
/// first, so that a tenant without connectors for erasure pays one statement per deletion.
macro_rules! queue_erasures {
    ($exec:expr, $tenant:expr, $erasures:expr) => {{
        let erasures: &[$crate::store::connectors::NewErasure] = $erasures;
        let any = !erasures.is_empty()
            && sqlx::query(
                "SELECT 1 FROM connectors WHERE tenant_id = $1 AND in_erasure = $2 AND status = 'active' LIMIT 1",
            )
            .bind($tenant)
            .bind(true)
            .fetch_optional(&mut *$exec)
            .await?
            .is_some();
        for erasure in erasures.iter().filter(|_| any) {
            sqlx::query($crate::store::connectors::QUEUE_ERASURE)
                .bind($tenant)
                .bind(&erasure.origin)
                .bind(&erasure.seal_id)
                .bind(&erasure.identities)
                .bind(erasure.created_ms)
                .bind(true)
                .execute(&mut *$exec)
                .await?;
        }
    }};
}
pub(crate) use queue_erasures;

/// Claims up to `limit` erasures due by `due_by_ms` for `lease` milliseconds from `now_ms`. A
/// job another replica holds a live lease on is left to it; a lease that ran out (its holder
/// stopped) is taken over.
pub async fn claim_due(db: &Db, now_ms: i64, due_by_ms: i64, lease: i64, limit: i64) -> StoreResult<Vec<ErasureJob>> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_all().await?;
        let keys: Vec<(TenantId, i64)> = sqlx::query(
            "SELECT tenant_id, id FROM connector_erasures WHERE due_ms <= $1 AND lease_ms <= $2 \
             ORDER BY due_ms, id LIMIT $3",
        )
        .bind(due_by_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let lease_ms = now_ms + lease;
        let mut claimed = Vec::new();
        for (tenant, id) in keys {
            let taken = sqlx::query(
                "UPDATE connector_erasures SET lease_ms = $1 WHERE tenant_id = $2 AND id = $3 AND lease_ms <= $4",
            )
            .bind(lease_ms)
            .bind(tenant)
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken == 0 {
                continue;
            }
            let row = sqlx::query(&format!(
                "SELECT e.id, e.tenant_id, e.origin, e.seal_id, e.identities, e.attempts, {} \
                 FROM connector_erasures e JOIN connectors c ON c.tenant_id = e.tenant_id AND c.id = e.connector_id \
                 WHERE e.tenant_id = $1 AND e.id = $2",
                COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ")
            ))
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { continue };
            claimed.push(ErasureJob {
                id: row.try_get(0)?,
                tenant: row.try_get(1)?,
                origin: row.try_get(2)?,
                seal_id: row.try_get(3)?,
                identities: row.try_get(4)?,
                attempts: row.try_get(5)?,
                lease_ms,
                connector: decode(&row, 6)?,
            });
        }
        tx.commit().await?;
        Ok(claimed)
    })
}

/// Ends a job with its outcome's event, if this claim still holds it; false when it does not
/// (its lease ran out and another replica took it over, or its connector went).
pub async fn finish(db: &Db, job: &ErasureJob, event: &AuditRecord) -> StoreResult<bool> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(job.tenant).await?;
        let ended = sqlx::query("DELETE FROM connector_erasures WHERE tenant_id = $1 AND id = $2 AND lease_ms = $3")
            .bind(job.tenant)
            .bind(job.id)
            .bind(job.lease_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if ended == 0 {
            return Ok(false);
        }
        insert_audit!(&mut *tx, std::slice::from_ref(event));
        tx.commit().await?;
        Ok(true)
    })
}

/// Puts a job back for another attempt at `due_ms`, if this claim still holds it: a failed
/// attempt (counted, with its reason, never a value), or one not made (`failure` `None`: the
/// job's tenant keys were not at hand on this replica).
pub async fn retry(db: &Db, job: &ErasureJob, due_ms: i64, failure: Option<&str>) -> StoreResult<bool> {
    with_pool!(db, pool => {
        let mut conn = pool.conn_for(job.tenant).await?;
        let kept = sqlx::query(
            "UPDATE connector_erasures SET attempts = attempts + $6, due_ms = $1, lease_ms = 0, \
             last_failure = COALESCE($2, last_failure) WHERE tenant_id = $3 AND id = $4 AND lease_ms = $5",
        )
        .bind(due_ms)
        .bind(failure)
        .bind(job.tenant)
        .bind(job.id)
        .bind(job.lease_ms)
        .bind(i64::from(failure.is_some()))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(kept == 1)
    })
}
