//! Persistence: the only place with SQL.
//!
//! Both backends run the same statements: SQL is written once with `$N` placeholders (which
//! sqlx accepts for SQLite too) and [`with_pool!`] compiles each store function for both pool
//! types. DDL differs and lives in one migrations folder per backend.

pub mod accounts;
pub mod agreements;
pub mod appdata;
pub mod audit;
pub mod audit_chain;
pub mod bulk;
pub mod checkpoint;
pub mod connectors;
pub mod console;
pub mod counts;
pub mod every_tenant;
pub mod files;
pub mod groups;
pub mod health;
pub mod key_rotation;
pub mod legal;
pub mod licence;
pub mod portal;
pub mod requests;
pub mod retention;
pub mod roles;
mod scope;
pub mod search;
pub mod sessions;
pub mod shared;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod vault;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

use crate::tenants::TenantId;

pub use health::Health;
pub use scope::TenantScope;

/// A connection pool on one of the supported backends.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite (file or in-memory).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend `$db` is.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Storage failures as the domain sees them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A UNIQUE constraint rejected the write.
    #[error("unique constraint violated")]
    Conflict,
    /// The row to change no longer exists.
    #[error("record not found")]
    NotFound,
    /// The approval request a change was to resolve is no longer open.
    #[error("user request already closed")]
    RequestClosed,
    /// The wrapping key in force is not this process's (rotated through another replica, or by
    /// a concurrent rotation): nothing was written.
    #[error("the wrapping key in force has changed")]
    WrappingKeyChanged,
    /// The recovery wrapping the shares opened was replaced by a concurrent recovery-key
    /// rotation, or dropped by a use of the new shares: nothing was written.
    #[error("the recovery key has changed")]
    RecoveryKeyChanged,
    /// A wrapping-key rotation is pending: no new master key is wrapped until it is completed
    /// (it would lack the new wrapping), so nothing was written.
    #[error("a wrapping-key rotation is pending")]
    RotationPending,
    /// Earlier work on the same thing is still running (the message says what, and when to
    /// retry); nothing was written.
    #[error("{0}")]
    Busy(&'static str),
    /// The change breaks a rule of the records it touches (the message says which, without
    /// request values), e.g. a group placed below itself.
    #[error("{0}")]
    Invalid(&'static str),
    /// Anything else from the database driver.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// True when the database could not be reached or did not answer in time (see
    /// [`is_unavailable`]): the caller is told to retry, not that the vault failed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Database(err) if is_unavailable(err))
    }
}

/// True for driver errors that mean "the database is away or too slow": no pool slot in time,
/// a connection refused, reset or cut mid-answer, a server shutting down or not accepting
/// connections yet, a statement cancelled by `statement_timeout`, a SQLite file whose write
/// lock stayed taken for the whole busy timeout.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's SQLSTATE class 08: connection exception; 57P01-57P03: shutdown, crash,
        // starting up; 57014: query cancelled (statement_timeout); 53300: too many connections.
        sqlx::Error::Database(db) => {
            let pg_away = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some_and(|pg| {
                let code = pg.code();
                code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "53300")
            });
            pg_away || db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some_and(sqlite_busy)
        }
        _ => false,
    }
}

/// SQLite's SQLITE_BUSY (5) and its extended codes: "database is locked" once the busy
/// handler gave up. A write refused so is load to retry, not a failure of the vault.
fn sqlite_busy(err: &sqlx::sqlite::SqliteError) -> bool {
    use sqlx::error::DatabaseError;
    err.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == 5)
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(err),
        }
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file.
    SqliteFile(std::path::PathBuf),
    /// A private in-memory SQLite database (demo mode): one connection, gone on exit.
    SqliteMemory,
    /// PostgreSQL connection options.
    Postgres(Box<PgConnectOptions>),
}

