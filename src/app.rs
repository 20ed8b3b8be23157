//! Application state and the router.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::audit::AuditWriter;
use crate::clock::Clock;
use crate::crypto::{KeyRing, TenantKeys};
use crate::http::context::Principal;
use crate::http::limits::{self, BodyRule, Gate, MemoryBudget};
use crate::http::metrics::{self, Metrics};
use crate::http::rate::{self, RateLimits, RateSettings};
use crate::http::{ApiError, auth, status};
use crate::store::{self, Db};
use crate::tenants::TenantId;
use crate::users::inserts::UserInserts;

/// Tunables that handlers consult.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest lifetime a user record may be given, in seconds (longer requests are capped).
    pub max_user_retention: i64,
    /// Longest lifetime a session may be given, in seconds (longer requests are capped; a
    /// session upserted without a lifetime gets exactly this, so none lives forever).
    pub max_session_retention: i64,
    /// Longest lifetime a shared record may be given, in seconds (longer requests are capped; a
    /// record created without `finaltime` gets exactly this).
    pub max_shared_record_retention: i64,
    /// Longest lifetime a format-preserving token may be given, in seconds (longer requests are
    /// capped; a token created without a lifetime does not expire).
    pub max_token_retention: i64,
    /// Superseded profile versions kept per user.
    pub keep_versions: i64,
    /// How long a bulk `unlockuuid` stays valid, in seconds (Databunker: 60).
    pub bulk_unlock_ttl: i64,
    /// Largest body of a public operation (served without a token), in bytes.
    pub public_body_limit: usize,
    /// Largest body of an ordinary operation, in bytes.
    pub body_limit: usize,
    /// Largest body of a bulk or file operation ([`crate::http::limits::LARGE`]), in bytes.
    pub large_body_limit: usize,
    /// Memory that request bodies being decoded may reserve together, in bytes.
    pub request_memory: usize,
    /// Requests handled at once; more are refused with 503.
    pub max_in_flight: usize,
    /// Largest record (profile, app record, session, agreement) once serialised, in bytes.
    pub max_record_size: usize,
    /// Most operations in one JSON Patch.
    pub max_patch_operations: usize,
    /// Most records (or users) in one bulk call.
    pub max_bulk_records: usize,
    /// Longest a request may run.
    pub request_timeout: Duration,
    /// Largest file `FileCreate` accepts, in decoded bytes.
    pub max_file_size: u64,
    /// Directory for file content (ciphertext blobs); `None` keeps file content in the database.
    pub file_dir: Option<std::path::PathBuf>,
    /// Rate limits per client address.
    pub rate: RateSettings,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_user_retention: 10 * 365 * 86_400,
            // Databunker's shipped `max_session_retention_period` is "1h".
            max_session_retention: 3_600,
            // Databunker's shipped `max_shareable_record_retention_period` is "1m".
            max_shared_record_retention: 30 * 86_400,
            max_token_retention: 10 * 365 * 86_400,
            keep_versions: 10,
            bulk_unlock_ttl: 60,
            public_body_limit: 4 * 1024,
            body_limit: 1024 * 1024,
            large_body_limit: 64 * 1024 * 1024,
            request_memory: 256 * 1024 * 1024,
            max_in_flight: 1024,
            max_record_size: 1024 * 1024,
            max_patch_operations: 256,
            max_bulk_records: 10_000,
            request_timeout: Duration::from_secs(60),
            // 32 MiB of content is about 43 MB of base64, under the default body limit.
            max_file_size: 32 * 1024 * 1024,
            file_dir: None,
            rate: RateSettings::default(),
        }
    }
}

/// One `/v2` operation: its name and handler.
pub struct Operation {
    /// PascalCase name, the last path segment.
    pub name: &'static str,
    /// The POST handler.
    pub handler: MethodRouter<AppState>,
}

/// Declares an operation.
pub fn op<H, T>(name: &'static str, handler: H) -> Operation
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    Operation { name, handler: post(handler) }
}

