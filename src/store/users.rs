//! User records: sealed profile, blind indexes, versions.

use std::collections::HashSet;

use sqlx::Row;
use tokio::sync::mpsc::Receiver;

use super::audit::{AuditRecord, insert as insert_audit};
use super::audit_chain::ChainWrites;
use super::connectors::{NewErasure, queue_erasures};
use super::requests::{Resolution, resolve};
use super::search::{insert_grams, replace_grams};
use super::{Db, ScopedPool, StoreError, StoreResult, TenantScope, placeholders, with_pool};
use crate::crypto::{IndexKind, IndexValue};
use crate::expiry::Lifetime;
use crate::search::grams::Gram;
use crate::tenants::TenantId;

/// Blind indexes of the four profile identities, in [`IndexKind::PROFILE`] order.
pub type ProfileIndexes = [Option<IndexValue>; 4];

/// A user row to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Internal record id (UUIDv7 bytes: time-ordered for index locality).
    pub rid: Vec<u8>,
    /// Blind index of the user token.
    pub token_idx: IndexValue,
    /// Blind indexes of login, email, phone, custom.
    pub indexes: ProfileIndexes,
    /// Data key sealed under the tenant master key.
    pub wrapped_key: Vec<u8>,
    /// Sealed current record (version 1).
    pub record: Vec<u8>,
    /// Search gram digests of the profile (see `crate::search`).
    pub grams: Vec<Gram>,
    /// Creation time.
    pub now: i64,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// What is left of the user an audit event is about.
#[derive(Debug, Clone)]
pub enum SubjectKey {
    /// The user's wrapped data key.
    Wrapped(Vec<u8>),
    /// Held after a system deletion: present, but closed to every read.
    Held,
    /// Erased: the key is gone with the row.
    Erased,
}

/// A user row read back.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Internal record id.
    pub rid: Vec<u8>,
    /// Sealed data key.
    pub wrapped_key: Vec<u8>,
    /// Sealed current record.
    pub record: Vec<u8>,
    /// Current version number.
    pub version: i64,
    /// When the current version was written.
    pub updated_at: i64,
    /// Lifetime.
    pub lifetime: Lifetime,
}

/// A change to an existing user, computed from the locked row.
#[derive(Debug, Clone)]
pub struct UserChange {
    /// New blind indexes.
    pub indexes: ProfileIndexes,
    /// New sealed record.
    pub record: Vec<u8>,
    /// Search gram digests of the new profile.
    pub grams: Vec<Gram>,
    /// The superseded version, sealed for the history table.
    pub previous: VersionRow,
    /// Time of the change.
    pub now: i64,
    /// How many superseded versions to keep.
    pub keep_versions: i64,
}

/// A superseded version kept in the history.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// Version number.
    pub version: i64,
    /// When it was written.
    pub created_at: i64,
    /// Sealed profile.
    pub data: Vec<u8>,
}

pub(crate) const INDEX_COLUMNS: [&str; 4] = ["login_idx", "email_idx", "phone_idx", "custom_idx"];
/// The condition of a live user row: not held after a system deletion (migration 0022) and not
/// expired at `$now` (the placeholder given). Every read of users, and every read that reaches
/// a user's data through a join, uses it: a held or expired user is absent everywhere.
pub(crate) fn live(alias: &str, now: &str) -> String {
    format!("{alias}held_until IS NULL AND ({alias}expires_at IS NULL OR {alias}expires_at > {now})")
}

pub(crate) const USER_COLUMNS: &str =
    "rid, wrapped_key, record, version, updated_at, sliding_secs, final_at, expires_at";

/// Rows per multi-row INSERT: 14 binds each stays under both backends' limits.
const CHUNK: usize = 1000;

fn decode_user<R: Row>(row: &R) -> Result<UserRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    decode_user_at(row, 0)
}

/// Decodes the [`USER_COLUMNS`] of a row, starting at column `at` (for joins).
pub(crate) fn decode_user_at<R: Row>(row: &R, at: usize) -> Result<UserRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(UserRow {
        rid: row.try_get(at)?,
        wrapped_key: row.try_get(at + 1)?,
        record: row.try_get(at + 2)?,
        version: row.try_get(at + 3)?,
        updated_at: row.try_get(at + 4)?,
        lifetime: Lifetime {
            sliding_secs: row.try_get(at + 5)?,
            final_at: row.try_get(at + 6)?,
            expires_at: row.try_get(at + 7)?,
        },
    })
}

