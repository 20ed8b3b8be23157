//! Legal bases, processing activities and the links between them: tenant catalogue records,
//! not personal data, so stored in clear. Every change commits with its audit event.

use std::collections::HashMap;

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};

/// A legal basis as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalBasis {
    /// Unique short name within the tenant (lower case).
    pub brief: String,
    /// `active` or `inactive`.
    pub status: String,
    /// Free text: the module the basis belongs to.
    pub module: String,
    /// Long description.
    pub fulldesc: String,
    /// Short description.
    pub shortdesc: String,
    /// Kind of basis, e.g. `consent`, `contract`.
    pub basistype: String,
    /// Message shown when the basis is required.
    pub requiredmsg: String,
    /// Whether the basis is required.
    pub requiredflag: bool,
    /// Creation time (unix seconds).
    pub created_at: i64,
}

/// A processing activity as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Unique short name within the tenant (lower case).
    pub activity: String,
    /// Title.
    pub title: String,
    /// Script (free text).
    pub script: String,
    /// Long description.
    pub fulldesc: String,
    /// Whom the activity applies to (free text).
    pub applicableto: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
}

/// What a link or unlink found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Done (also when the link already was as asked).
    Done,
    /// No such processing activity.
    NoActivity,
    /// No such legal basis.
    NoBasis,
}

const BASIS_COLUMNS: &str =
    "brief, status, module, fulldesc, shortdesc, basistype, requiredmsg, requiredflag, created_at";
const ACTIVITY_COLUMNS: &str = "activity, title, script, fulldesc, applicableto, created_at";

fn decode_basis<R: Row>(row: &R) -> Result<LegalBasis, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(LegalBasis {
        brief: row.try_get(0)?,
        status: row.try_get(1)?,
        module: row.try_get(2)?,
        fulldesc: row.try_get(3)?,
        shortdesc: row.try_get(4)?,
        basistype: row.try_get(5)?,
        requiredmsg: row.try_get(6)?,
        requiredflag: row.try_get(7)?,
        created_at: row.try_get(8)?,
    })
}

fn decode_activity<R: Row>(row: &R) -> Result<Activity, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Activity {
        activity: row.try_get(0)?,
        title: row.try_get(1)?,
        script: row.try_get(2)?,
        fulldesc: row.try_get(3)?,
        applicableto: row.try_get(4)?,
        created_at: row.try_get(5)?,
    })
}

