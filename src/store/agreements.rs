//! Agreements: one sealed current state per user and legal basis, with an append-only sealed
//! history. The status is in clear (see the migration); every change commits with its event.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::requests::{Resolution, resolve};
use super::{Db, ScopedPool, StoreResult, TenantScope, with_pool};

/// The current state of one agreement as stored.
#[derive(Debug, Clone)]
pub struct AgreementRow {
    /// Id of the legal basis (bound into the sealed data, stable across renames).
    pub basis_id: i64,
    /// Brief of the legal basis (its current name).
    pub brief: String,
    /// `pending`, `active`, `expired` or `canceled`.
    pub status: String,
    /// Sealed state.
    pub data: Vec<u8>,
    /// Number of history entries so far.
    pub version: i64,
    /// When the agreement was first given.
    pub created_at: i64,
}

/// One sealed history entry.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// Position in the history, from 1.
    pub version: i64,
    /// Sealed entry.
    pub data: Vec<u8>,
}

/// A new current state and the history entry (number `version + 1`) recording it.
#[derive(Debug, Clone)]
pub struct AgreementWrite {
    /// New status.
    pub status: String,
    /// New sealed state.
    pub data: Vec<u8>,
    /// Sealed history entry.
    pub entry: Vec<u8>,
}

/// What a change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Done,
    /// No such legal basis in the tenant.
    NoBasis,
    /// The user has no agreement for the basis (only when one is required).
    NoAgreement,
}

/// Row lock for a read-then-write: SQLite's `BEGIN IMMEDIATE` already holds the write lock.
fn lock(db: &Db) -> &'static str {
    if matches!(db, Db::Postgres(_)) { " FOR UPDATE" } else { "" }
}