/// The users of one tenant: every query here is bound to its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Users<'a>(pub(super) TenantScope<'a>);

impl Users<'_> {
    /// Finds a live (unexpired) user by a blind index.
    pub async fn find(&self, kind: IndexKind, idx: &IndexValue, now: i64) -> StoreResult<Option<UserRow>> {
        let (db, tenant) = self.0.parts();
        let column = index_column(kind);
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND {column} = $2 AND {}", live("", "$3"));
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql).bind(tenant).bind(&idx[..]).bind(now).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode_user).transpose()?)
        })
    }

    /// Finds a live (unexpired) user by record id.
    pub async fn find_by_rid(&self, rid: &[u8], now: i64) -> StoreResult<Option<UserRow>> {
        let (db, tenant) = self.0.parts();
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND rid = $2 AND {}", live("", "$3"));
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(&sql).bind(tenant).bind(rid).bind(now).fetch_optional(&mut *conn).await?;
            Ok(row.as_ref().map(decode_user).transpose()?)
        })
    }

    /// Moves a live user's expiry forward to `expires_at` (a sliding record accessed at `now`).
    /// One statement; the guard keeps it from resurrecting an expired row or moving backwards.
    pub async fn extend(&self, rid: &[u8], now: i64, expires_at: i64) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            sqlx::query("UPDATE users SET expires_at = $4 WHERE tenant_id = $1 AND rid = $2 AND expires_at > $3 AND expires_at < $4")
                .bind(tenant)
                .bind(rid)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    /// Which profile index of `indexes` is already held by another user (excluding `except`).
    pub async fn clash(&self, indexes: &ProfileIndexes, except: Option<&[u8]>) -> StoreResult<Option<IndexKind>> {
        let (db, tenant) = self.0.parts();
        for (position, value) in indexes.iter().enumerate() {
            let Some(value) = value else { continue };
            let sql = format!("SELECT rid FROM users WHERE tenant_id = $1 AND {} = $2", INDEX_COLUMNS[position]);
            let holder: Option<Vec<u8>> = with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
                sqlx::query(&sql).bind(tenant).bind(&value[..]).fetch_optional(&mut *conn).await?.map(|r| r.try_get(0)).transpose()?
            });
            if holder.is_some_and(|rid| Some(rid.as_slice()) != except) {
                return Ok(Some(IndexKind::PROFILE[position]));
            }
        }
        Ok(None)
    }

    /// Which of `values` are already held by some user in the tenant, for the profile index at
    /// `position` in [`IndexKind::PROFILE`] order.
    pub async fn taken(&self, position: usize, values: &[IndexValue]) -> StoreResult<HashSet<IndexValue>> {
        let (db, tenant) = self.0.parts();
        let column = INDEX_COLUMNS[position];
        let rows: Vec<Vec<u8>> = match db {
            // One statement text for any number of values (a list of placeholders was a new
            // statement, parsed and planned, for every length).
            Db::Postgres(pool) => {
                let sql = format!("SELECT {column} FROM users WHERE tenant_id = $1 AND {column} = ANY($2)");
                let values: Vec<&[u8]> = values.iter().map(|v| &v[..]).collect();
                let mut conn = pool.conn_for(tenant).await?;
                let rows = sqlx::query(&sql).bind(tenant).bind(values).fetch_all(&mut *conn).await?;
                rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?
            }
            Db::Sqlite(pool) => {
                let mut found = Vec::new();
                for chunk in values.chunks(CHUNK) {
                    let sql = format!(
                        "SELECT {column} FROM users WHERE tenant_id = $1 AND {column} IN ({})",
                        placeholders(2, chunk.len())
                    );
                    let mut query = sqlx::query(&sql).bind(tenant);
                    for value in chunk {
                        query = query.bind(&value[..]);
                    }
                    for row in query.fetch_all(pool).await? {
                        found.push(row.try_get(0)?);
                    }
                }
                found
            }
        };
        Ok(rows.iter().filter_map(|v| IndexValue::try_from(v.as_slice()).ok()).collect())
    }

    /// Inserts users arriving in chunks, with their search grams and, for each one actually
    /// inserted, its creation event, all in one transaction: a large batch is sealed and written
    /// a chunk at a time instead of held whole. The transaction opens with the first chunk and
    /// commits on [`Chunk::End`]; rows whose token or any profile index is already taken are
    /// skipped (`ON CONFLICT DO NOTHING`), or, with [`OnTaken::RollBack`], roll the whole insert
    /// back at the first chunk that had one.
    pub async fn insert_chunks(&self, chunks: &mut Receiver<Chunk>, on_taken: OnTaken) -> StoreResult<ChunksWritten> {
        let (db, tenant) = self.0.parts();
        let mut inserted = HashSet::new();
        let Some(mut next) = chunks.recv().await else { return Ok(ChunksWritten::Stopped) };
        macro_rules! each_chunk {
            ($pool:expr, $insert:ident) => {{
                let mut tx = $pool.begin_for(tenant).await?;
                loop {
                    match next {
                        Chunk::Users(users, events) => {
                            let group =
                                TenantUsers { tenant, users: users.iter().collect(), events: events.iter().collect() };
                            let written = $insert(&mut tx, &group).await?;
                            if on_taken == OnTaken::RollBack && written.len() < users.len() {
                                tx.rollback().await?;
                                return Ok(ChunksWritten::Clashed);
                            }
                            inserted.extend(written);
                        }
                        Chunk::End => break,
                    }
                    let Some(chunk) = chunks.recv().await else {
                        tx.rollback().await?;
                        return Ok(ChunksWritten::Stopped);
                    };
                    next = chunk;
                }
                tx.commit().await?;
            }};
        }
        match db {
            Db::Postgres(pool) => each_chunk!(pool, insert_pg),
            Db::Sqlite(pool) => each_chunk!(pool, insert_sqlite),
        }
        Ok(ChunksWritten::Committed(inserted))
    }

    /// Changes one user under a row lock: `build` sees the locked row and returns the change and
    /// its audit event; the new record, the superseded version and the event commit together.
    /// Concurrent changes to the same user queue up instead of overwriting each other.
    /// `build`'s own error comes back as `Ok(Err(_))`, untouched; `Conflict` when a new index value
    /// is taken, `NotFound` when the row is gone. With `resolves`, the approval request that asked
    /// for the change closes in the same transaction (`RequestClosed` when it already was).
    pub async fn modify<E, F>(&self, rid: &[u8], resolves: Option<&Resolution>, build: F) -> StoreResult<Result<(), E>>
    where
        F: FnOnce(&UserRow) -> Result<(UserChange, AuditRecord), E>,
    {
        let (db, tenant) = self.0.parts();
        // SQLite's BEGIN IMMEDIATE already holds the database write lock; PostgreSQL locks the row.
        let lock = if matches!(db, Db::Postgres(_)) { " FOR UPDATE" } else { "" };
        // A user held since it was loaded (a system deletion) is gone for a change too.
        let select =
            format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND rid = $2 AND held_until IS NULL{lock}");
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let row = sqlx::query(&select).bind(tenant).bind(rid).fetch_optional(&mut *tx).await?;
            let row = row.as_ref().map(decode_user).transpose()?.ok_or(StoreError::NotFound)?;
            let (change, event) = match build(&row) {
                Ok(built) => built,
                Err(err) => return Ok(Err(err)),
            };
            let written: Result<(), sqlx::Error> = async {
                sqlx::query(
                    "UPDATE users SET login_idx = $1, email_idx = $2, phone_idx = $3, custom_idx = $4, record = $5, \
                     version = version + 1, updated_at = $6 WHERE tenant_id = $7 AND rid = $8",
                )
                .bind(change.indexes[0].as_ref().map(|v| &v[..]))
                .bind(change.indexes[1].as_ref().map(|v| &v[..]))
                .bind(change.indexes[2].as_ref().map(|v| &v[..]))
                .bind(change.indexes[3].as_ref().map(|v| &v[..]))
                .bind(change.record.as_slice())
                .bind(change.now)
                .bind(tenant)
                .bind(rid)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO user_versions (rid, version, tenant_id, created_at, data) VALUES ($1, $2, $3, $4, $5)")
                    .bind(rid)
                    .bind(change.previous.version)
                    .bind(tenant)
                    .bind(change.previous.created_at)
                    .bind(change.previous.data.as_slice())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM user_versions WHERE rid = $1 AND tenant_id = $2 AND version <= $3")
                    .bind(rid)
                    .bind(tenant)
                    .bind(change.previous.version - change.keep_versions)
                    .execute(&mut *tx)
                    .await?;
                replace_grams!(&mut *tx, tenant, rid, &change.grams);
                insert_audit!(&mut *tx, std::slice::from_ref(&event));
                Ok(())
            }
            .await;
            written?;
            resolve!(&mut *tx, tenant, resolves);
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Deletes users (and, by cascade, their versions) with their audit events in one transaction.
    /// Deleting the row destroys the wrapped data key: everything sealed under it is unreadable.
    /// Returns how many rows were deleted, and whether access tokens of theirs went too. With `resolves`, the approval request that asked for the
    /// deletion closes first, in the same transaction (the request then goes with the user).
    pub async fn delete_many(
        &self,
        rids: &[Vec<u8>],
        events: &[AuditRecord],
        resolves: Option<&Resolution>,
        erasures: &[NewErasure],
        now_ms: i64,
        erased_tag: &(dyn Fn(&str) -> [u8; 32] + Sync),
    ) -> StoreResult<(u64, bool)> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            resolve!(&mut *tx, tenant, resolves);
            // Their deletion events too: nothing in the trail may name them once they are gone.
            insert_audit!(&mut *tx, events);
            // The users' rows in connected databases are erased after the commit, by the worker.
            queue_erasures!(tx, tenant, erasures);
            tx.unlink_subjects(tenant, rids, erased_tag).await?;
            let mut deleted = 0;
            let mut tokens = false;
            for chunk in rids.chunks(CHUNK) {
                let sql = format!(
                    "DELETE FROM users WHERE tenant_id = $1 AND rid IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(&sql).bind(tenant);
                for rid in chunk {
                    query = query.bind(rid.as_slice());
                }
                deleted += query.execute(&mut *tx).await?.rows_affected();
                // The users' own access tokens die with them, on every replica (the feed).
                let sql = format!(
                    "DELETE FROM access_tokens WHERE tenant_id = $1 AND user_rid IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(&sql).bind(tenant);
                for rid in chunk {
                    query = query.bind(rid.as_slice());
                }
                if query.execute(&mut *tx).await?.rows_affected() > 0 {
                    tokens = true;
                    sqlx::query(super::tenants::RECORD_CHANGE)
                        .bind(super::tenants::Change::TOKENS)
                        .bind(tenant)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok((deleted, tokens))
        })
    }

    /// The superseded versions of a user, oldest first.
    pub async fn versions(&self, rid: &[u8]) -> StoreResult<Vec<VersionRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let rows = sqlx::query(
                "SELECT version, created_at, data FROM user_versions WHERE tenant_id = $1 AND rid = $2 ORDER BY version",
            )
            .bind(tenant)
            .bind(rid)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| Ok(VersionRow { version: row.try_get(0)?, created_at: row.try_get(1)?, data: row.try_get(2)? }))
                .collect()
        })
    }

    /// One superseded version of a user.
    pub async fn version(&self, rid: &[u8], version: i64) -> StoreResult<Option<VersionRow>> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query(
                "SELECT version, created_at, data FROM user_versions WHERE tenant_id = $1 AND rid = $2 AND version = $3",
            )
            .bind(tenant)
            .bind(rid)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|row| Ok(VersionRow { version: row.try_get(0)?, created_at: row.try_get(1)?, data: row.try_get(2)? }))
                .transpose()
        })
    }

    /// The wrapped data key of a user row, for opening audit details sealed under it, or
    /// [`SubjectKey::Held`] for a profile held after a system deletion (its details stay closed
    /// until it is restored).
    pub async fn wrapped_key(&self, rid: &[u8]) -> StoreResult<SubjectKey> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT wrapped_key, held_until FROM users WHERE tenant_id = $1 AND rid = $2")
                .bind(tenant)
                .bind(rid)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else { return Ok(SubjectKey::Erased) };
            if row.try_get::<Option<i64>, _>(1)?.is_some() {
                return Ok(SubjectKey::Held);
            }
            Ok(SubjectKey::Wrapped(row.try_get(0)?))
        })
    }
}

