//! Bulk operations: unlock grants, keyset bookmarks and the tenant-wide listings.
//!
//! The API pages with `offset`/`limit`. Counting past `offset` rows costs time proportional to
//! the offset, so each listing here takes a [`Cursor`] instead: the key of the last row of an
//! earlier page (the bookmark remembered for the caller's unlock) and how many rows lie between
//! it and the requested offset. A caller walking the pages in order always continues exactly
//! from a bookmark, and each page is one index range scan whatever its depth.

use sqlx::Row;

use super::audit::{self, AuditRow};
use super::requests::{self, RequestRow};
use super::users::{USER_COLUMNS, UserRow, decode_user_at, index_column, live};
use super::{ScopedPool, StoreResult, TenantScope, placeholders, with_pool};
use crate::crypto::{IndexKind, IndexValue};

/// A stored unlock grant.
#[derive(Debug, Clone)]
pub struct UnlockRow {
    /// Internal id (bookmarks hang off it).
    pub id: i64,
    /// Access token id of the principal it was issued to.
    pub principal_id: String,
    /// Unix milliseconds after which it is refused.
    pub expires_ms: i64,
}

/// The bulk of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Bulk<'a>(pub(super) TenantScope<'a>);

impl Bulk<'_> {
    /// Remembers that the row keyed `last_key` is the `position`-th of `listing` (1-based), so that
    /// a page starting at `position` continues from it. Only on this tenant's own unlock.
    pub async fn remember(&self, unlock: i64, listing: &str, position: i64, last_key: &[u8]) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            sqlx::query(
                "INSERT INTO bulk_bookmarks (tenant_id, unlock_id, listing, position, last_key) \
                 SELECT tenant_id, id, $2, $3, $4 FROM bulk_unlocks WHERE id = $1 AND tenant_id = $5 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(unlock)
            .bind(listing)
            .bind(position)
            .bind(last_key)
            .bind(tenant)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }

    /// Where page `offset` of `listing` starts, from the nearest bookmark at or before it. The
    /// unlock must be this tenant's: another tenant's bookmarks are never read.
    pub async fn cursor(&self, unlock: i64, listing: &str, offset: i64) -> StoreResult<Cursor> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT b.position, b.last_key FROM bulk_bookmarks b \
                 JOIN bulk_unlocks u ON u.tenant_id = b.tenant_id AND u.id = b.unlock_id \
                 WHERE b.unlock_id = $1 AND u.tenant_id = $4 AND b.listing = $2 AND b.position <= $3 \
                 ORDER BY b.position DESC LIMIT 1",
            )
            .bind(unlock)
            .bind(listing)
            .bind(offset)
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(match row {
                Some(row) => Cursor { after: Some(row.try_get(1)?), skip: offset - row.try_get::<i64, _>(0)? },
                None => Cursor { after: None, skip: offset },
            })
        })
    }

    /// Stores a new unlock grant, first dropping expired ones (with their bookmarks).
    pub async fn insert_unlock(
        &self,
        digest: &IndexValue,
        principal_id: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            sqlx::query("DELETE FROM bulk_unlocks WHERE expires_ms <= $1").bind(now_ms).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO bulk_unlocks (digest, tenant_id, principal_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&digest[..])
            .bind(tenant)
            .bind(principal_id)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The grant with this digest in this tenant, expired or not.
    pub async fn find_unlock(&self, digest: &IndexValue) -> StoreResult<Option<UnlockRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT id, principal_id, expires_ms FROM bulk_unlocks WHERE digest = $1 AND tenant_id = $2")
                .bind(&digest[..])
                .bind(tenant)
                .fetch_optional(&mut *conn)
                .await?;
            row.map(|row| Ok(UnlockRow { id: row.try_get(0)?, principal_id: row.try_get(1)?, expires_ms: row.try_get(2)? }))
                .transpose()
        })
    }

    /// A page of the tenant's live users, newest first.
    pub async fn users_page(&self, now: i64, cursor: &Cursor, limit: i64) -> StoreResult<Vec<UserRow>> {
        let (db, tenant) = self.0.parts();
        let sql = users_page_sql(cursor);
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let mut query = sqlx::query(&sql).bind(tenant).bind(now);
            if let Some(after) = &cursor.after {
                query = query.bind(after.as_slice());
            }
            query = query.bind(limit);
            if cursor.skip > 0 {
                query = query.bind(cursor.skip);
            }
            let rows = query.fetch_all(&mut *conn).await?;
            Ok(rows.iter().map(|row| decode_user_at(row, 0)).collect::<Result<_, _>>()?)
        })
    }

    /// How many live users the tenant has.
    pub async fn count_users(&self, now: i64) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let sql = format!("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND {}", live("", "$2"));
            let row = sqlx::query(&sql)
                .bind(tenant)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
            Ok(row.try_get(0)?)
        })
    }

    /// Live users whose `kind` index is one of `values`: `(index value, row)` pairs, in no order.
    pub async fn users_by_index(
        &self,
        kind: IndexKind,
        values: &[IndexValue],
        now: i64,
    ) -> StoreResult<Vec<(Vec<u8>, UserRow)>> {
        let (db, tenant) = self.0.parts();
        let column = index_column(kind);
        let mut out = Vec::new();
        for chunk in values.chunks(1000) {
            let sql = format!(
                "SELECT {column}, {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND {} AND {column} IN ({})",
                live("", "$2"),
                placeholders(3, chunk.len())
            );
            let rows: Vec<(Vec<u8>, UserRow)> = with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
                let mut query = sqlx::query(&sql).bind(tenant).bind(now);
                for value in chunk {
                    query = query.bind(&value[..]);
                }
                query
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|row| Ok((row.try_get(0)?, decode_user_at(row, 1)?)))
                    .collect::<Result<_, sqlx::Error>>()?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// Live users by record id, in no order (missing and expired ones left out).
    pub async fn users_by_rid(&self, rids: &[Vec<u8>], now: i64) -> StoreResult<Vec<UserRow>> {
        let (db, tenant) = self.0.parts();
        let mut out = Vec::new();
        for chunk in rids.chunks(1000) {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND {} AND rid IN ({})",
                live("", "$2"),
                placeholders(3, chunk.len())
            );
            let rows: Vec<UserRow> = with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
                let mut query = sqlx::query(&sql).bind(tenant).bind(now);
                for rid in chunk {
                    query = query.bind(rid.as_slice());
                }
                query.fetch_all(&mut *conn).await?.iter().map(|row| decode_user_at(row, 0)).collect::<Result<_, _>>()?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// A page of [`requests_page_sql`]: `(row id, request, user)`.
    pub async fn requests_page(
        &self,
        now: i64,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<(i64, RequestRow, UserRow)>> {
        let (db, tenant) = self.0.parts();
        let sql = requests_page_sql(cursor);
        let width = requests::COLUMNS.split(',').count();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let mut query = sqlx::query(&sql).bind(tenant).bind(now);
            if cursor.after.is_some() {
                query = query.bind(cursor.after_id().unwrap_or(i64::MIN));
            }
            query = query.bind(limit);
            if cursor.skip > 0 {
                query = query.bind(cursor.skip);
            }
            let rows = query.fetch_all(&mut *conn).await?;
            Ok(rows
                .iter()
                .map(|row| Ok((row.try_get(width)?, requests::decode(row)?, decode_user_at(row, width + 1)?)))
                .collect::<Result<_, sqlx::Error>>()?)
        })
    }

    /// How many approval requests of live users the tenant has.
    pub async fn count_requests(&self, now: i64) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let sql = format!(
                "SELECT COUNT(*) FROM user_requests r JOIN users u ON u.tenant_id = r.tenant_id AND u.rid = r.rid \
                 WHERE r.tenant_id = $1 AND {}",
                live("u.", "$2")
            );
            let row = sqlx::query(&sql)
            .bind(tenant)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            Ok(row.try_get(0)?)
        })
    }

    /// A page of [`events_page_sql`]: `(row id, event)`.
    pub async fn events_page(&self, cursor: &Cursor, limit: i64) -> StoreResult<Vec<(i64, AuditRow)>> {
        let (db, tenant) = self.0.parts();
        let sql = events_page_sql(cursor);
        let width = audit::COLUMNS.split(',').count();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let mut query = sqlx::query(&sql).bind(tenant);
            if cursor.after.is_some() {
                query = query.bind(cursor.after_id().unwrap_or(i64::MIN));
            }
            query = query.bind(limit);
            if cursor.skip > 0 {
                query = query.bind(cursor.skip);
            }
            let rows = query.fetch_all(&mut *conn).await?;
            Ok(rows.iter().map(|row| Ok((row.try_get(width)?, audit::decode(row)?))).collect::<Result<_, sqlx::Error>>()?)
        })
    }

    /// How many audit events the tenant has.
    pub async fn count_events(&self) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1").bind(tenant).fetch_one(&mut *conn).await?;
            Ok(row.try_get(0)?)
        })
    }
}

