//! Test harness: a vault on a fresh database, and typed helpers to call it.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bunker::app::{self, App};
use bunker::clock::Clock;
use bunker::crypto::WrappingKey;
use bunker::state::{AppState, Settings};
use bunker::store::{self, Db, Location};
use bunker::vault;
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::Connection;
use tower::ServiceExt;

/// Where PostgreSQL tests connect (the server must be up: these tests never skip silently).
pub fn pg_admin_url() -> String {
    std::env::var("BUNKER_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The storage behind one test vault; dropped after the test.
pub enum Storage {
    Sqlite { _dir: tempfile::TempDir, path: std::path::PathBuf },
    Postgres { name: String },
}

/// A running vault (without a network) on a fresh database.
pub struct TestVault {
    pub app: App,
    pub state: AppState,
    pub root: String,
    pub wrapping: WrappingKey,
    pub shares: Vec<String>,
    pub storage: Storage,
    pub backend: Backend,
    /// The same database as its administrator sees it (PostgreSQL: a superuser, not bound by
    /// row-level security), for tests that inspect what is stored.
    inspect: Db,
}

/// Response of a call.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    /// Asserts `status:ok` with HTTP 200 and returns the body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        assert_eq!(self.body["status"], "ok", "body: {}", self.body);
        self.body
    }

    /// Asserts an error envelope with this HTTP status and message.
    #[track_caller]
    pub fn error(self, status: u16, message: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["status"], "error", "body: {}", self.body);
        assert_eq!(self.body["message"], message, "body: {}", self.body);
    }
}

impl TestVault {
    /// A test vault around a state built by hand (e.g. behind a proxy).
    pub fn assemble(
        state: AppState,
        root: String,
        wrapping: WrappingKey,
        shares: Vec<String>,
        storage: Storage,
    ) -> TestVault {
        let backend = match storage {
            Storage::Sqlite { .. } => Backend::Sqlite,
            Storage::Postgres { .. } => Backend::Postgres,
        };
        let inspect = inspector(&state.db, &storage);
        TestVault { app: app::app(state.clone()), state, root, wrapping, shares, storage, backend, inspect }
    }

    /// A vault on `backend` with default settings.
    pub async fn new(backend: Backend) -> TestVault {
        TestVault::with_settings(backend, Settings::default()).await
    }

    /// A vault on `backend` with the given settings.
    pub async fn with_settings(backend: Backend, settings: Settings) -> TestVault {
        let (location, storage) = fresh_storage(backend).await;
        let wrapping = WrappingKey::generate();
        let root = bunker::crypto::secrets::random_uuid_string();
        let db = store::connect(&location, 4).await.expect("connect");
        let clock = Clock::default();
        let (keys, secrets) = vault::open(&db, &wrapping, Some(&root), clock.now()).await.expect("open vault");
        let shares = secrets.expect("first start").shares;
        let state = AppState::new(db, keys, settings, clock);
        let inspect = inspector(&state.db, &storage);
        TestVault { app: app::app(state.clone()), state, root, wrapping, shares, storage, backend, inspect }
    }

    /// Reopens the same database as a restarted process would, with `wrapping`.
    pub async fn reopen(&self, wrapping: &WrappingKey) -> Result<TestVault, vault::VaultError> {
        let db = store::connect(&self.location(), 4).await.expect("connect");
        let clock = Clock::default();
        let (keys, secrets) = vault::open(&db, wrapping, None, clock.now()).await?;
        assert!(secrets.is_none(), "a reopened vault must not initialise again");
        let state = AppState::new(db, keys, Settings::default(), clock);
        Ok(TestVault {
            inspect: self.inspect.clone(),
            app: app::app(state.clone()),
            state,
            root: self.root.clone(),
            wrapping: wrapping.clone(),
            shares: self.shares.clone(),
            storage: match &self.storage {
                Storage::Sqlite { path, .. } => {
                    Storage::Sqlite { _dir: tempfile::tempdir().expect("tmp"), path: path.clone() }
                }
                Storage::Postgres { name } => Storage::Postgres { name: name.clone() },
            },
            backend: self.backend,
        })
    }

    /// Reopens with `wrapping`, expecting the vault to refuse; returns why.
    pub async fn reopen_err(&self, wrapping: &WrappingKey) -> vault::VaultError {
        match self.reopen(wrapping).await {
            Ok(opened) => {
                opened.close().await;
                panic!("the vault opened with this wrapping key");
            }
            Err(err) => err,
        }
    }