/// The column of a user's blind index of `kind`.
pub(crate) fn index_column(kind: IndexKind) -> &'static str {
    match kind {
        IndexKind::Token => "token_idx",
        other => INDEX_COLUMNS[profile_position(other)],
    }
}

fn profile_position(kind: IndexKind) -> usize {
    IndexKind::PROFILE.iter().position(|k| *k == kind).unwrap_or(0)
}

/// One chunk of [`Users::insert_chunks`].
#[derive(Debug)]
pub enum Chunk {
    /// New users, each with its creation event (`events[i]` is about `users[i]`).
    Users(Vec<NewUser>, Vec<AuditRecord>),
    /// Every chunk was sent: the insert may commit.
    End,
}

/// What [`Users::insert_chunks`] does with a user whose token or a profile index is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTaken {
    /// Skips it and inserts the rest.
    Skip,
    /// Rolls the whole insert back: every user or none.
    RollBack,
}

/// What [`Users::insert_chunks`] did.
#[derive(Debug)]
pub enum ChunksWritten {
    /// Committed: the rids inserted.
    Committed(HashSet<Vec<u8>>),
    /// The chunks stopped without [`Chunk::End`] (the sender went): nothing was written.
    Stopped,
    /// [`OnTaken::RollBack`] and a user's token or profile index was taken: nothing was written.
    Clashed,
}