/// Every authenticated operation, by domain.
pub fn operations() -> Vec<Operation> {
    [
        crate::users::operations(),
        crate::appdata::operations(),
        crate::agreements::operations(),
        crate::legal::operations(),
        crate::sessions::operations(),
        crate::shared::operations(),
        crate::tokens::operations(),
        crate::requests::operations(),
        crate::bulk::operations(),
        crate::bulk::by_domain::operations(),
        crate::search::operations(),
        crate::audit::operations(),
        crate::system::operations(),
        crate::files::operations(),
        crate::tenants::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every public operation: routed without authentication (the handler resolves the tenant
/// and writes its own audit event).
pub fn public_operations() -> Vec<Operation> {
    [crate::shared::public_operations(), crate::tenants::public_operations()].into_iter().flatten().collect()
}

/// Shared state of the running vault.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// Storage.
    pub db: Db,
    /// Unwrapped keys.
    pub keys: Arc<KeyRing>,
    /// Group-commit audit writer.
    pub audit: AuditWriter,
    /// Whether the database is reachable (see [`store::health`]).
    pub health: store::Health,
    /// Group commit for `UserCreate`.
    pub user_inserts: UserInserts,
    /// Tunables.
    pub settings: Settings,
    /// Time source.
    pub clock: Clock,
    /// Prometheus instruments.
    pub metrics: Metrics,
    /// Rate limits per client address.
    pub rates: RateLimits,
    operations: HashMap<String, &'static str>,
    principals: RwLock<HashMap<[u8; 32], CachedPrincipal>>,
    tenants: RwLock<HashMap<String, TenantId>>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("backend", &self.db.backend()).finish()
    }
}

/// A verified principal and when it was verified.
type CachedPrincipal = (Arc<Principal>, Instant);

/// How long a verified token is trusted without asking the database again.
const PRINCIPAL_CACHE_TTL: Duration = Duration::from_secs(10);

impl AppState {
    /// Builds the state around an unlocked key ring; starts the group-commit writers.
    pub fn new(db: Db, keys: Arc<KeyRing>, settings: Settings, clock: Clock) -> AppState {
        let operations = operations().into_iter().map(|op| (format!("/v2/{}", op.name), op.name)).collect();
        let rates = RateLimits::new(settings.rate.clone());
        AppState(Arc::new(Inner {
            audit: AuditWriter::spawn(db.clone()),
            user_inserts: UserInserts::spawn(db.clone()),
            health: db.health(),
            db,
            keys,
            settings,
            clock,
            metrics: Metrics::new(),
            rates,
            operations,
            principals: RwLock::new(HashMap::new()),
            tenants: RwLock::new(HashMap::new()),
        }))
    }

    /// The operation routed at `path`, if it is one.
    pub fn operation(&self, path: &str) -> Option<&'static str> {
        self.operations.get(path).copied()
    }

    /// A tenant's keys, unwrapping them on first use.
    pub async fn tenant_keys(&self, tenant: TenantId) -> Result<Arc<TenantKeys>, ApiError> {
        if let Some(keys) = self.keys.cached(tenant) {
            return Ok(keys);
        }
        let stored = self.db.tenant(tenant).vault().tenant_master_keys().await?;
        if stored.is_empty() {
            // Deleted (its keys are destroyed first) or never was.
            return Err(ApiError::not_found("The tenant record was not found"));
        }
        Ok(self.keys.unlock(tenant, &stored)?)
    }

    /// A cached principal for a token digest, if verified recently.
    pub(crate) fn cached_principal(&self, digest: &[u8; 32]) -> Option<Arc<Principal>> {
        let cache = self.principals.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(digest).filter(|(_, at)| at.elapsed() < PRINCIPAL_CACHE_TTL).map(|(p, _)| p.clone())
    }

    /// Remembers a verified principal.
    pub(crate) fn cache_principal(&self, digest: [u8; 32], principal: Arc<Principal>) {
        let mut cache = self.principals.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded by the number of valid tokens in use; stale entries are swept on insert.
        cache.retain(|_, (_, at)| at.elapsed() < PRINCIPAL_CACHE_TTL);
        cache.insert(digest, (principal, Instant::now()));
    }

    /// Forgets the id cached for a tenant name (renamed or deleted).
    pub(crate) fn forget_tenant_name(&self, name: &str) {
        self.tenants.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
    }

    /// Forgets everything cached about a tenant: its name, its keys, its verified tokens.
    pub(crate) fn forget_tenant(&self, tenant: TenantId, name: Option<&str>) {
        self.tenants
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|n, id| *id != tenant && Some(n.as_str()) != name);
        self.principals
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, (p, _)| p.tenant != tenant);
        self.keys.forget(tenant);
    }

    /// The id of a tenant by name.
    pub(crate) async fn tenant_id(&self, name: &str) -> Result<Option<TenantId>, ApiError> {
        if let Some(id) = self.tenants.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name) {
            return Ok(Some(*id));
        }
        let id = store::tenants::id_by_name(&self.db, name).await?;
        if let Some(id) = id {
            self.tenants.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_owned(), id);
        }
        Ok(id)
    }
}