/// Row lock for a read-then-write: SQLite's `BEGIN IMMEDIATE` already holds the write lock.
fn lock(db: &Db, clause: &'static str) -> &'static str {
    if matches!(db, Db::Postgres(_)) { clause } else { "" }
}

/// The legal of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Legal<'a>(pub(super) TenantScope<'a>);

impl Legal<'_> {
    /// Every legal basis of the tenant, in creation order.
    pub async fn list_bases(&self) -> StoreResult<Vec<LegalBasis>> {
        let (db, tenant) = self.0.parts();
        let sql = format!("SELECT {BASIS_COLUMNS} FROM legal_bases WHERE tenant_id = $1 ORDER BY id");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(&sql).bind(tenant).fetch_all(&mut *conn).await?;
            Ok(rows.iter().map(decode_basis).collect::<Result<_, _>>()?)
        })
    }

    /// Inserts a legal basis with its event; `Conflict` when the brief is taken.
    pub async fn insert_basis(&self, basis: &LegalBasis, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query(
                "INSERT INTO legal_bases (tenant_id, brief, status, module, fulldesc, shortdesc, basistype, \
                 requiredmsg, requiredflag, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(tenant)
            .bind(&basis.brief)
            .bind(&basis.status)
            .bind(&basis.module)
            .bind(&basis.fulldesc)
            .bind(&basis.shortdesc)
            .bind(&basis.basistype)
            .bind(&basis.requiredmsg)
            .bind(basis.requiredflag)
            .bind(basis.created_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes a legal basis under a row lock: `build` sees the stored one and returns the new one
    /// and the event. `build`'s own error comes back as `Ok(Err(_))`; `NotFound` when there is no
    /// such brief, `Conflict` when a rename hits a taken brief.
    pub async fn update_basis<E, F>(&self, brief: &str, now: i64, build: F) -> StoreResult<Result<(), E>>
    where
        F: FnOnce(&LegalBasis) -> Result<(LegalBasis, AuditRecord), E>,
    {
        let (db, tenant) = self.0.parts();
        let select = format!(
            "SELECT {BASIS_COLUMNS} FROM legal_bases WHERE tenant_id = $1 AND brief = $2{}",
            lock(db, " FOR UPDATE")
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(&select).bind(tenant).bind(brief).fetch_optional(&mut *tx).await?;
            let current = row.as_ref().map(decode_basis).transpose()?.ok_or(StoreError::NotFound)?;
            let (next, event) = match build(&current) {
                Ok(built) => built,
                Err(err) => return Ok(Err(err)),
            };
            sqlx::query(
                "UPDATE legal_bases SET brief = $1, status = $2, module = $3, fulldesc = $4, shortdesc = $5, \
                 basistype = $6, requiredmsg = $7, requiredflag = $8, updated_at = $9 WHERE tenant_id = $10 AND brief = $11",
            )
            .bind(&next.brief)
            .bind(&next.status)
            .bind(&next.module)
            .bind(&next.fulldesc)
            .bind(&next.shortdesc)
            .bind(&next.basistype)
            .bind(&next.requiredmsg)
            .bind(next.requiredflag)
            .bind(now)
            .bind(tenant)
            .bind(brief)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Deletes a legal basis and its links to processing activities; `event` is built from the
    /// deleted record. `NotFound` when there is no such brief.
    pub async fn delete_basis<F>(&self, brief: &str, event: F) -> StoreResult<()>
    where
        F: FnOnce(&LegalBasis) -> AuditRecord,
    {
        let (db, tenant) = self.0.parts();
        let select = format!(
            "SELECT id, {BASIS_COLUMNS} FROM legal_bases WHERE tenant_id = $1 AND brief = $2{}",
            lock(db, " FOR UPDATE")
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(&select).bind(tenant).bind(brief).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let id: i64 = row.try_get(0)?;
            let current = LegalBasis {
                brief: row.try_get(1)?,
                status: row.try_get(2)?,
                module: row.try_get(3)?,
                fulldesc: row.try_get(4)?,
                shortdesc: row.try_get(5)?,
                basistype: row.try_get(6)?,
                requiredmsg: row.try_get(7)?,
                requiredflag: row.try_get(8)?,
                created_at: row.try_get(9)?,
            };
            // Explicit rather than relying on ON DELETE CASCADE alone (SQLite needs foreign_keys on).
            sqlx::query("DELETE FROM processing_activity_legal_bases WHERE tenant_id = $1 AND legal_basis_id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM legal_bases WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).execute(&mut *tx).await?;
            let event = event(&current);
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every processing activity of the tenant in creation order, each with the briefs of its
    /// legal bases (sorted).
    pub async fn list_activities(&self) -> StoreResult<Vec<(Activity, Vec<String>)>> {
        let (db, tenant) = self.0.parts();
        let activities =
            format!("SELECT id, {ACTIVITY_COLUMNS} FROM processing_activities WHERE tenant_id = $1 ORDER BY id");
        let links = "SELECT l.activity_id, b.brief FROM processing_activity_legal_bases l \
                     JOIN legal_bases b ON b.id = l.legal_basis_id AND b.tenant_id = l.tenant_id \
                     WHERE l.tenant_id = $1 ORDER BY b.brief";
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let mut briefs: HashMap<i64, Vec<String>> = HashMap::new();
            for row in sqlx::query(links).bind(tenant).fetch_all(&mut *conn).await? {
                briefs.entry(row.try_get(0)?).or_default().push(row.try_get(1)?);
            }
            let rows = sqlx::query(&activities).bind(tenant).fetch_all(&mut *conn).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: i64 = row.try_get(0)?;
                let activity = Activity {
                    activity: row.try_get(1)?,
                    title: row.try_get(2)?,
                    script: row.try_get(3)?,
                    fulldesc: row.try_get(4)?,
                    applicableto: row.try_get(5)?,
                    created_at: row.try_get(6)?,
                };
                out.push((activity, briefs.remove(&id).unwrap_or_default()));
            }
            Ok(out)
        })
    }

    /// Inserts a processing activity with its event; `Conflict` when the name is taken.
    pub async fn insert_activity(&self, activity: &Activity, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query(
                "INSERT INTO processing_activities (tenant_id, activity, title, script, fulldesc, applicableto, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(tenant)
            .bind(&activity.activity)
            .bind(&activity.title)
            .bind(&activity.script)
            .bind(&activity.fulldesc)
            .bind(&activity.applicableto)
            .bind(activity.created_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes a processing activity under a row lock, as [`update_basis`] does. Links follow a
    /// rename (they hold the row id, not the name).
    pub async fn update_activity<E, F>(&self, name: &str, now: i64, build: F) -> StoreResult<Result<(), E>>
    where
        F: FnOnce(&Activity) -> Result<(Activity, AuditRecord), E>,
    {
        let (db, tenant) = self.0.parts();
        let select = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM processing_activities WHERE tenant_id = $1 AND activity = $2{}",
            lock(db, " FOR UPDATE")
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(&select).bind(tenant).bind(name).fetch_optional(&mut *tx).await?;
            let current = row.as_ref().map(decode_activity).transpose()?.ok_or(StoreError::NotFound)?;
            let (next, event) = match build(&current) {
                Ok(built) => built,
                Err(err) => return Ok(Err(err)),
            };
            sqlx::query(
                "UPDATE processing_activities SET activity = $1, title = $2, script = $3, fulldesc = $4, \
                 applicableto = $5, updated_at = $6 WHERE tenant_id = $7 AND activity = $8",
            )
            .bind(&next.activity)
            .bind(&next.title)
            .bind(&next.script)
            .bind(&next.fulldesc)
            .bind(&next.applicableto)
            .bind(now)
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Deletes a processing activity and its links; `event` is built from the deleted record.
    /// `NotFound` when there is no such activity.
    pub async fn delete_activity<F>(&self, name: &str, event: F) -> StoreResult<()>
    where
        F: FnOnce(&Activity) -> AuditRecord,
    {
        let (db, tenant) = self.0.parts();
        let select = format!(
            "SELECT id, {ACTIVITY_COLUMNS} FROM processing_activities WHERE tenant_id = $1 AND activity = $2{}",
            lock(db, " FOR UPDATE")
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(&select).bind(tenant).bind(name).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let id: i64 = row.try_get(0)?;
            let current = Activity {
                activity: row.try_get(1)?,
                title: row.try_get(2)?,
                script: row.try_get(3)?,
                fulldesc: row.try_get(4)?,
                applicableto: row.try_get(5)?,
                created_at: row.try_get(6)?,
            };
            sqlx::query("DELETE FROM processing_activity_legal_bases WHERE tenant_id = $1 AND activity_id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM processing_activities WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let event = event(&current);
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Links (`linked`) or unlinks a processing activity and a legal basis, with the event.
    /// Idempotent: linking a linked pair or unlinking an unlinked one succeeds and changes nothing.
    pub async fn set_link(
        &self,
        activity: &str,
        brief: &str,
        linked: bool,
        event: &AuditRecord,
    ) -> StoreResult<LinkOutcome> {
        let (db, tenant) = self.0.parts();
        // Both rows stay put until the link commits.
        let share = lock(db, " FOR SHARE");
        let find_activity =
            format!("SELECT id FROM processing_activities WHERE tenant_id = $1 AND activity = $2{share}");
        let find_basis = format!("SELECT id FROM legal_bases WHERE tenant_id = $1 AND brief = $2{share}");
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let Some(row) = sqlx::query(&find_activity).bind(tenant).bind(activity).fetch_optional(&mut *tx).await? else {
                return Ok(LinkOutcome::NoActivity);
            };
            let activity_id: i64 = row.try_get(0)?;
            let Some(row) = sqlx::query(&find_basis).bind(tenant).bind(brief).fetch_optional(&mut *tx).await? else {
                return Ok(LinkOutcome::NoBasis);
            };
            let basis_id: i64 = row.try_get(0)?;
            let change = if linked {
                "INSERT INTO processing_activity_legal_bases (activity_id, legal_basis_id, tenant_id) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM processing_activity_legal_bases WHERE activity_id = $1 AND legal_basis_id = $2 AND tenant_id = $3"
            };
            sqlx::query(change).bind(activity_id).bind(basis_id).bind(tenant).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(LinkOutcome::Done)
        })
    }
}