impl Location {
    /// Parses `sqlite://PATH`, `sqlite::memory:` or `postgres://...`.
    pub fn parse(url: &str) -> Option<Location> {
        let url = url.trim();
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            Some(Location::SqliteMemory)
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            (!path.is_empty()).then(|| Location::SqliteFile(path.into()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnectOptions::from_str(url).ok().map(|opts| Location::Postgres(Box::new(opts)))
        } else {
            None
        }
    }

    /// A description safe for logs (never the password).
    pub fn describe(&self) -> String {
        match self {
            Location::SqliteFile(path) => format!("SQLite file {}", path.display()),
            Location::SqliteMemory => "in-memory SQLite".to_owned(),
            Location::Postgres(opts) => {
                format!("PostgreSQL {}:{}/{}", opts.get_host(), opts.get_port(), opts.get_database().unwrap_or(""))
            }
        }
    }
}

/// The SQLite file pool's size unless `BUNKER_DB_MAX_CONNECTIONS` says otherwise.
pub const SQLITE_CONNECTIONS: u32 = 4;

/// How the pool talks to its database.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections open at once (PostgreSQL).
    pub max_connections: u32,
    /// Most connections open at once to a SQLite file. Each is a thread of the vault's with its
    /// own page cache and statements, and SQLite takes one writer at a time: a few serve a
    /// machine's cores better than many (measured in BENCHMARKS.md).
    pub sqlite_max_connections: u32,
    /// PostgreSQL: longest wait for a pool slot or a new connection (`BUNKER_DB_TIMEOUT`).
    pub timeout: Duration,
    /// PostgreSQL: `statement_timeout` and `idle_in_transaction_session_timeout` of every
    /// connection; zero for none (`BUNKER_DB_STATEMENT_TIMEOUT`).
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            max_connections: 16,
            sqlite_max_connections: SQLITE_CONNECTIONS,
            timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// Opens a pool of at most `max_connections` with the default timeouts and runs the migrations.
pub async fn connect(location: &Location, max_connections: u32) -> Result<Db, sqlx::Error> {
    let settings = PoolSettings { max_connections, sqlite_max_connections: max_connections, ..PoolSettings::default() };
    connect_with(location, &settings).await
}

/// Opens a pool and runs the migrations of its backend.
pub async fn connect_with(location: &Location, settings: &PoolSettings) -> Result<Db, sqlx::Error> {
    let db = open(location, settings).await?;
    db.migrate().await?;
    Ok(db)
}

/// Opens a pool without migrating, and checks that every migration of this build is applied
/// (a serving role without DDL rights; `bunker migrate` runs them as the owner).
pub async fn connect_migrated(location: &Location, settings: &PoolSettings) -> Result<Db, sqlx::Error> {
    let db = open(location, settings).await?;
    let latest = match &db {
        Db::Sqlite(_) => sqlx::migrate!("./migrations/sqlite").iter().map(|m| m.version).max(),
        Db::Postgres(_) => sqlx::migrate!("./migrations/postgres").iter().map(|m| m.version).max(),
    };
    let applied: Option<i64> = with_pool!(&db, pool => {
        sqlx::query("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(pool).await.and_then(|row| row.try_get(0))
    })
    .unwrap_or(None);
    if applied < latest {
        db.close().await;
        return Err(sqlx::Error::Configuration(
            format!(
                "the database is at migration {} but this vault needs {}: run `bunker migrate` with the owner's URL first",
                applied.unwrap_or(0),
                latest.unwrap_or(0)
            )
            .into(),
        ));
    }
    Ok(db)
}

/// `PRAGMA cache_size` of each connection to a SQLite file: negative, in KiB.
const SQLITE_CACHE_SIZE: &str = "-512";

async fn open(location: &Location, settings: &PoolSettings) -> Result<Db, sqlx::Error> {
    let db = match location {
        Location::SqliteMemory => {
            // One connection: every new connection to ":memory:" would be a different database.
            let opts =
                SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true).pragma("secure_delete", "ON");
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts)
                .await?;
            Db::Sqlite(pool)
        }
        Location::SqliteFile(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .foreign_keys(true)
                // Deleted rows are overwritten with zeros, not left in free space (see
                // [`checkpoint`] for the write-ahead log).
                .pragma("secure_delete", "ON")
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the response leaves, as the audit promises.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                // Each pooled connection keeps a page cache of its own, full after a bulk call:
                // 512 KiB instead of SQLite's 2 MB took 3–5 MB off the peak, with reads and
                // writes no slower at 10,000 users, nor reads at 100,000 (BENCHMARKS.md, "A 512
                // KiB page cache"). Pages it drops are read back from the system's file cache.
                .pragma("cache_size", SQLITE_CACHE_SIZE);
            let size = settings.sqlite_max_connections.max(1);
            let pool = SqlitePoolOptions::new().max_connections(size).connect_with(opts).await?;
            Db::Sqlite(pool)
        }
        Location::Postgres(opts) => Db::Postgres(connect_postgres(opts, settings).await?),
    };
    Ok(db)
}

