//! Master-key rotation: new versions of a tenant's master key, and the job that seals every
//! tenant-level blob of an older version again under the active one, then retires the older
//! versions (see `crate::keys`).
//!
//! Like `tenant_keys`, `key_rotations` is the vault's own table (not under row-level security).
//! The job's progress is one row per tenant: the phase (which kind of blob), a cursor within it,
//! and a lease so that one replica at a time works a tenant. Each batch commits its re-sealed
//! rows and the moved cursor together, and only while its replica still holds the lease; each
//! row is replaced only if it still holds the ciphertext that was read (compare and swap), so a
//! concurrent change is never overwritten.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::tenants::{Change, RECORD_CHANGE};
use super::{Db, ScopedPool, StoreError, StoreResult, with_pool};
use crate::crypto::keyring::main_recovery_label;
use crate::tenants::TenantId;

mod phase;

pub use phase::{Phase, RowKey};

/// What a rotation stores besides the new version's number, once that number is known.
pub struct NewVersion {
    /// The new master key under the key-encryption key.
    pub wrapped: Vec<u8>,
    /// The new master key on the recovery path.
    pub recovery_wrapped: Vec<u8>,
    /// The main tenant's active version the recovery wrapping was sealed under (or, for the
    /// main tenant itself, the version before the new one): checked to be the latest.
    pub main_version: u32,
    /// The caller's event for the rotation.
    pub event: AuditRecord,
}

/// Most master-key versions of one tenant in use at once (not yet retired).
pub const MAX_LIVE_VERSIONS: i64 = 8;

/// Adds the next version of `tenant`'s master key and (re)starts its job, with the event, in one
/// transaction that first checks the wrapping key in force (`check_kek!`). Other replicas are
/// told through the change feed. `NotFound` for no such live tenant; `Conflict` when the main
/// tenant's keys changed since they were read; `Busy` when [`MAX_LIVE_VERSIONS`] are in use.
pub async fn add_version(
    db: &Db,
    tenant: TenantId,
    actor: TenantId,
    kek_check: &[u8; 32],
    now_ms: i64,
    seal: impl FnOnce(u32) -> NewVersion,
) -> StoreResult<u32> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(actor).await?;
        let _pending = super::vault::check_kek!(tx, db, kek_check);
        let live = sqlx::query("SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        // Versions cannot pile up faster than the job retires them: each is unwrapped and
        // derived from whenever the tenant's keys are read.
        let live: i64 = sqlx::query("SELECT COUNT(*) FROM tenant_keys WHERE tenant_id = $1 AND retired_at IS NULL")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if live >= MAX_LIVE_VERSIONS {
            return Err(StoreError::Busy(
                "The tenant has 8 master-key versions in use: retry once the rotation job has retired older ones \
                 (SystemGetMasterKeyStatus)",
            ));
        }
        let latest: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM tenant_keys WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let version = u32::try_from(latest + 1).map_err(|_| StoreError::Invalid("too many master key versions"))?;
        let sealed = seal(version);
        // A replica that missed a rotation of the main tenant would wrap under a version about
        // to be retired: refused (`Conflict`), the caller retries with fresh keys.
        let main_latest: i64 = sqlx::query("SELECT MAX(version) FROM tenant_keys WHERE tenant_id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if main_latest != i64::from(sealed.main_version) {
            return Err(StoreError::Conflict);
        }
        sqlx::query(
            "INSERT INTO tenant_keys (tenant_id, version, wrapped, recovery_wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant)
        .bind(i64::from(version))
        .bind(&sealed.wrapped)
        .bind(&sealed.recovery_wrapped)
        .bind(now_ms.div_euclid(1000))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO key_rotations (tenant_id, version, rotated_ms, phase) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET version = excluded.version, rotated_ms = excluded.rotated_ms, \
             phase = excluded.phase, cursor_id = NULL, cursor_key = NULL, resealed = 0, passes = 0, \
             finished_ms = NULL, lease_owner = NULL, lease_until_ms = NULL",
        )
        .bind(tenant)
        .bind(i64::from(version))
        .bind(now_ms)
        .bind(Phase::FIRST.name())
        .execute(&mut *tx)
        .await?;
        sqlx::query(RECORD_CHANGE).bind(Change::KEYS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
        insert_audit!(&mut *tx, std::slice::from_ref(&sealed.event));
        tx.commit().await?;
        Ok(version)
    })
}