/// Where a page starts: after the row keyed `after` (from the first row when `None`), skipping
/// `skip` more rows. `skip` is 0 whenever the caller continues from a page it was served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Key of the last row before the page's region (a user rid, or a big-endian row id).
    pub after: Option<Vec<u8>>,
    /// Rows to pass over after `after`.
    pub skip: i64,
}

impl Cursor {
    /// `after` as an integer row id (requests and audit events).
    pub fn after_id(&self) -> Option<i64> {
        self.after.as_deref().and_then(|key| <[u8; 8]>::try_from(key).ok()).map(i64::from_be_bytes)
    }

    /// ` LIMIT $n` and, only when rows must be passed over, ` OFFSET $n+1`.
    pub fn limit_clause(&self, first: usize) -> String {
        if self.skip > 0 { format!(" LIMIT ${first} OFFSET ${}", first + 1) } else { format!(" LIMIT ${first}") }
    }
}

/// The key stored in a bookmark for an integer row id.
pub fn id_key(id: i64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// The statement of one page of [`users_page`]: newest first (rids are UUIDv7, time-ordered),
/// a range of the `(tenant_id, rid)` index from the cursor's key.
pub fn users_page_sql(cursor: &Cursor) -> String {
    let (after, next) = if cursor.after.is_some() { (" AND rid < $3", 4) } else { ("", 3) };
    format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND {}{after} ORDER BY rid DESC{}",
        live("", "$2"),
        cursor.limit_clause(next)
    )
}