/// The PostgreSQL pool: short waits, server-side time limits, and the health gate's hooks.
async fn connect_postgres(opts: &PgConnectOptions, settings: &PoolSettings) -> Result<PgPool, sqlx::Error> {
    let timeout = settings.timeout.max(Duration::from_millis(100));
    let limit = settings.statement_timeout.as_millis().to_string();
    // sqlx sets no TCP keepalive on its sockets (and offers no option for it): the server's
    // own keepalives at least let PostgreSQL end the sessions of a vault that vanished, and
    // with them their locks and open transactions.
    let opts = opts.clone().options([
        ("statement_timeout", limit.as_str()),
        ("idle_in_transaction_session_timeout", limit.as_str()),
        ("tcp_keepalives_idle", "30"),
        ("tcp_keepalives_interval", "10"),
        ("tcp_keepalives_count", "3"),
    ]);
    let times = health::MonitorTimes { connect: timeout, ping: timeout / 2 };
    let gate = health::watch_postgres(opts.clone(), times);
    let (acquiring, releasing) = (gate.clone(), gate.clone());
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections.max(1))
        // No round trip to check a connection before every use: that doubled the
        // database round trips of a read. A connection that broke is found by the
        // statement that uses it, which fails, and the pool then drops it; those opened
        // before an outage was noticed are dropped here without a round trip.
        .test_before_acquire(false)
        .before_acquire(move |_, meta| {
            let fresh = !acquiring.is_stale(meta.age);
            Box::pin(async move { Ok(fresh) })
        })
        // While the database is away a released connection is closed at once: one cut short
        // mid-statement would otherwise wait for its answer (sqlx pings it on release, with no
        // time limit) until TCP gives up, holding its pool slot after the server is back.
        .after_release(move |_, _| {
            let keep = !releasing.is_down();
            Box::pin(async move { Ok(keep) })
        })
        .acquire_timeout(timeout)
        .connect_with(opts)
        .await?;
    health::register(pool_key(&pool), &gate);
    Ok(pool)
}

/// Identifies a PostgreSQL pool for [`health::lookup`].
fn pool_key(pool: &PgPool) -> usize {
    std::sync::Arc::as_ptr(&pool.connect_options()) as usize
}

impl Db {
    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => {
                // Migrations (an index over millions of rows, a wait for another replica's
                // migration lock) may take longer than a request's statement: no limit on this
                // connection, which is closed afterwards rather than returned with it lifted.
                let mut conn = pool.acquire().await?;
                conn.close_on_drop();
                sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await?;
                sqlx::migrate!("./migrations/postgres").run_direct(&mut *conn).await?;
            }
        }
        Ok(())
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    /// [`ping`](Self::ping), false if the answer takes longer than `limit`.
    pub async fn ping_within(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.ping()).await.unwrap_or(false)
    }

    /// This pool's view of whether its database is reachable.
    pub fn health(&self) -> Health {
        match self {
            Db::Sqlite(_) => Health::always_up(),
            Db::Postgres(pool) => health::lookup(pool_key(pool)),
        }
    }

    /// PostgreSQL: the name of the role the vault is connected as, if row-level security does
    /// not bind it (a superuser or a BYPASSRLS role); `None` when it does, and on SQLite.
    pub async fn bypasses_row_security(&self) -> Result<Option<String>, sqlx::Error> {
        let Db::Postgres(pool) = self else { return Ok(None) };
        let row = sqlx::query(
            "SELECT current_user::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(pool)
        .await?;
        let (role, bypasses): (String, bool) = (row.try_get(0)?, row.try_get(1)?);
        Ok(bypasses.then_some(role))
    }

    /// Short backend name for logs and tests.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.health().stop();
        with_pool!(self, pool => pool.close().await)
    }
}

