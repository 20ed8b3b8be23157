//! App data records: one sealed object per user and app name, with superseded versions.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::requests::{Resolution, resolve};
use super::users::VersionRow;
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};
use crate::expiry::Lifetime;

/// An app record to insert (version 1).
#[derive(Debug, Clone)]
pub struct NewApp<'a> {
    /// The owning user's record id.
    pub rid: &'a [u8],
    /// The app name.
    pub appname: &'a str,
    /// Sealed app data.
    pub data: &'a [u8],
    /// Creation time.
    pub now: i64,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// An app record read back.
#[derive(Debug, Clone)]
pub struct AppRow {
    /// Current version number.
    pub version: i64,
    /// When the current version was written.
    pub updated_at: i64,
    /// Sealed current app data.
    pub data: Vec<u8>,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// A change to an existing app record, computed from the locked row.
#[derive(Debug, Clone)]
pub struct AppChange {
    /// New sealed app data.
    pub data: Vec<u8>,
    /// The superseded version, sealed for the history table.
    pub previous: VersionRow,
    /// Time of the change.
    pub now: i64,
    /// The expiry after the change (a change restarts a sliding period).
    pub expires_at: Option<i64>,
    /// How many superseded versions to keep.
    pub keep_versions: i64,
}

/// Columns read into an [`AppRow`], in [`decode_app`] order.
const APP_COLUMNS: &str = "version, updated_at, data, sliding_secs, final_at, expires_at";

/// The condition a live (unexpired) app record meets, with `now` bound as `$4`.
const LIVE: &str = "(expires_at IS NULL OR expires_at > $4)";

/// A foreign-key violation means the owning user row is gone.
fn owner_gone(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        _ => err.into(),
    }
}

fn decode_version<R: Row>(row: &R) -> Result<VersionRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(VersionRow { version: row.try_get(0)?, created_at: row.try_get(1)?, data: row.try_get(2)? })
}

fn decode_app<R: Row>(row: &R) -> Result<AppRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AppRow {
        version: row.try_get(0)?,
        updated_at: row.try_get(1)?,
        data: row.try_get(2)?,
        lifetime: Lifetime { sliding_secs: row.try_get(3)?, final_at: row.try_get(4)?, expires_at: row.try_get(5)? },
    })
}

/// The appdata of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct AppData<'a>(pub(super) TenantScope<'a>);