/// Appends one history entry inside the caller's transaction.
macro_rules! append {
    ($tx:expr, $tenant:expr, $rid:expr, $basis:expr, $version:expr, $now:expr, $entry:expr) => {
        sqlx::query(
            "INSERT INTO agreement_history (rid, legal_basis_id, version, tenant_id, created_at, data) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($rid)
        .bind($basis)
        .bind($version)
        .bind($tenant)
        .bind($now)
        .bind($entry)
        .execute(&mut *$tx)
        .await?
    };
}

/// Which agreements a [`change`] may touch.
#[derive(Debug, Clone, Copy)]
pub enum Changing<'a> {
    /// The existing agreement, or a new one when the user has none yet (AgreementAccept).
    OrGive,
    /// Only an existing agreement. With a resolution, the approval request that asked for the
    /// change closes in the same transaction.
    Existing(Option<&'a Resolution>),
}

/// The agreements of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Agreements<'a>(pub(super) TenantScope<'a>);

impl Agreements<'_> {
    /// Changes one user's agreement under a row lock. `build` sees the basis id and the current
    /// row, if any, and returns the new state with its event; its own error comes back as
    /// `Ok(Err(_))`.
    pub async fn change<E, F>(
        &self,
        rid: &[u8],
        brief: &str,
        now: i64,
        changing: Changing<'_>,
        build: F,
    ) -> StoreResult<Result<Outcome, E>>
    where
        F: FnOnce(i64, Option<&AgreementRow>) -> Result<(AgreementWrite, AuditRecord), E>,
    {
        let (db, tenant) = self.0.parts();
        let select = format!(
            "SELECT status, data, version, created_at FROM agreements \
             WHERE tenant_id = $1 AND rid = $2 AND legal_basis_id = $3{}",
            lock(db)
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let basis = sqlx::query("SELECT id FROM legal_bases WHERE tenant_id = $1 AND brief = $2")
                .bind(tenant)
                .bind(brief)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(basis) = basis else { return Ok(Ok(Outcome::NoBasis)) };
            let basis: i64 = basis.try_get(0)?;
            let row = sqlx::query(&select).bind(tenant).bind(rid).bind(basis).fetch_optional(&mut *tx).await?;
            let row = row
                .map(|row| -> Result<AgreementRow, sqlx::Error> {
                    Ok(AgreementRow {
                        basis_id: basis,
                        brief: brief.to_owned(),
                        status: row.try_get(0)?,
                        data: row.try_get(1)?,
                        version: row.try_get(2)?,
                        created_at: row.try_get(3)?,
                    })
                })
                .transpose()?;
            let resolves = match changing {
                Changing::OrGive => None,
                Changing::Existing(resolves) => resolves,
            };
            if row.is_none() && matches!(changing, Changing::Existing(_)) {
                return Ok(Ok(Outcome::NoAgreement));
            }
            let (write, event) = match build(basis, row.as_ref()) {
                Ok(built) => built,
                Err(err) => return Ok(Err(err)),
            };
            let version = row.as_ref().map_or(0, |r| r.version) + 1;
            sqlx::query(
                "INSERT INTO agreements (rid, legal_basis_id, tenant_id, status, data, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (tenant_id, rid, legal_basis_id) DO UPDATE SET status = $4, data = $5, version = $6, updated_at = $7",
            )
            .bind(rid)
            .bind(basis)
            .bind(tenant)
            .bind(write.status.as_str())
            .bind(write.data.as_slice())
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            append!(tx, tenant, rid, basis, version, now, write.entry.as_slice());
            resolve!(&mut *tx, tenant, resolves);
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(Ok(Outcome::Done))
        })
    }

    /// Cancels every active agreement of a legal basis in the tenant. `build` gets each row and the
    /// owner's wrapped data key and returns the new state; one event records the whole revocation.
    /// `None` when the basis does not exist, else the number of agreements revoked.
    pub async fn revoke_all<E, F, G>(
        &self,
        brief: &str,
        now: i64,
        mut build: F,
        event: G,
    ) -> StoreResult<Result<Option<i64>, E>>
    where
        F: FnMut(&[u8], &[u8], &AgreementRow) -> Result<AgreementWrite, E>,
        G: FnOnce(i64) -> AuditRecord,
    {
        let (db, tenant) = self.0.parts();
        let select = format!(
            "SELECT a.rid, u.wrapped_key, a.status, a.data, a.version, a.created_at \
             FROM agreements a JOIN users u ON u.tenant_id = a.tenant_id AND u.rid = a.rid \
             WHERE a.tenant_id = $1 AND a.legal_basis_id = $2 AND a.status = 'active' ORDER BY a.rid{}",
            lock(db)
        );
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let basis = sqlx::query("SELECT id FROM legal_bases WHERE tenant_id = $1 AND brief = $2")
                .bind(tenant)
                .bind(brief)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(basis) = basis else { return Ok(Ok(None)) };
            let basis: i64 = basis.try_get(0)?;
            let rows = sqlx::query(&select).bind(tenant).bind(basis).fetch_all(&mut *tx).await?;
            let mut revoked = 0;
            for row in &rows {
                let rid: Vec<u8> = row.try_get(0)?;
                let wrapped: Vec<u8> = row.try_get(1)?;
                let current = AgreementRow {
                    basis_id: basis,
                    brief: brief.to_owned(),
                    status: row.try_get(2)?,
                    data: row.try_get(3)?,
                    version: row.try_get(4)?,
                    created_at: row.try_get(5)?,
                };
                let write = match build(&rid, &wrapped, &current) {
                    Ok(write) => write,
                    Err(err) => return Ok(Err(err)),
                };
                let version = current.version + 1;
                sqlx::query(
                    "UPDATE agreements SET status = $1, data = $2, version = $3, updated_at = $4 \
                     WHERE tenant_id = $5 AND rid = $6 AND legal_basis_id = $7",
                )
                .bind(write.status.as_str())
                .bind(write.data.as_slice())
                .bind(version)
                .bind(now)
                .bind(tenant)
                .bind(rid.as_slice())
                .bind(basis)
                .execute(&mut *tx)
                .await?;
                append!(tx, tenant, rid.as_slice(), basis, version, now, write.entry.as_slice());
                revoked += 1;
            }
            insert_audit!(&mut *tx, std::slice::from_ref(&event(revoked)));
            tx.commit().await?;
            Ok(Ok(Some(revoked)))
        })
    }

    /// One user's agreement for a legal basis, with its history (oldest first); `None` when there is none.
    pub async fn get(&self, rid: &[u8], brief: &str) -> StoreResult<Option<(AgreementRow, Vec<HistoryRow>)>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT b.id, a.status, a.data, a.version, a.created_at FROM agreements a \
                 JOIN legal_bases b ON b.tenant_id = a.tenant_id AND b.id = a.legal_basis_id \
                 WHERE a.tenant_id = $1 AND a.rid = $2 AND b.tenant_id = $1 AND b.brief = $3",
            )
            .bind(tenant)
            .bind(rid)
            .bind(brief)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let basis: i64 = row.try_get(0)?;
            let current = AgreementRow {
                basis_id: basis,
                brief: brief.to_owned(),
                status: row.try_get(1)?,
                data: row.try_get(2)?,
                version: row.try_get(3)?,
                created_at: row.try_get(4)?,
            };
            let rows = sqlx::query(
                "SELECT version, data FROM agreement_history \
                 WHERE tenant_id = $1 AND rid = $2 AND legal_basis_id = $3 ORDER BY version",
            )
            .bind(tenant)
            .bind(rid)
            .bind(basis)
            .fetch_all(&mut *conn)
            .await?;
            let history = rows
                .iter()
                .map(|row| Ok(HistoryRow { version: row.try_get(0)?, data: row.try_get(1)? }))
                .collect::<Result<_, sqlx::Error>>()?;
            Ok(Some((current, history)))
        })
    }

    /// Every agreement of one user, by brief.
    pub async fn list(&self, rid: &[u8]) -> StoreResult<Vec<AgreementRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT b.brief, a.status, a.data, a.version, a.created_at, b.id FROM agreements a \
                 JOIN legal_bases b ON b.tenant_id = a.tenant_id AND b.id = a.legal_basis_id \
                 WHERE a.tenant_id = $1 AND a.rid = $2 AND b.tenant_id = $1 ORDER BY b.brief",
            )
            .bind(tenant)
            .bind(rid)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .iter()
                .map(|row| {
                    Ok(AgreementRow {
                        basis_id: row.try_get(5)?,
                        brief: row.try_get(0)?,
                        status: row.try_get(1)?,
                        data: row.try_get(2)?,
                        version: row.try_get(3)?,
                        created_at: row.try_get(4)?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?)
        })
    }
}
