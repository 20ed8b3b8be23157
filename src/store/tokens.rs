//! Format-preserving tokens: a sealed value under blind indexes of its tokenuuid and tokenbase,
//! and, for unique tokens, of the value itself.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::{Db, ScopedPool, StoreResult, TenantScope, placeholders, with_pool};
use crate::crypto::IndexValue;
use crate::expiry::Lifetime;
use crate::tenants::TenantId;

/// A token row to insert.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Blind index of the tokenuuid: the row key, bound into the sealed data.
    pub uuid_idx: IndexValue,
    /// Blind index of the tokenbase.
    pub base_idx: IndexValue,
    /// Blind index of the normalised value, for a unique token only.
    pub value_idx: Option<IndexValue>,
    /// Sealed token (under the tenant key).
    pub data: Vec<u8>,
}

/// A live token read back.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Blind index of the tokenuuid (the associated data of `data`).
    pub uuid_idx: Vec<u8>,
    /// Sealed token.
    pub data: Vec<u8>,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// Where one row of a batch ended up.
#[derive(Debug, Clone)]
pub enum Placed {
    /// Inserted as given (after any redraws).
    Inserted,
    /// Its value already had a live unique token: that one, with its lifetime reset.
    Existing(TokenRow),
    /// Its identifiers kept colliding; nothing was written for it.
    Unplaced,
}

/// The caller's side of [`insert_many`], consulted while its transaction is open.
pub trait Batch {
    /// Fresh identifiers for row `i`, whose tokenuuid or tokenbase is already taken; `None`
    /// gives the row up.
    fn redraw(&mut self, i: usize) -> Option<NewToken>;
    /// The batch's audit event, once every row is placed; `expired_replaced` counts expired
    /// unique tokens whose value slot a new token took over.
    fn event(&self, placed: &[Placed], expired_replaced: u64) -> AuditRecord;
}

/// Rows per statement: a few binds each stays under both backends' parameter limits.
const CHUNK: usize = 1000;

/// Attempts at placing a row whose identifiers collide before it is given up.
const ROUNDS: usize = 8;

const LIVE: &str = "(expires_at IS NULL OR expires_at > $2)";

fn decode<R: Row>(row: &R) -> Result<TokenRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TokenRow {
        uuid_idx: row.try_get(0)?,
        data: row.try_get(1)?,
        lifetime: Lifetime { sliding_secs: row.try_get(2)?, final_at: row.try_get(3)?, expires_at: row.try_get(4)? },
    })
}

const COLUMNS: &str = "uuid_idx, data, sliding_secs, final_at, expires_at";

/// The tokens of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a>(pub(super) TenantScope<'a>);