impl AppData<'_> {
    /// The current live (unexpired) record of one user's app.
    pub async fn get(&self, rid: &[u8], appname: &str, now: i64) -> StoreResult<Option<AppRow>> {
        let (db, tenant) = self.0.parts();
        let sql =
            format!("SELECT {APP_COLUMNS} FROM userapps WHERE tenant_id = $1 AND rid = $2 AND appname = $3 AND {LIVE}");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql).bind(tenant).bind(rid).bind(appname).bind(now).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode_app).transpose()?)
        })
    }

    /// Moves a live app record's expiry forward to `expires_at` (a sliding record accessed at
    /// `now`). One statement; the guard keeps it from resurrecting an expired row or moving backwards.
    pub async fn extend(&self, rid: &[u8], appname: &str, now: i64, expires_at: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            sqlx::query(
                "UPDATE userapps SET expires_at = $5 \
                 WHERE tenant_id = $1 AND rid = $2 AND appname = $3 AND expires_at > $4 AND expires_at < $5",
            )
            .bind(tenant)
            .bind(rid)
            .bind(appname)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }

    /// Inserts version 1 of an app record with its audit event. `Conflict` when the user already
    /// has a live record for this app, `NotFound` when the user row is gone. An expired record in
    /// the way is erased first (reads no longer show it; the sweeper would erase it anyway).
    pub async fn insert(&self, new: &NewApp<'_>, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query(
                "DELETE FROM userapps WHERE tenant_id = $1 AND rid = $2 AND appname = $3 AND expires_at <= $4",
            )
            .bind(tenant)
            .bind(new.rid)
            .bind(new.appname)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO userapps (rid, appname, tenant_id, data, version, created_at, updated_at, sliding_secs, \
                 final_at, expires_at) VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(new.rid)
            .bind(new.appname)
            .bind(tenant)
            .bind(new.data)
            .bind(new.now)
            .bind(new.lifetime.sliding_secs)
            .bind(new.lifetime.final_at)
            .bind(new.lifetime.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(owner_gone)?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict);
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes one live app record under a row lock, as [`super::users::modify`] does for
    /// profiles: concurrent changes queue up. `build`'s own error comes back as `Ok(Err(_))`;
    /// `NotFound` when the record is gone or expired. With `resolves`, the approval request that
    /// asked for the change closes in the same transaction.
    pub async fn modify<E, F>(
        &self,
        rid: &[u8],
        appname: &str,
        now: i64,
        resolves: Option<&Resolution>,
        build: F,
    ) -> StoreResult<Result<(), E>>
    where
        F: FnOnce(&AppRow) -> Result<(AppChange, AuditRecord), E>,
    {
        let (db, tenant) = self.0.parts();
        // SQLite's BEGIN IMMEDIATE already holds the database write lock; PostgreSQL locks the row.
        let lock = if matches!(db, Db::Postgres(_)) { " FOR UPDATE" } else { "" };
        let select = format!(
            "SELECT {APP_COLUMNS} FROM userapps WHERE tenant_id = $1 AND rid = $2 AND appname = $3 AND {LIVE}{lock}"
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(&select).bind(tenant).bind(rid).bind(appname).bind(now).fetch_optional(&mut *tx).await?;
            let row = row.as_ref().map(decode_app).transpose()?.ok_or(StoreError::NotFound)?;
            let (change, event) = match build(&row) {
                Ok(built) => built,
                Err(err) => return Ok(Err(err)),
            };
            sqlx::query(
                "UPDATE userapps SET data = $1, version = version + 1, updated_at = $2, expires_at = $6 \
                 WHERE tenant_id = $3 AND rid = $4 AND appname = $5",
            )
            .bind(change.data.as_slice())
            .bind(change.now)
            .bind(tenant)
            .bind(rid)
            .bind(appname)
            .bind(change.expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO userapp_versions (rid, appname, version, tenant_id, created_at, data) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(rid)
            .bind(appname)
            .bind(change.previous.version)
            .bind(tenant)
            .bind(change.previous.created_at)
            .bind(change.previous.data.as_slice())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM userapp_versions WHERE tenant_id = $1 AND rid = $2 AND appname = $3 AND version <= $4")
                .bind(tenant)
                .bind(rid)
                .bind(appname)
                .bind(change.previous.version - change.keep_versions)
                .execute(&mut *tx)
                .await?;
            resolve!(&mut *tx, tenant, resolves);
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Deletes a live app record (and, by cascade, its versions) with its audit event.
    /// Returns whether a record was deleted.
    pub async fn delete(&self, rid: &[u8], appname: &str, now: i64, event: &AuditRecord) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        let sql = format!("DELETE FROM userapps WHERE tenant_id = $1 AND rid = $2 AND appname = $3 AND {LIVE}");
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let deleted = sqlx::query(&sql)
                .bind(tenant)
                .bind(rid)
                .bind(appname)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Ok(false);
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The app names one user has live records for, sorted.
    pub async fn user_app_names(&self, rid: &[u8], now: i64) -> StoreResult<Vec<String>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT appname FROM userapps WHERE tenant_id = $1 AND rid = $2 \
                 AND (expires_at IS NULL OR expires_at > $3) ORDER BY appname",
            )
            .bind(tenant)
            .bind(rid)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
        })
    }

    /// The distinct app names of the tenant's live (unexpired) records of live users, sorted.
    pub async fn app_names(&self, now: i64) -> StoreResult<Vec<String>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT DISTINCT a.appname FROM userapps a JOIN users u ON u.tenant_id = a.tenant_id AND u.rid = a.rid \
                 WHERE a.tenant_id = $1 AND u.tenant_id = $1 AND u.held_until IS NULL AND (u.expires_at IS NULL OR u.expires_at > $2) \
                 AND (a.expires_at IS NULL OR a.expires_at > $2) ORDER BY a.appname",
            )
            .bind(tenant)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
        })
    }

    /// The superseded versions of an app record, oldest first.
    pub async fn versions(&self, rid: &[u8], appname: &str) -> StoreResult<Vec<VersionRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT version, created_at, data FROM userapp_versions \
                 WHERE tenant_id = $1 AND rid = $2 AND appname = $3 ORDER BY version",
            )
            .bind(tenant)
            .bind(rid)
            .bind(appname)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows.iter().map(decode_version).collect::<Result<_, _>>()?)
        })
    }

    /// One superseded version of an app record.
    pub async fn version(&self, rid: &[u8], appname: &str, version: i64) -> StoreResult<Option<VersionRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT version, created_at, data FROM userapp_versions \
                 WHERE tenant_id = $1 AND rid = $2 AND appname = $3 AND version = $4",
            )
            .bind(tenant)
            .bind(rid)
            .bind(appname)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.as_ref().map(decode_version).transpose()?)
        })
    }
}
