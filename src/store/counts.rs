//! Record counts: how many users, tokens, sessions, files, agreements and open requests a tenant
//! (or the vault) holds, read from counters the database's own triggers keep (migration 0023),
//! so a read costs the same at a million users as at ten.
//!
//! On PostgreSQL the triggers append deltas and [`compact`] folds them into the base counts; a
//! count is the base plus the deltas still pending, read in one statement. On SQLite (one writer
//! at a time) the triggers update the base counts in place and nothing is pending.

use sqlx::Row;

use super::{Db, ScopedPool, StoreResult, with_pool};
use crate::tenants::TenantId;

/// A tenant's (or the vault's) records, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Live user profiles (a held profile is absent).
    pub users: i64,
    /// Format-preserving tokens.
    pub tokens: i64,
    /// Sessions.
    pub sessions: i64,
    /// Files.
    pub files: i64,
    /// Agreements (one per user and legal basis).
    pub agreements: i64,
    /// User requests still open.
    pub open_requests: i64,
}

impl Counts {
    /// Adds `n` to the count of `kind` (as the triggers name it); unknown kinds are ignored.
    fn add(&mut self, kind: &str, n: i64) {
        let slot = match kind {
            "users" => &mut self.users,
            "tokens" => &mut self.tokens,
            "sessions" => &mut self.sessions,
            "files" => &mut self.files,
            "agreements" => &mut self.agreements,
            "requests" => &mut self.open_requests,
            _ => return,
        };
        *slot += n;
    }

    fn from_rows<R: Row>(rows: &[R]) -> Result<Counts, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let mut counts = Counts::default();
        for row in rows {
            counts.add(&row.try_get::<String, _>(0)?, row.try_get(1)?);
        }
        Ok(counts)
    }
}

/// One tenant's counts: its base rows and pending deltas, both by the tenant's index.
const TENANT_PG: &str = "SELECT kind, CAST(SUM(n) AS BIGINT) FROM ( \
        SELECT kind, n FROM record_counts WHERE tenant_id = $1 \
        UNION ALL SELECT kind, delta FROM record_count_deltas WHERE tenant_id = $1) c \
     GROUP BY kind";
const TENANT_SQLITE: &str = "SELECT kind, n FROM record_counts WHERE tenant_id = $1";

/// The counts of every tenant not deleted (a few rows per tenant, whatever the data).
const VAULT_PG: &str = "SELECT c.kind, CAST(SUM(c.n) AS BIGINT) FROM ( \
        SELECT tenant_id, kind, n FROM record_counts \
        UNION ALL SELECT tenant_id, kind, delta FROM record_count_deltas) c \
     JOIN tenants t ON t.id = c.tenant_id WHERE t.deleted_at IS NULL GROUP BY c.kind";
const VAULT_SQLITE: &str = "SELECT c.kind, CAST(SUM(c.n) AS BIGINT) FROM record_counts c \
     JOIN tenants t ON t.id = c.tenant_id WHERE t.deleted_at IS NULL GROUP BY c.kind";

/// The records of one tenant.
pub async fn tenant(db: &Db, tenant: TenantId) -> StoreResult<Counts> {
    let sql = match db {
        Db::Sqlite(_) => TENANT_SQLITE,
        Db::Postgres(_) => TENANT_PG,
    };
    with_pool!(db, pool => {
        let mut conn = pool.conn_for(tenant).await?;
        let rows = sqlx::query(sql).bind(tenant).fetch_all(&mut *conn).await?;
        Ok(Counts::from_rows(&rows)?)
    })
}

/// The records of every tenant not deleted.
pub async fn vault(db: &Db) -> StoreResult<Counts> {
    let sql = match db {
        Db::Sqlite(_) => VAULT_SQLITE,
        Db::Postgres(_) => VAULT_PG,
    };
    with_pool!(db, pool => {
        // The vault's own cross-tenant read (row-level security admits every tenant's counts).
        let mut tx = pool.begin_all().await?;
        let rows = sqlx::query(sql).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(Counts::from_rows(&rows)?)
    })
}

/// The licence's records over the vault: user profiles (each with everything attached to it)
/// and tokens (all standalone). Held profiles are not counted.
pub async fn vault_records(db: &Db) -> StoreResult<i64> {
    let counts = vault(db).await?;
    Ok(counts.users + counts.tokens)
}

/// How many tenants are not deleted (the main tenant included).
pub async fn live_tenants(db: &Db) -> StoreResult<i64> {
    with_pool!(db, pool => {
        Ok(sqlx::query("SELECT COUNT(*) FROM tenants WHERE deleted_at IS NULL").fetch_one(pool).await?.try_get(0)?)
    })
}

/// Deltas folded by one statement of [`compact`].
const COMPACT_BATCH: i64 = 10_000;
/// Most statements of [`compact`] in one run.
const COMPACT_BATCHES: usize = 20;

/// Advisory lock key: one compaction at a time across the replicas sharing a PostgreSQL database
/// (two would fold disjoint deltas correctly, but could lock the same base rows in opposite orders).
pub(super) const COMPACT_LOCK: i64 = 0x6275_6e6b_6572_0002;

/// Takes a batch of pending deltas off the queue and adds their sums to the base counts, in one
/// statement (a reader sees the deltas either pending or folded, never both).
const FOLD: &str = "WITH moved AS ( \
        DELETE FROM record_count_deltas WHERE (tenant_id, id) IN \
            (SELECT tenant_id, id FROM record_count_deltas LIMIT $1) \
        RETURNING tenant_id, kind, delta) \
     INSERT INTO record_counts (tenant_id, kind, n) \
     SELECT tenant_id, kind, SUM(delta) FROM moved GROUP BY tenant_id, kind ORDER BY tenant_id, kind \
     ON CONFLICT (tenant_id, kind) DO UPDATE SET n = record_counts.n + EXCLUDED.n";

/// Counts of purged tenants, left by a write that committed after the purge: nobody reads them.
const FORGET_PURGED: [&str; 2] = [
    "DELETE FROM record_count_deltas WHERE tenant_id IN (SELECT id FROM tenants WHERE purged_at IS NOT NULL)",
    "DELETE FROM record_counts WHERE tenant_id IN (SELECT id FROM tenants WHERE purged_at IS NOT NULL)",
];

/// PostgreSQL: folds pending deltas into the base counts; returns how many base counts changed,
/// `None` when another replica is compacting. SQLite keeps no deltas: `Some(0)`.
pub async fn compact(db: &Db) -> StoreResult<Option<u64>> {
    let Db::Postgres(pool) = db else { return Ok(Some(0)) };
    let mut tx = pool.begin_all().await?;
    let locked: bool =
        sqlx::query("SELECT pg_try_advisory_xact_lock($1)").bind(COMPACT_LOCK).fetch_one(&mut *tx).await?.try_get(0)?;
    if !locked {
        tx.rollback().await?;
        return Ok(None);
    }
    let mut folded = 0;
    // Until a batch finds nothing pending, but a bounded number of them under a steady stream of
    // writes (the next run goes on).
    for _ in 0..COMPACT_BATCHES {
        let changed = sqlx::query(FOLD).bind(COMPACT_BATCH).execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            break;
        }
        folded += changed;
    }
    for sql in FORGET_PURGED {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Some(folded))
}

/// True once the pool is closed (the process is shutting down).
pub fn closed(db: &Db) -> bool {
    with_pool!(db, pool => pool.is_closed())
}