impl Tokens<'_> {
    /// Inserts a batch of tokens with the batch's audit event in one transaction.
    ///
    /// With unique tokens (`value_idx` set), a value that already has a live token is answered with
    /// that token, whose lifetime becomes `lifetime` counted from `now`; an expired holder of the
    /// value is erased first. A row whose tokenuuid or tokenbase collides with an existing token is
    /// redrawn through `batch` and tried again. Rows must not repeat a `value_idx`. Returns where
    /// each row ended up, in order.
    pub async fn insert_many<B: Batch>(
        &self,
        now: i64,
        lifetime: Lifetime,
        mut rows: Vec<NewToken>,
        batch: &mut B,
    ) -> StoreResult<Vec<Placed>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let values: Vec<IndexValue> = rows.iter().filter_map(|r| r.value_idx).collect();
            let mut expired_replaced = 0;
            for chunk in values.chunks(CHUNK) {
                let sql = format!(
                    "DELETE FROM tokens WHERE tenant_id = $1 AND expires_at <= $2 AND value_idx IN ({})",
                    placeholders(3, chunk.len())
                );
                let mut query = sqlx::query(&sql).bind(tenant).bind(now);
                for value in chunk {
                    query = query.bind(&value[..]);
                }
                expired_replaced += query.execute(&mut *tx).await?.rows_affected();
            }
            let mut placed: Vec<Option<Placed>> = vec![None; rows.len()];
            let mut pending: Vec<usize> = (0..rows.len()).collect();
            for round in 0..ROUNDS {
                // Values already held by a live token: answer with it (the first round finds those
                // that existed before; later rounds those a concurrent writer just inserted).
                let wanted: Vec<IndexValue> = pending.iter().filter_map(|&i| rows[i].value_idx).collect();
                let mut holders: HashMap<Vec<u8>, TokenRow> = HashMap::new();
                for chunk in wanted.chunks(CHUNK) {
                    let sql = format!(
                        "SELECT {COLUMNS}, value_idx FROM tokens WHERE tenant_id = $1 AND {LIVE} AND value_idx IN ({})",
                        placeholders(3, chunk.len())
                    );
                    let mut query = sqlx::query(&sql).bind(tenant).bind(now);
                    for value in chunk {
                        query = query.bind(&value[..]);
                    }
                    for row in query.fetch_all(&mut *tx).await? {
                        holders.insert(row.try_get(5)?, decode(&row)?);
                    }
                }
                let mut to_insert = Vec::with_capacity(pending.len());
                for &i in &pending {
                    match rows[i].value_idx.and_then(|value| holders.remove(&value[..])) {
                        Some(holder) => placed[i] = Some(Placed::Existing(holder)),
                        None => to_insert.push(i),
                    }
                }
                let mut inserted = std::collections::HashSet::new();
                for chunk in to_insert.chunks(CHUNK) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO tokens (tenant_id, uuid_idx, base_idx, value_idx, data, created_at, sliding_secs, \
                         final_at, expires_at) ",
                    );
                    qb.push_values(chunk, |mut b, &i| {
                        let row = &rows[i];
                        b.push_bind(tenant)
                            .push_bind(&row.uuid_idx[..])
                            .push_bind(&row.base_idx[..])
                            .push_bind(row.value_idx.as_ref().map(|v| &v[..]))
                            .push_bind(row.data.as_slice())
                            .push_bind(now)
                            .push_bind(lifetime.sliding_secs)
                            .push_bind(lifetime.final_at)
                            .push_bind(lifetime.expires_at);
                    });
                    // No conflict target: a clash on any of the three keys skips the row.
                    qb.push(" ON CONFLICT DO NOTHING RETURNING uuid_idx");
                    // Not kept prepared: a statement per batch size (see users.rs).
                    for row in qb.build().persistent(false).fetch_all(&mut *tx).await? {
                        inserted.insert(row.try_get::<Vec<u8>, _>(0)?);
                    }
                }
                pending.clear();
                for i in to_insert {
                    if inserted.contains(&rows[i].uuid_idx[..]) {
                        placed[i] = Some(Placed::Inserted);
                        continue;
                    }
                    // The clash is a tokenuuid or tokenbase already in use, or (for a unique row) a
                    // value a concurrent writer just tokenized. New identifiers cure the first; the
                    // next round's lookup finds the second.
                    let redrawn = if round + 1 < ROUNDS { batch.redraw(i) } else { None };
                    match redrawn {
                        Some(row) => {
                            rows[i] = row;
                            pending.push(i);
                        }
                        None => placed[i] = Some(Placed::Unplaced),
                    }
                }
                if pending.is_empty() {
                    break;
                }
            }
            let mut placed: Vec<Placed> = placed.into_iter().map(|p| p.unwrap_or(Placed::Unplaced)).collect();
            // Existing tokens found through `unique` take this call's lifetime.
            let reset: Vec<Vec<u8>> = placed
                .iter_mut()
                .filter_map(|p| match p {
                    Placed::Existing(row) => {
                        row.lifetime = lifetime;
                        Some(row.uuid_idx.clone())
                    }
                    _ => None,
                })
                .collect();
            for chunk in reset.chunks(CHUNK) {
                let sql = format!(
                    "UPDATE tokens SET sliding_secs = $2, final_at = $3, expires_at = $4 \
                     WHERE tenant_id = $1 AND uuid_idx IN ({})",
                    placeholders(5, chunk.len())
                );
                let mut query =
                    sqlx::query(&sql).bind(tenant).bind(lifetime.sliding_secs).bind(lifetime.final_at).bind(lifetime.expires_at);
                for uuid_idx in chunk {
                    query = query.bind(uuid_idx.as_slice());
                }
                query.execute(&mut *tx).await?;
            }
            let event = batch.event(&placed, expired_replaced);
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(placed)
        })
    }

    /// The live token whose tokenuuid index is `uuid_idx` or whose tokenbase index is `base_idx`.
    pub async fn find(&self, uuid_idx: &IndexValue, base_idx: &IndexValue, now: i64) -> StoreResult<Option<TokenRow>> {
        let (db, tenant) = self.0.parts();
        let sql = format!(
            "SELECT {COLUMNS} FROM tokens WHERE tenant_id = $1 AND {LIVE} AND (uuid_idx = $3 OR base_idx = $4)"
        );
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql)
                .bind(tenant)
                .bind(now)
                .bind(&uuid_idx[..])
                .bind(&base_idx[..])
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.as_ref().map(decode).transpose()?)
        })
    }

    /// The live tokens matching any of `handles`, each a (tokenuuid index, tokenbase index) pair
    /// of one caller-supplied string; each token once, in no particular order.
    pub async fn find_many(&self, handles: &[(IndexValue, IndexValue)], now: i64) -> StoreResult<Vec<TokenRow>> {
        let (db, tenant) = self.0.parts();
        let mut found: HashMap<Vec<u8>, TokenRow> = HashMap::new();
        for chunk in handles.chunks(CHUNK) {
            let sql =
                format!("SELECT {COLUMNS} FROM tokens WHERE tenant_id = $1 AND {LIVE} AND {}", either(chunk.len()));
            let rows: Vec<TokenRow> = with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
                let mut query = sqlx::query(&sql).bind(tenant).bind(now);
                for (uuid_idx, _) in chunk {
                    query = query.bind(&uuid_idx[..]);
                }
                for (_, base_idx) in chunk {
                    query = query.bind(&base_idx[..]);
                }
                query.fetch_all(&mut *conn).await?.iter().map(decode).collect::<Result<_, _>>()?
            });
            found.extend(rows.into_iter().map(|row| (row.uuid_idx.clone(), row)));
        }
        Ok(found.into_values().collect())
    }

    /// Moves live tokens' expiry forward (sliding tokens read again), in one transaction; the guard
    /// keeps an update from resurrecting an expired row or moving one backwards.
    pub async fn extend(&self, now: i64, moves: &[(Vec<u8>, i64)]) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        if moves.is_empty() {
            return Ok(());
        }
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            for (uuid_idx, expires_at) in moves {
                sqlx::query(
                    "UPDATE tokens SET expires_at = $4 \
                     WHERE tenant_id = $1 AND uuid_idx = $2 AND expires_at > $3 AND expires_at < $4",
                )
                .bind(tenant)
                .bind(uuid_idx.as_slice())
                .bind(now)
                .bind(*expires_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes the live tokens matching any of `handles` (as in [`find_many`]) with the audit event
    /// `event` builds from the number deleted, in one transaction; returns that number. When `event`
    /// gives no event, nothing is changed and 0 is returned.
    pub async fn delete_many<F>(&self, now: i64, handles: &[(IndexValue, IndexValue)], event: F) -> StoreResult<u64>
    where
        F: FnOnce(u64) -> Option<AuditRecord>,
    {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let mut deleted = 0;
            for chunk in handles.chunks(CHUNK) {
                let sql = format!("DELETE FROM tokens WHERE tenant_id = $1 AND {LIVE} AND {}", either(chunk.len()));
                let mut query = sqlx::query(&sql).bind(tenant).bind(now);
                for (uuid_idx, _) in chunk {
                    query = query.bind(&uuid_idx[..]);
                }
                for (_, base_idx) in chunk {
                    query = query.bind(&base_idx[..]);
                }
                deleted += query.execute(&mut *tx).await?.rows_affected();
            }
            let Some(event) = event(deleted) else {
                tx.rollback().await?;
                return Ok(0);
            };
            insert_audit!(&mut *tx, std::slice::from_ref(&event));
            tx.commit().await?;
            Ok(deleted)
        })
    }
}