    /// The storage location (to reopen it or inspect it).
    pub fn location(&self) -> Location {
        match &self.storage {
            Storage::Sqlite { path, .. } => Location::SqliteFile(path.clone()),
            Storage::Postgres { name } => Location::parse(&pg_serving_url(name)).expect("pg url"),
        }
    }

    /// The vault's database as its administrator sees it (on PostgreSQL a superuser connection,
    /// which row-level security does not bind), for tests that inspect what is stored.
    pub fn db(&self) -> &Db {
        &self.inspect
    }

    /// The application clock (tests move it instead of sleeping).
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// Calls `/v2/{op}` as root.
    pub async fn call(&self, op: &str, body: Value) -> Answer {
        self.request(&format!("/v2/{op}"), Some(&self.root), None, Some(body.to_string().into_bytes())).await
    }

    /// Calls `/v2/{op}` with an explicit token and tenant header.
    pub async fn call_as(&self, op: &str, token: Option<&str>, tenant: Option<&str>, body: Value) -> Answer {
        self.request(&format!("/v2/{op}"), token, tenant, Some(body.to_string().into_bytes())).await
    }

    /// Sends a raw request; `body: None` sends no body at all (as PHP does).
    pub async fn request(
        &self,
        path: &str,
        token: Option<&str>,
        tenant: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut builder = Request::builder().method("POST").uri(path).header("content-type", "application/json");
        if let Some(token) = token {
            builder = builder.header("x-bunker-token", token);
        }
        if let Some(tenant) = tenant {
            builder = builder.header("x-bunker-tenant", tenant);
        }
        let request = builder.body(body.map_or_else(Body::empty, Body::from)).expect("request");
        self.send(request).await
    }

    /// Sends any request and decodes the JSON answer.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("non-JSON answer ({status}): {}", String::from_utf8_lossy(&bytes)));
        Answer { status, body }
    }

    /// A GET returning the raw text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let request = Request::builder().uri(path).body(Body::empty()).expect("request");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Creates a user and returns its token.
    pub async fn create_user(&self, profile: Value) -> String {
        let body = self.call("UserCreate", serde_json::json!({ "profile": profile })).await.ok();
        body["token"].as_str().expect("token").to_owned()
    }

    /// Every value stored in the database, as text (SQLite: the raw file bytes too).
    pub async fn dump(&self) -> Vec<u8> {
        match &self.storage {
            Storage::Sqlite { path, .. } => {
                // Checkpoint the WAL so the main file holds everything, then read all files.
                if let Db::Sqlite(pool) = self.db() {
                    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.expect("checkpoint");
                }
                let mut out = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = path.as_os_str().to_owned();
                    name.push(suffix);
                    if let Ok(bytes) = std::fs::read(&name) {
                        out.extend(bytes);
                    }
                }
                out
            }
            Storage::Postgres { name } => {
                let output = std::process::Command::new("pg_dump")
                    .args(["--data-only", "--no-owner", &pg_url(name)])
                    .output()
                    .expect("pg_dump runs");
                assert!(output.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&output.stderr));
                output.stdout
            }
        }
    }

    /// Closes a vault that shares its database with another one (e.g. from [`TestVault::reopen`]):
    /// the pool is closed, the database is left for the owner's [`TestVault::cleanup`].
    pub async fn close(self) {
        let TestVault { state, app, .. } = self;
        drop(app);
        state.db.close().await;
    }

    /// Runs one statement on this vault's database as its administrator (for tests that change
    /// what is stored behind the vault's back, or make the database refuse a write).
    pub async fn exec(&self, sql: &str) {
        match self.db() {
            Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    /// Runs a query returning one integer (e.g. `SELECT COUNT(*) ...`) on this vault's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Row;
        match self.db() {
            Db::Sqlite(pool) => sqlx::query(sql).fetch_one(pool).await.expect("query").try_get(0).expect("integer"),
            Db::Postgres(pool) => sqlx::query(sql).fetch_one(pool).await.expect("query").try_get(0).expect("integer"),
        }
    }

    /// Drops the PostgreSQL database of this test.
    pub async fn cleanup(self) {
        let TestVault { state, storage, app, inspect, .. } = self;
        drop(app);
        state.db.close().await;
        drop(state);
        inspect.close().await;
        if let Storage::Postgres { name } = storage {
            drop_pg(&name).await;
        }
    }
}