/// One blob to seal again.
#[derive(Debug, Clone)]
pub struct SealedRow {
    /// Its row.
    pub key: RowKey,
    /// The record label it is sealed for.
    pub record: Vec<u8>,
    /// The blob as read.
    pub blob: Vec<u8>,
}

/// A tenant's rotation job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    /// The tenant.
    pub tenant: TenantId,
    /// The version its last rotation added (the one everything is sealed under again).
    pub version: u32,
    /// When that rotation committed (unix milliseconds).
    pub rotated_ms: i64,
    /// Where it stands: a phase's name, `verify` (every phase done: retirement next), `done`
    /// (older versions retired) or `stalled` (blobs that no key opens kept them).
    pub stage: String,
    /// The phase it is in; `None` once every phase is done.
    pub phase: Option<Phase>,
    /// Where in the phase it stands.
    pub cursor: RowKey,
    /// Blobs sealed again so far.
    pub resealed: i64,
    /// Passes over every phase that found blobs left behind (written by replicas that did not
    /// know the new version yet) and started again.
    pub passes: i64,
    /// When it finished (unix milliseconds).
    pub finished_ms: Option<i64>,
}

const JOB_COLUMNS: &str =
    "tenant_id, version, rotated_ms, phase, cursor_id, cursor_key, resealed, passes, finished_ms FROM key_rotations";

fn decode_job<R: Row>(row: &R) -> Result<Job, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    TenantId: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let finished_ms: Option<i64> = row.try_get(8)?;
    let stage: String = row.try_get(3)?;
    let phase = Phase::parse(&stage).filter(|_| finished_ms.is_none());
    let cursor = match phase {
        Some(phase) => RowKey::from_columns(phase, row.try_get(4)?, row.try_get(5)?),
        None => RowKey::Id(0),
    };
    Ok(Job {
        stage,
        tenant: row.try_get(0)?,
        version: u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
        rotated_ms: row.try_get(2)?,
        phase,
        cursor,
        resealed: row.try_get(6)?,
        passes: row.try_get(7)?,
        finished_ms,
    })
}

/// Tenants (live ones) whose job has not finished.
pub async fn pending(db: &Db) -> StoreResult<Vec<TenantId>> {
    with_pool!(db, pool => {
        let rows = sqlx::query(
            "SELECT k.tenant_id FROM key_rotations k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.finished_ms IS NULL AND t.deleted_at IS NULL ORDER BY k.tenant_id",
        )
        .fetch_all(pool)
        .await?;
        Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
    })
}

/// A tenant's job, finished or not.
pub async fn job(db: &Db, tenant: TenantId) -> StoreResult<Option<Job>> {
    let sql = format!("SELECT {JOB_COLUMNS} WHERE tenant_id = $1");
    with_pool!(db, pool => {
        let row = sqlx::query(&sql).bind(tenant).fetch_optional(pool).await?;
        Ok(row.as_ref().map(decode_job).transpose()?)
    })
}

/// Takes (or renews) the lease on a tenant's unfinished job for `owner` until `until_ms`; the
/// job when taken, `None` when another replica holds it or it is finished.
pub async fn claim(db: &Db, tenant: TenantId, owner: &str, now_ms: i64, until_ms: i64) -> StoreResult<Option<Job>> {
    with_pool!(db, pool => {
        let taken = sqlx::query(
            "UPDATE key_rotations SET lease_owner = $2, lease_until_ms = $3 WHERE tenant_id = $1 AND finished_ms IS NULL \
             AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until_ms < $4)",
        )
        .bind(tenant)
        .bind(owner)
        .bind(until_ms)
        .bind(now_ms)
        .execute(pool)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} WHERE tenant_id = $1 AND lease_owner = $2"))
            .bind(tenant)
            .bind(owner)
            .fetch_optional(pool)
            .await?;
        Ok(row.as_ref().map(decode_job).transpose()?)
    })
}