/// `(uuid_idx IN (...) OR base_idx IN (...))` over `count` handles bound from `$3` on: first
/// every tokenuuid index, then every tokenbase index.
fn either(count: usize) -> String {
    format!("(uuid_idx IN ({}) OR base_idx IN ({}))", placeholders(3, count), placeholders(3 + count, count))
}

/// A new token of [`insert_groups`]: its tenant, row, lifetime from `now`, and the event of the
/// call that creates it.
#[derive(Debug, Clone, Copy)]
pub struct GroupedToken<'a> {
    /// The call's tenant.
    pub tenant: TenantId,
    /// The row (not unique: no `value_idx`).
    pub row: &'a NewToken,
    /// When the call was made (unix seconds).
    pub now: i64,
    /// Its lifetime.
    pub lifetime: Lifetime,
    /// The creation's event.
    pub event: &'a AuditRecord,
}

/// Inserts the tokens of several calls (of any tenants) with the events of those inserted, in
/// one transaction whose COMMIT is sent only after every statement has answered and `proceed`
/// agrees; otherwise it rolls back and answers `None`. A token whose tokenuuid or tokenbase is
/// taken is skipped (its caller draws again). The `uuid_idx` of the tokens inserted come back.
pub async fn insert_groups(
    db: &Db,
    tokens: &[GroupedToken<'_>],
    proceed: impl FnOnce() -> bool,
) -> StoreResult<Option<HashSet<Vec<u8>>>> {
    with_pool!(db, pool => {
        let mut tx = pool.begin_all().await?;
        let mut inserted = HashSet::with_capacity(tokens.len());
        for chunk in tokens.chunks(CHUNK) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO tokens (tenant_id, uuid_idx, base_idx, value_idx, data, created_at, sliding_secs, \
                 final_at, expires_at) ",
            );
            qb.push_values(chunk, |mut b, token| {
                b.push_bind(token.tenant)
                    .push_bind(&token.row.uuid_idx[..])
                    .push_bind(&token.row.base_idx[..])
                    .push_bind(token.row.value_idx.as_ref().map(|v| &v[..]))
                    .push_bind(token.row.data.as_slice())
                    .push_bind(token.now)
                    .push_bind(token.lifetime.sliding_secs)
                    .push_bind(token.lifetime.final_at)
                    .push_bind(token.lifetime.expires_at);
            });
            qb.push(" ON CONFLICT DO NOTHING RETURNING uuid_idx");
            // Not kept prepared: a statement per batch size (see users.rs).
            for row in qb.build().persistent(false).fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get::<Vec<u8>, _>(0)?);
            }
        }
        let events: Vec<AuditRecord> = tokens
            .iter()
            .filter(|token| inserted.contains(&token.row.uuid_idx[..]))
            .map(|token| token.event.clone())
            .collect();
        insert_audit!(&mut *tx, &events);
        if !proceed() {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(inserted))
    })
}