/// The users of one tenant to insert, each with its creation event (`events[i]` is about
/// `users[i]`).
#[derive(Debug)]
pub struct TenantUsers<'a> {
    /// Their tenant.
    pub tenant: TenantId,
    /// The rows.
    pub users: Vec<&'a NewUser>,
    /// One event per row.
    pub events: Vec<&'a AuditRecord>,
}

/// [`insert_many`] for several tenants in one transaction, whose COMMIT is sent only after
/// every statement has answered and `proceed` agrees; otherwise it rolls back and answers
/// `None`. A statement that arrives late (the network held it) or a caller that has gone
/// therefore never commits: only the COMMIT itself can be in doubt. The sets of rids
/// inserted come back in `groups` order.
pub async fn insert_groups(
    db: &Db,
    groups: &[TenantUsers<'_>],
    proceed: impl FnOnce() -> bool,
) -> StoreResult<Option<Vec<HashSet<Vec<u8>>>>> {
    let mut inserted = Vec::with_capacity(groups.len());
    match db {
        Db::Postgres(pool) => {
            let mut tx = pool.begin_all().await?;
            for group in groups {
                inserted.push(insert_pg(&mut tx, group).await?);
            }
            if !proceed() {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.commit().await?;
        }
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_all().await?;
            for group in groups {
                inserted.push(insert_sqlite(&mut tx, group).await?);
            }
            if !proceed() {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.commit().await?;
        }
    }
    Ok(Some(inserted))
}

async fn insert_sqlite(tx: &mut sqlx::SqliteConnection, group: &TenantUsers<'_>) -> StoreResult<HashSet<Vec<u8>>> {
    let (tenant, users) = (group.tenant, &group.users);
    let mut inserted = HashSet::with_capacity(users.len());
    for chunk in users.chunks(CHUNK) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO users (rid, tenant_id, token_idx, login_idx, email_idx, phone_idx, custom_idx, \
             wrapped_key, record, version, created_at, updated_at, sliding_secs, final_at, expires_at) ",
        );
        qb.push_values(chunk, |mut b, u| {
            b.push_bind(u.rid.as_slice())
                .push_bind(tenant)
                .push_bind(&u.token_idx[..])
                .push_bind(u.indexes[0].as_ref().map(|v| &v[..]))
                .push_bind(u.indexes[1].as_ref().map(|v| &v[..]))
                .push_bind(u.indexes[2].as_ref().map(|v| &v[..]))
                .push_bind(u.indexes[3].as_ref().map(|v| &v[..]))
                .push_bind(u.wrapped_key.as_slice())
                .push_bind(u.record.as_slice())
                .push_bind(1_i64)
                .push_bind(u.now)
                .push_bind(u.now)
                .push_bind(u.lifetime.sliding_secs)
                .push_bind(u.lifetime.final_at)
                .push_bind(u.lifetime.expires_at);
        });
        qb.push(" ON CONFLICT DO NOTHING RETURNING rid");
        // Not kept prepared: each batch size is a statement of its own, and SQLite keeps a
        // prepared statement in the vault's memory (a multi-row VALUES of a large batch takes
        // megabytes; the statement caches of the pool held some 30 MB of them).
        for row in qb.build().persistent(false).fetch_all(&mut *tx).await? {
            inserted.insert(row.try_get::<Vec<u8>, _>(0)?);
        }
    }
    let grams = users.iter().filter(|u| inserted.contains(&u.rid)).map(|u| (u.rid.as_slice(), u.grams.as_slice()));
    insert_grams!(&mut *tx, tenant, grams);
    let events: Vec<AuditRecord> =
        users.iter().zip(&group.events).filter(|(u, _)| inserted.contains(&u.rid)).map(|(_, a)| (*a).clone()).collect();
    insert_audit!(&mut *tx, &events);
    Ok(inserted)
}