/// Up to `limit` blobs of `phase` after `cursor` that do not start with `header`.
pub async fn batch(
    db: &Db,
    tenant: TenantId,
    phase: Phase,
    cursor: &RowKey,
    header: &[u8; 5],
    limit: i64,
) -> StoreResult<Vec<SealedRow>> {
    if !phase.applies_to(tenant) {
        return Ok(Vec::new());
    }
    with_pool!(db, pool => {
        let mut conn = pool.conn_for(tenant).await?;
        let query = sqlx::query(phase.select()).bind(tenant);
        let query = match cursor {
            RowKey::Bytes(bytes) => query.bind(bytes.clone()),
            RowKey::Id(id) => query.bind(*id),
            RowKey::Pair(owner, _) => query.bind(*owner),
        };
        let mut query = query.bind(&header[..]).bind(limit);
        if let RowKey::Pair(_, version) = cursor {
            query = query.bind(*version);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok(match phase {
                    Phase::DataKeys | Phase::Tokens | Phase::Sessions => {
                        let key: Vec<u8> = row.try_get(0)?;
                        SealedRow { record: key.clone(), key: RowKey::Bytes(key), blob: row.try_get(1)? }
                    }
                    Phase::Audit => SealedRow {
                        key: RowKey::Id(row.try_get(0)?),
                        record: row.try_get::<String, _>(1)?.into_bytes(),
                        blob: row.try_get(2)?,
                    },
                    Phase::Email => {
                        SealedRow { key: RowKey::Id(row.try_get(0)?), record: b"email".to_vec(), blob: row.try_get(1)? }
                    }
                    Phase::Connectors | Phase::ConnectorErasures => SealedRow {
                        key: RowKey::Id(row.try_get(0)?),
                        record: row.try_get(1)?,
                        blob: row.try_get(2)?,
                    },
                    Phase::Accounts => {
                        let key: Vec<u8> = row.try_get(0)?;
                        SealedRow { key: RowKey::Bytes(key), record: row.try_get::<String, _>(1)?.into_bytes(), blob: row.try_get(2)? }
                    }
                    Phase::Recovery => {
                        let (owner, version): (TenantId, i64) = (row.try_get(0)?, row.try_get(1)?);
                        let label = main_recovery_label(owner, u32::try_from(version).unwrap_or(0));
                        SealedRow { key: RowKey::Pair(owner.get(), version), record: label.into_bytes(), blob: row.try_get(2)? }
                    }
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    })
}

/// A blob sealed again: its row, the blob read, and the new one.
pub type Swap = (RowKey, Vec<u8>, Vec<u8>);

/// Commits one batch: the blobs that still are as read are replaced, and the job moves to
/// `next` (`None`: every phase done, awaiting [`finish`]), in one transaction, only while
/// `owner` holds the lease on the job of `version`. The number replaced; `None` when the lease
/// was lost (nothing is written).
pub async fn commit_batch(
    db: &Db,
    job: &Job,
    owner: &str,
    phase: Phase,
    swaps: &[Swap],
    next: Option<(Phase, RowKey)>,
) -> StoreResult<Option<u64>> {
    let (next_phase, cursor) = match &next {
        Some((phase, cursor)) => (phase.name(), cursor.columns()),
        None => ("verify", (None, None)),
    };
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(job.tenant).await?;
        let mut replaced = 0;
        for (key, old, new) in swaps {
            let query = sqlx::query(phase.swap()).bind(new).bind(job.tenant);
            let query = match key {
                RowKey::Bytes(bytes) => query.bind(bytes),
                RowKey::Id(id) => query.bind(*id),
                RowKey::Pair(owner, _) => query.bind(*owner),
            };
            let mut query = query.bind(old);
            if let RowKey::Pair(_, version) = key {
                query = query.bind(*version);
            }
            replaced += query.execute(&mut *tx).await?.rows_affected();
        }
        let moved = sqlx::query(
            "UPDATE key_rotations SET phase = $1, cursor_id = $2, cursor_key = $3, resealed = resealed + $4 \
             WHERE tenant_id = $5 AND version = $6 AND lease_owner = $7 AND finished_ms IS NULL",
        )
        .bind(next_phase)
        .bind(cursor.0)
        .bind(cursor.1)
        .bind(i64::try_from(replaced).unwrap_or(i64::MAX))
        .bind(job.tenant)
        .bind(i64::from(job.version))
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(replaced))
    })
}