fn pg_url(name: &str) -> String {
    let admin = pg_admin_url();
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => admin,
    }
}

async fn fresh_storage(backend: Backend) -> (Location, Storage) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("bunker.db");
            (Location::SqliteFile(path.clone()), Storage::Sqlite { _dir: dir, path })
        }
        Backend::Postgres => {
            let name = format!("bunker_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap_or_else(|err| {
                panic!("PostgreSQL tests need a server at {} (set BUNKER_TEST_PG_URL): {err}", pg_admin_url())
            });
            serving_role(&mut admin).await;
            sqlx::query(&format!("CREATE DATABASE {name} OWNER {SERVING_ROLE}"))
                .execute(&mut admin)
                .await
                .expect("create database");
            admin.close().await.ok();
            (Location::parse(&pg_serving_url(&name)).expect("url"), Storage::Postgres { name })
        }
    }
}

/// The role the test vaults serve with on PostgreSQL: neither superuser nor BYPASSRLS, and the
/// owner of its database (it runs the migrations), so row-level security binds every PostgreSQL
/// test as it binds a production vault.
pub const SERVING_ROLE: &str = "bunker_rls";

async fn serving_role(admin: &mut sqlx::PgConnection) {
    // Tests create it concurrently: whichever loses the race finds it there.
    let create = format!(
        "DO $$ BEGIN CREATE ROLE {SERVING_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    sqlx::query(&create).execute(&mut *admin).await.expect("serving role");
}

/// The URL the vault serves with: database `name` as [`SERVING_ROLE`].
pub fn pg_serving_url(name: &str) -> String {
    let url = pg_url(name);
    let (scheme, rest) = url.split_once("://").expect("postgres URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{SERVING_ROLE}@{host}")
}

/// The administrator's view of a test vault's database.
fn inspector(db: &Db, storage: &Storage) -> Db {
    match storage {
        Storage::Sqlite { .. } => db.clone(),
        Storage::Postgres { name } => Db::Postgres(
            sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_lazy(&pg_url(name)).expect("admin pool"),
        ),
    }
}

async fn drop_pg(name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
        admin.close().await.ok();
    }
}

/// Runs a test body once per backend, on a fresh vault, dropping the database afterwards.
/// `settings = f` builds the vault's settings with `f(fresh temporary directory)` (see
/// [`run_with`]).
#[macro_export]
macro_rules! both {
    ($(#[$meta:meta])* $name:ident, settings = $settings:path, |$vault:ident| $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body<'a>(
                $vault: &'a $crate::common::TestVault,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
                Box::pin(async move $body)
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_with($crate::common::Backend::Sqlite, $settings, body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_with($crate::common::Backend::Postgres, $settings, body).await;
            }
        }
    };
    ($(#[$meta:meta])* $name:ident, |$vault:ident| $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body<'a>(
                $vault: &'a $crate::common::TestVault,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
                Box::pin(async move $body)
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run($crate::common::Backend::Sqlite, body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run($crate::common::Backend::Postgres, body).await;
            }
        }
    };
}

/// A boxed test body borrowing the vault.
pub type TestBody = for<'a> fn(&'a TestVault) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Runs one body on a fresh vault and always cleans up, re-raising a failure afterwards.
pub async fn run(backend: Backend, body: TestBody) {
    use futures::FutureExt;
    let vault = TestVault::new(backend).await;
    let outcome = std::panic::AssertUnwindSafe(body(&vault)).catch_unwind().await;
    vault.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs one body on a fresh vault with the settings `settings` builds from a fresh temporary
/// directory (e.g. as the file directory), removed after the test.
pub async fn run_with(backend: Backend, settings: fn(&std::path::Path) -> Settings, body: TestBody) {
    use futures::FutureExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = TestVault::with_settings(backend, settings(dir.path())).await;
    let outcome = std::panic::AssertUnwindSafe(body(&vault)).catch_unwind().await;
    vault.cleanup().await;
    drop(dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Asserts that none of `values` occurs in a [`TestVault::dump`], as is or hex-encoded (`pg_dump`
/// prints BYTEA as hex).
#[track_caller]
pub fn assert_absent(dump: &[u8], values: &[&str]) {
    for value in values {
        for needle in [value.as_bytes().to_vec(), hex::encode(value).into_bytes()] {
            assert!(!dump.windows(needle.len()).any(|w| w == needle.as_slice()), "{value} is stored in clear");
        }
    }
}