/// Opens a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so that
/// two read-then-write transactions cannot deadlock on the lock upgrade.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Connections and transactions bound to one tenant, for PostgreSQL's row-level security: the
/// policies of every table of tenant data compare `tenant_id` with the `bunker.tenant` setting
/// (migration 0014), so a statement that forgot its tenant still sees only this tenant's rows.
/// On SQLite (no row-level security) these are plain connections and transactions.
pub(crate) trait ScopedPool: BeginWrite {
    /// A connection whose statements see only `tenant`'s rows (the setting lasts for the
    /// session; every scoped use sets it again first).
    async fn conn_for(&self, tenant: TenantId) -> Result<sqlx::pool::PoolConnection<Self::Database>, sqlx::Error>;
    /// A write transaction that sees and writes only `tenant`'s rows.
    async fn begin_for(&self, tenant: TenantId) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
    /// A write transaction of the vault's own cross-tenant work (audit group commit, the sweeper):
    /// every tenant's rows.
    async fn begin_all(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl ScopedPool for SqlitePool {
    async fn conn_for(&self, _: TenantId) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
        self.acquire().await
    }
    async fn begin_for(&self, _: TenantId) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_write().await
    }
    async fn begin_all(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_write().await
    }
}

/// The setting the row-level security policies read.
const TENANT_SETTING: &str = "SELECT set_config('bunker.tenant', $1, $2)";
/// Its value for the vault's own cross-tenant work.
pub(crate) const ALL_TENANTS: &str = "*";

impl ScopedPool for PgPool {
    async fn conn_for(&self, tenant: TenantId) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, sqlx::Error> {
        let mut conn = self.acquire().await?;
        sqlx::query(TENANT_SETTING).bind(tenant.get().to_string()).bind(false).execute(&mut *conn).await?;
        Ok(conn)
    }
    async fn begin_for(&self, tenant: TenantId) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query(TENANT_SETTING).bind(tenant.get().to_string()).bind(true).execute(&mut *tx).await?;
        Ok(tx)
    }
    async fn begin_all(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query(TENANT_SETTING).bind(ALL_TENANTS).bind(true).execute(&mut *tx).await?;
        Ok(tx)
    }
}

/// `$first, $first+1, ...` placeholders for `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert!(matches!(Location::parse("sqlite::memory:"), Some(Location::SqliteMemory)));
        assert!(
            matches!(Location::parse("sqlite://data/b.db"), Some(Location::SqliteFile(p)) if p == std::path::Path::new("data/b.db"))
        );
        assert!(matches!(Location::parse("postgres://u@h/db"), Some(Location::Postgres(_))));
        assert!(Location::parse("mysql://x").is_none());
        let described = Location::parse("postgres://u:secretpw@h:5433/db").map(|l| l.describe());
        assert_eq!(described.as_deref(), Some("PostgreSQL h:5433/db"));
    }

    #[test]
    fn unreachable_databases_are_told_apart_from_failures() {
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::from(sqlx::Error::Io(reset)).is_unavailable());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::NotFound.is_unavailable());
    }

    #[tokio::test]
    async fn a_sqlite_file_locked_past_the_busy_timeout_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("busy.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_millis(50));
        let pool = SqlitePoolOptions::new().max_connections(2).connect_with(opts).await.expect("pool");
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&pool).await.expect("table");
        let holder = pool.begin_with("BEGIN IMMEDIATE").await.expect("the write lock");
        let err = pool.begin_with("BEGIN IMMEDIATE").await.expect_err("the lock is taken");
        assert!(is_unavailable(&err), "{err}");
        assert!(StoreError::from(err).is_unavailable());
        drop(holder);
        // Other SQLite errors are not.
        let err = sqlx::query("INSERT INTO missing VALUES (1)").execute(&pool).await.expect_err("no table");
        assert!(!is_unavailable(&err), "{err}");
        pool.close().await;
    }

    #[tokio::test]
    async fn every_connection_to_a_sqlite_file_is_durable_and_keeps_a_small_page_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::SqliteFile(dir.path().join("vault.db"));
        let settings = PoolSettings { sqlite_max_connections: 3, ..PoolSettings::default() };
        let Db::Sqlite(pool) = open(&location, &settings).await.expect("open") else { panic!("not SQLite") };
        // Three at once: each is a connection of its own, opened with the same settings.
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(pool.acquire().await.expect("a connection"));
        }
        for conn in &mut conns {
            let cache: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut **conn).await.expect("cache");
            assert_eq!(cache, -512);
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut **conn).await.expect("mode");
            assert_eq!(mode, "wal");
            // 2 = FULL: a commit is on disk before it is acknowledged.
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut **conn).await.expect("sync");
            assert_eq!(sync, 2);
        }
        drop(conns);
        pool.close().await;
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }
}