/// How a job's last step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Nothing is sealed under an older version: they are retired (this many), the job done.
    Retired(u64),
    /// Blobs of older versions are left (this many): the job starts another pass.
    Remaining(i64),
    /// Blobs of older versions are left (this many) after the last pass allowed: the job
    /// stops and the older versions are kept (blobs that no key opens, reported in the log).
    Stalled(i64),
    /// The lease was lost, or the job restarted by a newer rotation: nothing was written.
    Lost,
}

/// Ends a job whose phases are all done: counts the blobs not sealed under `header` (the active
/// version); when none is left, retires every older version (version 1 is marked retired and
/// kept as the root, later ones deleted) and tells the other replicas; otherwise the job starts
/// another pass, or, when `last_pass`, stops as stalled. One transaction, which checks the
/// wrapping key in force first (it changes `tenant_keys`).
pub async fn finish(
    db: &Db,
    job: &Job,
    owner: &str,
    header: &[u8; 5],
    kek_check: &[u8; 32],
    now_ms: i64,
    last_pass: bool,
) -> StoreResult<Finish> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_for(job.tenant).await?;
        // Master keys are not retired while a wrapping-key rotation is pending: retire after it.
        if super::vault::check_kek!(tx, db, kek_check) {
            return Err(StoreError::RotationPending);
        }
        let held = sqlx::query(
            "UPDATE key_rotations SET lease_until_ms = lease_until_ms WHERE tenant_id = $1 AND version = $2 \
             AND lease_owner = $3 AND finished_ms IS NULL",
        )
        .bind(job.tenant)
        .bind(i64::from(job.version))
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if held == 0 {
            tx.rollback().await?;
            return Ok(Finish::Lost);
        }
        let mut remaining = 0;
        for phase in Phase::ALL.into_iter().filter(|phase| phase.applies_to(job.tenant)) {
            let count: i64 =
                sqlx::query(phase.count()).bind(job.tenant).bind(&header[..]).fetch_one(&mut *tx).await?.try_get(0)?;
            remaining += count;
        }
        if remaining > 0 && last_pass {
            sqlx::query(
                "UPDATE key_rotations SET phase = 'stalled', finished_ms = $2, lease_owner = NULL, lease_until_ms = NULL \
                 WHERE tenant_id = $1",
            )
            .bind(job.tenant)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Finish::Stalled(remaining));
        }
        if remaining > 0 {
            sqlx::query(
                "UPDATE key_rotations SET phase = $2, cursor_id = NULL, cursor_key = NULL, passes = passes + 1 \
                 WHERE tenant_id = $1",
            )
            .bind(job.tenant)
            .bind(Phase::FIRST.name())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Finish::Remaining(remaining));
        }
        let version = i64::from(job.version);
        let deleted = sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1 AND version < $2 AND version <> 1")
            .bind(job.tenant)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let marked = sqlx::query(
            "UPDATE tenant_keys SET retired_at = $3 WHERE tenant_id = $1 AND version = 1 AND version < $2 \
             AND retired_at IS NULL",
        )
        .bind(job.tenant)
        .bind(version)
        .bind(now_ms.div_euclid(1000))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE key_rotations SET phase = 'done', cursor_id = NULL, cursor_key = NULL, finished_ms = $2, \
             lease_owner = NULL, lease_until_ms = NULL WHERE tenant_id = $1",
        )
        .bind(job.tenant)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(RECORD_CHANGE).bind(Change::KEYS).bind(job.tenant).bind(now_ms).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Finish::Retired(deleted + marked))
    })
}

/// One stored version of a tenant's master key, for status.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// Its number.
    pub version: u32,
    /// When it was made (unix seconds).
    pub created_at: i64,
    /// When it was retired (version 1 only: later versions are deleted then).
    pub retired_at: Option<i64>,
}

/// The stored versions of a tenant's master key, oldest first.
pub async fn versions(db: &Db, tenant: TenantId) -> StoreResult<Vec<VersionRow>> {
    with_pool!(db, pool => {
        let rows = sqlx::query("SELECT version, created_at, retired_at FROM tenant_keys WHERE tenant_id = $1 ORDER BY version")
            .bind(tenant)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(VersionRow {
                    version: u32::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
                    created_at: row.try_get(1)?,
                    retired_at: row.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    })
}