/// The tenant's approval requests of live users, newest first, each with its user: a range of
/// the `(tenant_id, id)` index from the cursor's key, joined to the user by primary key.
pub fn requests_page_sql(cursor: &Cursor) -> String {
    let (after, next) = if cursor.after.is_some() { (" AND r.id < $3", 4) } else { ("", 3) };
    format!(
        "SELECT {}, r.id, {} FROM user_requests r JOIN users u ON u.tenant_id = r.tenant_id AND u.rid = r.rid \
         WHERE r.tenant_id = $1 AND {}{after} ORDER BY r.id DESC{}",
        prefixed("r", requests::COLUMNS),
        prefixed("u", USER_COLUMNS),
        live("u.", "$2"),
        cursor.limit_clause(next)
    )
}

/// The tenant's audit events, newest first: a range of the `(tenant_id, id)` index from the
/// cursor's key.
pub fn events_page_sql(cursor: &Cursor) -> String {
    let (after, next) = if cursor.after.is_some() { (" AND id < $2", 3) } else { ("", 2) };
    format!(
        "SELECT {}, id FROM audit_events WHERE tenant_id = $1{after} ORDER BY id DESC{}",
        audit::COLUMNS,
        cursor.limit_clause(next)
    )
}

/// `"a, b"` as `"t.a, t.b"`.
pub(super) fn prefixed(table: &str, columns: &str) -> String {
    columns.split(',').map(|c| format!("{table}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continued_page_is_a_key_range_without_offset() {
        let from_start = Cursor::default();
        let continued = Cursor { after: Some(vec![1; 16]), skip: 0 };
        let jumped = Cursor { after: Some(vec![1; 16]), skip: 30 };
        for sql in [users_page_sql(&continued), requests_page_sql(&continued), events_page_sql(&continued)] {
            assert!(sql.contains("id < $"), "{sql}");
            assert!(!sql.contains("OFFSET"), "{sql}");
        }
        assert!(!users_page_sql(&from_start).contains("OFFSET"));
        assert!(!users_page_sql(&from_start).contains("rid <"));
        assert!(users_page_sql(&jumped).ends_with("LIMIT $4 OFFSET $5"));
        assert_eq!(prefixed("u", "rid, record"), "u.rid, u.record");
        assert_eq!(Cursor { after: Some(id_key(42)), skip: 0 }.after_id(), Some(42));
    }
}