/// Operations whose one call carries up to thousands of records to seal or open.
const LARGE_BATCHES: [&str; 3] = ["UserCreateBulk", "TokenCreateBulk", "UserDeleteBulk"];

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    let budget = MemoryBudget::new(state.settings.request_memory);
    let gate =
        |name: &str, public: bool| Gate { rule: BodyRule::of(&state.settings, name, public), budget: budget.clone() };
    let mut api = Router::new();
    // Calls that hold thousands of records in memory take turns, one per core, so that many
    // clients bulk-loading at once queue (their bodies unread) instead of multiplying the
    // vault's memory; the answer's wait counts against the request timeout like any other.
    let bulk_gate = Arc::new(tokio::sync::Semaphore::new(
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).clamp(1, 8),
    ));
    for operation in operations() {
        let mut handler = operation.handler;
        if LARGE_BATCHES.contains(&operation.name) {
            handler = handler.layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(bulk_gate.clone()));
        }
        handler = handler.layer(axum::middleware::from_fn_with_state(gate(operation.name, false), limits::admit));
        api = api.route(&format!("/v2/{}", operation.name), handler);
    }
    let api = api.route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate));
    let mut public = Router::new();
    for operation in public_operations() {
        let handler = operation
            .handler
            .layer(axum::middleware::from_fn_with_state(gate(operation.name, true), limits::admit))
            .layer(axum::middleware::from_fn_with_state(state.rates.clone(), rate::public));
        public = public.route(&format!("/v2/{}", operation.name), handler);
    }
    let public = public.route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::http::cutoff::guard));
    // Beyond this many calls in flight, more are refused at once (503) rather than queued:
    // health checks and metrics stay outside the bound.
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async { ApiError::Overloaded }))
        .load_shed()
        .concurrency_limit(state.settings.max_in_flight.max(1));
    let v2 = Router::new().merge(api).merge(public).layer(shed);
    let timeout = state.settings.request_timeout;
    Router::new()
        .merge(v2)
        .route("/status", get(status::status))
        .route("/status/", get(status::status))
        .route("/metrics", get(metrics::handler).with_state(state.metrics.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.body_limit))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.rates.clone(), rate::identify))
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async { ApiError::Timeout }))
                .timeout(timeout),
        )
        .with_state(state)
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let message = if uri.path().starts_with("/v2/") { "The API request was not found" } else { "endpoint is missing" };
    ApiError::not_found(message).into_response()
}

/// The router behind a path fix-up: clients whose base URL ends in `/` send `//v2/...`.
pub type App = tower::util::MapRequest<Router, fn(axum::extract::Request) -> axum::extract::Request>;

/// The application as served and as tested.
pub fn app(state: AppState) -> App {
    tower::util::MapRequest::new(router(state), collapse_leading_slashes as fn(_) -> _)
}

fn collapse_leading_slashes(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if path.starts_with("//") {
        let fixed = format!("/{}", path.trim_start_matches('/'));
        let mut parts = req.uri().clone().into_parts();
        let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
        if let Ok(pq) = format!("{fixed}{query}").parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}
