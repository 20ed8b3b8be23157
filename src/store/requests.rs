//! Approval requests: a pending change to a user's data, applied when an administrator approves.
//!
//! Resolving a request (approving or cancelling it) is a conditional update from `open`, so a
//! request resolves once: the approval commits in the same transaction as the change it applies
//! (see [`Resolution`]), and a second resolution finds nothing open and fails.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};

/// Status of a request awaiting a decision.
pub const OPEN: &str = "open";

/// A request row read back.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// Public identifier (`requestuuid`).
    pub uuid: String,
    /// Record id of the user the request is about.
    pub rid: Vec<u8>,
    /// What is asked, e.g. `change-profile`.
    pub action: String,
    /// The app name or legal basis brief the action concerns; empty for profile actions.
    pub target: String,
    /// `open`, `approved` or `canceled`.
    pub status: String,
    /// The sealed change (absent for actions without one).
    pub change: Option<Vec<u8>>,
    /// The sealed reason given on resolution.
    pub reason: Option<Vec<u8>>,
    /// When the request was made.
    pub created_at: i64,
    /// When it last changed status.
    pub updated_at: i64,
}

/// A request to insert.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Public identifier.
    pub uuid: String,
    /// Record id of the user.
    pub rid: Vec<u8>,
    /// What is asked.
    pub action: &'static str,
    /// App name or brief; empty for profile actions.
    pub target: String,
    /// The sealed change.
    pub change: Option<Vec<u8>>,
    /// Creation time.
    pub now: i64,
}

/// Closing an open request, committed together with whatever it commits with.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The request.
    pub uuid: String,
    /// `approved` or `canceled`.
    pub status: &'static str,
    /// The sealed reason, if one was given.
    pub reason: Option<Vec<u8>>,
    /// Time of the decision.
    pub now: i64,
}

/// What [`create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new request was inserted.
    New,
    /// An identical open request already existed: its uuid.
    Existing(String),
}

pub(crate) const COLUMNS: &str = "uuid, rid, action, target, status, change, reason, created_at, updated_at";

pub(crate) fn decode<R: Row>(row: &R) -> Result<RequestRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RequestRow {
        uuid: row.try_get(0)?,
        rid: row.try_get(1)?,
        action: row.try_get(2)?,
        target: row.try_get(3)?,
        status: row.try_get(4)?,
        change: row.try_get(5)?,
        reason: row.try_get(6)?,
        created_at: row.try_get(7)?,
        updated_at: row.try_get(8)?,
    })
}

/// Closes `$resolution` (an `Option<&Resolution>`) inside the caller's transaction; returns
/// `StoreError::RequestClosed` from the enclosing function, rolling it back, when the request
/// is no longer open.
macro_rules! resolve {
    ($exec:expr, $tenant:expr, $resolution:expr) => {
        if let Some(resolution) = $resolution {
            let resolution: &$crate::store::requests::Resolution = resolution;
            let closed = sqlx::query(
                "UPDATE user_requests SET status = $1, reason = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND uuid = $5 AND status = 'open'",
            )
            .bind(resolution.status)
            .bind(resolution.reason.as_deref())
            .bind(resolution.now)
            .bind($tenant)
            .bind(resolution.uuid.as_str())
            .execute($exec)
            .await?
            .rows_affected();
            if closed == 0 {
                return Err($crate::store::StoreError::RequestClosed);
            }
        }
    };
}
pub(crate) use resolve;

/// The requests of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Requests<'a>(pub(super) TenantScope<'a>);

impl Requests<'_> {
    /// Inserts a request with its audit event, unless the user already has an identical open one.
    /// `same` sees the user's open requests with the same action and target (under the user's row
    /// lock, so two identical requests cannot race past each other) and returns the uuid of one
    /// that asks for the same change. `NotFound` when the user row is gone.
    pub async fn create<E, F>(&self, new: &NewRequest, event: &AuditRecord, same: F) -> StoreResult<Result<Created, E>>
    where
        F: FnOnce(&[RequestRow]) -> Result<Option<String>, E>,
    {
        let (db, tenant) = self.0.parts();
        let lock = if matches!(db, Db::Postgres(_)) { " FOR UPDATE" } else { "" };
        let owner = format!("SELECT 1 FROM users WHERE tenant_id = $1 AND rid = $2{lock}");
        let open = format!(
            "SELECT {COLUMNS} FROM user_requests \
             WHERE tenant_id = $1 AND rid = $2 AND action = $3 AND target = $4 AND status = 'open' ORDER BY id"
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            if sqlx::query(&owner).bind(tenant).bind(new.rid.as_slice()).fetch_optional(&mut *tx).await?.is_none() {
                return Err(StoreError::NotFound);
            }
            let rows = sqlx::query(&open)
                .bind(tenant)
                .bind(new.rid.as_slice())
                .bind(new.action)
                .bind(new.target.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            match same(&rows) {
                Err(err) => return Ok(Err(err)),
                Ok(Some(uuid)) => return Ok(Ok(Created::Existing(uuid))),
                Ok(None) => {}
            }
            sqlx::query(
                "INSERT INTO user_requests (uuid, tenant_id, rid, action, target, status, change, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $7)",
            )
            .bind(new.uuid.as_str())
            .bind(tenant)
            .bind(new.rid.as_slice())
            .bind(new.action)
            .bind(new.target.as_str())
            .bind(new.change.as_deref())
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(Ok(Created::New))
        })
    }

    /// One request of the tenant by uuid.
    pub async fn get(&self, uuid: &str) -> StoreResult<Option<RequestRow>> {
        let (db, tenant) = self.0.parts();
        let sql = format!("SELECT {COLUMNS} FROM user_requests WHERE tenant_id = $1 AND uuid = $2");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql).bind(tenant).bind(uuid).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode).transpose()?)
        })
    }

    /// A page of one user's requests, oldest first, and how many there are in all.
    pub async fn list(&self, rid: &[u8], offset: i64, limit: i64) -> StoreResult<(Vec<RequestRow>, i64)> {
        let (db, tenant) = self.0.parts();
        let sql = format!(
            "SELECT {COLUMNS} FROM user_requests WHERE tenant_id = $1 AND rid = $2 ORDER BY id LIMIT $3 OFFSET $4"
        );
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(&sql).bind(tenant).bind(rid).bind(limit).bind(offset).fetch_all(&mut *conn).await?;
            let total: i64 = sqlx::query("SELECT COUNT(*) FROM user_requests WHERE tenant_id = $1 AND rid = $2")
                .bind(tenant)
                .bind(rid)
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            Ok((rows.iter().map(decode).collect::<Result<_, _>>()?, total))
        })
    }

    /// Resolves a request without applying anything (a cancellation), with its audit event.
    /// `RequestClosed` when it is no longer open.
    pub async fn close(&self, resolution: &Resolution, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            resolve!(&mut *tx, tenant, Some(resolution));
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }
}