/// Users per statement of [`insert_pg`].
const PG_USERS_PER_STATEMENT: usize = 1000;

/// PostgreSQL: each chunk of users is one statement that inserts the users, then the grams and
/// the audit events of those actually inserted, and queues those events for the chain.
async fn insert_pg(tx: &mut sqlx::PgConnection, group: &TenantUsers<'_>) -> StoreResult<HashSet<Vec<u8>>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH u AS ( \
                INSERT INTO users (rid, tenant_id, token_idx, login_idx, email_idx, phone_idx, custom_idx, \
                    wrapped_key, record, version, created_at, updated_at, sliding_secs, final_at, expires_at) \
                SELECT n.rid, $1, n.token_idx, n.login_idx, n.email_idx, n.phone_idx, n.custom_idx, \
                    n.wrapped_key, n.record, 1, n.now, n.now, n.sliding, n.final, n.expires \
                FROM UNNEST($2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[], \
                    $8::bytea[], $9::bytea[], $10::int8[], $11::int8[], $12::int8[], $13::int8[]) \
                    AS n (rid, token_idx, login_idx, email_idx, phone_idx, custom_idx, wrapped_key, record, \
                    now, sliding, final, expires) \
                ON CONFLICT DO NOTHING RETURNING rid), \
             g AS ( \
                INSERT INTO user_grams (rid, tenant_id, grams) \
                SELECT o.rid, $1, ($16::int8[])[o.lo:o.hi] \
                FROM UNNEST($2::bytea[], $14::int4[], $15::int4[]) AS o (rid, lo, hi) \
                WHERE o.hi >= o.lo AND o.rid IN (SELECT rid FROM u)), \
             a AS ( \
                {} SELECT {} FROM {} WHERE e.subject_rid IN (SELECT rid FROM u){}), \
             q AS ({}) \
             SELECT rid FROM u",
            super::audit::INSERT_COLUMNS,
            super::audit::PG_COLUMNS,
            super::audit::pg_unnest(17),
            super::audit::RETURNING_KEYS,
            super::audit::queue_inserted("a"),
        )
    });
    let tenant = group.tenant;
    let mut inserted = HashSet::with_capacity(group.users.len());
    for (chunk, events) in group.users.chunks(PG_USERS_PER_STATEMENT).zip(group.events.chunks(PG_USERS_PER_STATEMENT)) {
        let bytes = |f: fn(&NewUser) -> &[u8]| chunk.iter().map(|u| f(u)).collect::<Vec<_>>();
        let index = |i: usize| chunk.iter().map(|u| u.indexes[i].as_ref().map(|v| &v[..])).collect::<Vec<_>>();
        let number = |f: fn(&NewUser) -> Option<i64>| chunk.iter().map(|u| f(u)).collect::<Vec<_>>();
        let (lo, hi, grams) = super::search::pg_slices(chunk.iter().map(|u| u.grams.as_slice()));
        let query = sqlx::query(&SQL)
            .bind(tenant)
            .bind(bytes(|u| &u.rid))
            .bind(bytes(|u| &u.token_idx[..]))
            .bind(index(0))
            .bind(index(1))
            .bind(index(2))
            .bind(index(3))
            .bind(bytes(|u| &u.wrapped_key))
            .bind(bytes(|u| &u.record))
            .bind(number(|u| Some(u.now)))
            .bind(number(|u| u.lifetime.sliding_secs))
            .bind(number(|u| u.lifetime.final_at))
            .bind(number(|u| u.lifetime.expires_at))
            .bind(lo)
            .bind(hi)
            .bind(grams);
        let query = super::audit::PgColumns::of(events).bind(query);
        for row in query.fetch_all(&mut *tx).await? {
            inserted.insert(row.try_get::<Vec<u8>, _>(0)?);
        }
    }
    Ok(inserted)
}
