//! Files: sealed metadata rows, their tag indexes and, in the embedded default, their encrypted
//! content chunks.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::bulk::Cursor;
use super::{BeginWrite, Db, ScopedPool, StoreError, StoreResult, TenantScope, with_pool};
use crate::crypto::IndexValue;
use crate::expiry::Lifetime;
use crate::tenants::TenantId;

/// A file row to insert.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    /// Public id.
    pub fileuuid: &'a str,
    /// The owner's record id.
    pub rid: &'a [u8],
    /// Owner-keyed index of the filename.
    pub name_idx: &'a IndexValue,
    /// Owner-keyed digest of the content.
    pub content_idx: &'a IndexValue,
    /// Sealed filename, MIME type and tags.
    pub meta: &'a [u8],
    /// The file key sealed under the owner's data key.
    pub file_key: &'a [u8],
    /// Content size in bytes.
    pub size: i64,
    /// True when the content is a blob in the file directory, false when it is in `file_chunks`.
    pub in_dir: bool,
    /// Tenant-wide index of each tag.
    pub tags: &'a [IndexValue],
    /// Creation time.
    pub now: i64,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// A file row read back.
#[derive(Debug, Clone)]
pub struct FileRow {
    /// Internal id (insertion order).
    pub id: i64,
    /// Public id.
    pub fileuuid: String,
    /// The owner's record id.
    pub rid: Vec<u8>,
    /// Owner-keyed digest of the content.
    pub content_idx: Vec<u8>,
    /// Sealed metadata.
    pub meta: Vec<u8>,
    /// Sealed file key.
    pub file_key: Vec<u8>,
    /// Content size in bytes.
    pub size: i64,
    /// Where the content is.
    pub in_dir: bool,
    /// Creation time.
    pub created_at: i64,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// How a file is found among its owner's.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// By `fileuuid`.
    Uuid(&'a str),
    /// The newest with this filename index.
    Name(&'a IndexValue),
    /// By content digest.
    Content(&'a IndexValue),
}

/// A file row with its owner's wrapped data key and sealed record (tenant-wide listings).
#[derive(Debug, Clone)]
pub struct OwnedFileRow {
    /// The file.
    pub file: FileRow,
    /// The owner's wrapped data key.
    pub wrapped_key: Vec<u8>,
    /// The owner's sealed record (it holds the user token).
    pub record: Vec<u8>,
}

/// Columns read into a [`FileRow`], in [`decode`] order, from `files f`.
const COLUMNS: &str = "f.id, f.fileuuid, f.rid, f.content_idx, f.meta, f.file_key, f.size, f.in_dir, f.created_at, \
                       f.sliding_secs, f.final_at, f.expires_at";

fn decode<R: Row>(row: &R) -> Result<FileRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(FileRow {
        id: row.try_get(0)?,
        fileuuid: row.try_get(1)?,
        rid: row.try_get(2)?,
        content_idx: row.try_get(3)?,
        meta: row.try_get(4)?,
        file_key: row.try_get(5)?,
        size: row.try_get(6)?,
        in_dir: row.try_get(7)?,
        created_at: row.try_get(8)?,
        lifetime: Lifetime { sliding_secs: row.try_get(9)?, final_at: row.try_get(10)?, expires_at: row.try_get(11)? },
    })
}

/// A foreign-key violation means the owning user row is gone.
fn owner_gone(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        _ => err.into(),
    }
}

/// The files of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Files<'a>(pub(super) TenantScope<'a>);

impl Files<'_> {
    /// Up to `count` chunks of this tenant's file `file_id` from `from`, in order; stops at a gap.
    pub async fn chunks(&self, file_id: i64, from: i64, count: i64) -> StoreResult<Vec<Vec<u8>>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT c.seq, c.data FROM file_chunks c JOIN files f ON f.tenant_id = c.tenant_id AND f.id = c.file_id \
                 WHERE c.file_id = $1 AND c.tenant_id = $4 AND c.seq >= $2 ORDER BY c.seq LIMIT $3",
            )
            .bind(file_id)
            .bind(from)
            .bind(count)
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for (expected, row) in (from..).zip(rows.iter()) {
                if row.try_get::<i64, _>(0)? != expected {
                    break;
                }
                out.push(row.try_get(1)?);
            }
            Ok(out)
        })
    }

    /// One live (unexpired) file of a user; by name, the newest.
    pub async fn find(&self, rid: &[u8], lookup: Lookup<'_>, now: i64) -> StoreResult<Option<FileRow>> {
        let (db, tenant) = self.0.parts();
        let condition = match lookup {
            Lookup::Uuid(_) => "f.fileuuid = $3",
            Lookup::Name(_) => "f.name_idx = $3",
            Lookup::Content(_) => "f.content_idx = $3",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM files f WHERE f.tenant_id = $1 AND f.rid = $2 AND {condition} \
             AND (f.expires_at IS NULL OR f.expires_at > $4) ORDER BY f.id DESC LIMIT 1"
        );
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let query = sqlx::query(&sql).bind(tenant).bind(rid);
            let query = match lookup {
                Lookup::Uuid(uuid) => query.bind(uuid),
                Lookup::Name(idx) | Lookup::Content(idx) => query.bind(&idx[..]),
            };
            let row = query.bind(now).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode).transpose()?)
        })
    }

    /// Moves a live file's expiry forward to `expires_at` (a sliding file accessed at `now`); the
    /// guard keeps it from resurrecting an expired file or moving backwards.
    pub async fn extend(&self, id: i64, now: i64, expires_at: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            sqlx::query("UPDATE files SET expires_at = $4 WHERE tenant_id = $1 AND id = $2 AND expires_at > $3 AND expires_at < $4")
                .bind(tenant)
                .bind(id)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    /// Inserts a file, its tags, its content chunks as `chunks` yields them (none when the content
    /// is a blob) and its audit event, in one transaction. `Ok(Ok(false))` when the user already has
    /// a live file with the same content (nothing written); `chunks`' own error comes back as
    /// `Ok(Err(_))`; `NotFound` when the user row is gone. An expired file with the same content is
    /// erased first (reads no longer show it; the sweeper would erase it anyway).
    pub async fn insert<E>(
        &self,
        new: &NewFile<'_>,
        chunks: impl Iterator<Item = Result<Vec<u8>, E>>,
        event: &AuditRecord,
    ) -> StoreResult<Result<bool, E>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query("DELETE FROM files WHERE tenant_id = $1 AND rid = $2 AND content_idx = $3 AND expires_at <= $4")
                .bind(tenant)
                .bind(new.rid)
                .bind(&new.content_idx[..])
                .bind(new.now)
                .execute(&mut *tx)
                .await?;
            let id: Option<i64> = sqlx::query(
                "INSERT INTO files (tenant_id, fileuuid, rid, name_idx, content_idx, meta, file_key, size, in_dir, \
                 created_at, sliding_secs, final_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(tenant)
            .bind(new.fileuuid)
            .bind(new.rid)
            .bind(&new.name_idx[..])
            .bind(&new.content_idx[..])
            .bind(new.meta)
            .bind(new.file_key)
            .bind(new.size)
            .bind(new.in_dir)
            .bind(new.now)
            .bind(new.lifetime.sliding_secs)
            .bind(new.lifetime.final_at)
            .bind(new.lifetime.expires_at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(owner_gone)?
            .map(|row| row.try_get(0))
            .transpose()?;
            let Some(id) = id else {
                return Ok(Ok(false));
            };
            for tag in new.tags {
                sqlx::query("INSERT INTO file_tags (file_id, tenant_id, tag_idx) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(tenant)
                    .bind(&tag[..])
                    .execute(&mut *tx)
                    .await?;
            }
            for (seq, chunk) in chunks.enumerate() {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(err) => return Ok(Err(err)),
                };
                sqlx::query("INSERT INTO file_chunks (tenant_id, file_id, seq, data) VALUES ($1, $2, $3, $4)")
                    .bind(tenant)
                    .bind(id)
                    .bind(seq as i64)
                    .bind(chunk)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(Ok(true))
        })
    }

    /// A user's live files in creation order, optionally only those with the tag index `tag`.
    pub async fn list(&self, rid: &[u8], tag: Option<&IndexValue>, now: i64) -> StoreResult<Vec<FileRow>> {
        let (db, tenant) = self.0.parts();
        let filter = if tag.is_some() {
            " AND EXISTS (SELECT 1 FROM file_tags t WHERE t.tenant_id = f.tenant_id AND t.file_id = f.id AND t.tag_idx = $4)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM files f WHERE f.tenant_id = $1 AND f.rid = $2 \
             AND (f.expires_at IS NULL OR f.expires_at > $3){filter} ORDER BY f.id"
        );
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let mut query = sqlx::query(&sql).bind(tenant).bind(rid).bind(now);
            if let Some(tag) = tag {
                query = query.bind(&tag[..]);
            }
            let rows = query.fetch_all(&mut *conn).await?;
            Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
        })
    }

    /// Replaces a live file's sealed metadata and tag indexes, with the audit event. Returns whether
    /// the file was there.
    pub async fn replace_tags(
        &self,
        id: i64,
        meta: &[u8],
        tags: &[IndexValue],
        now: i64,
        event: &AuditRecord,
    ) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let updated = sqlx::query(
                "UPDATE files SET meta = $3 WHERE tenant_id = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > $4)",
            )
            .bind(tenant)
            .bind(id)
            .bind(meta)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM file_tags WHERE file_id = $1").bind(id).execute(&mut *tx).await?;
            for tag in tags {
                sqlx::query("INSERT INTO file_tags (file_id, tenant_id, tag_idx) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(tenant)
                    .bind(&tag[..])
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Deletes a user's live file (its tags and chunks cascade; a blob is queued for removal by the
    /// trigger), with the audit event. Returns whether a file was deleted.
    pub async fn delete(&self, rid: &[u8], fileuuid: &str, now: i64, event: &AuditRecord) -> StoreResult<bool> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let deleted = sqlx::query(
                "DELETE FROM files WHERE tenant_id = $1 AND rid = $2 AND fileuuid = $3 \
                 AND (expires_at IS NULL OR expires_at > $4)",
            )
            .bind(tenant)
            .bind(rid)
            .bind(fileuuid)
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

    /// Live files of live users of the tenant carrying the tag index `tag`, in insertion order
    /// (the tag index `(tenant_id, tag_idx, file_id)` serves the order), with the total.
    pub async fn by_tag(
        &self,
        tag: &IndexValue,
        now: i64,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<(i64, Vec<OwnedFileRow>)> {
        let (db, tenant) = self.0.parts();
        const FROM: &str = "FROM file_tags t JOIN files f ON f.tenant_id = t.tenant_id AND f.id = t.file_id \
                            JOIN users u ON u.tenant_id = f.tenant_id AND u.rid = f.rid \
                            WHERE t.tenant_id = $1 AND t.tag_idx = $2 AND f.tenant_id = $1 AND u.tenant_id = $1 \
                            AND (f.expires_at IS NULL OR f.expires_at > $3) AND u.held_until IS NULL AND (u.expires_at IS NULL OR u.expires_at > $3)";
        let count = format!("SELECT COUNT(*) {FROM}");
        // Keyset: continue after the cursor's file id along the tag index, passing over only
        // `cursor.skip` rows (none when pages are read in order).
        let page = format!(
            "SELECT {COLUMNS}, u.wrapped_key, u.record {FROM} AND t.file_id > $4 ORDER BY t.file_id{}",
            cursor.limit_clause(5)
        );
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let total: i64 = sqlx::query(&count).bind(tenant).bind(&tag[..]).bind(now).fetch_one(&mut *conn).await?.try_get(0)?;
            let mut query = sqlx::query(&page)
                .bind(tenant)
                .bind(&tag[..])
                .bind(now)
                .bind(cursor.after_id().unwrap_or(i64::MIN))
                .bind(limit);
            if cursor.skip > 0 {
                query = query.bind(cursor.skip);
            }
            let rows = query.fetch_all(&mut *conn).await?;
            let rows = rows
                .iter()
                .map(|row| Ok(OwnedFileRow { file: decode(row)?, wrapped_key: row.try_get(12)?, record: row.try_get(13)? }))
                .collect::<Result<_, sqlx::Error>>()?;
            Ok((total, rows))
        })
    }
}

/// Up to `limit` blobs whose rows are gone: `(tenant, fileuuid)`.
pub async fn gone_blobs(db: &Db, limit: i64) -> StoreResult<Vec<(TenantId, String)>> {
    with_pool!(db, pool => {
        let rows = sqlx::query("SELECT tenant_id, fileuuid FROM file_blobs_gone ORDER BY tenant_id, fileuuid LIMIT $1")
            .bind(limit)
            .fetch_all(pool)
            .await?;
        Ok(rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    })
}

/// Forgets blobs that were removed.
pub async fn forget_gone(db: &Db, removed: &[(TenantId, String)]) -> StoreResult<()> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_write().await?;
        for (tenant, fileuuid) in removed {
            sqlx::query("DELETE FROM file_blobs_gone WHERE tenant_id = $1 AND fileuuid = $2")
                .bind(tenant)
                .bind(fileuuid)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    })
}
