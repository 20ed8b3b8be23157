//! The router: every domain's operations behind admission, authentication and the transport
//! layers.

use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::http::limits::{self, BodyRule, Gate, MemoryBudget};
use crate::http::{ApiError, Operation, auth, metrics, rate, status};
use crate::state::AppState;

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
        crate::keys::operations(),
        crate::files::operations(),
        crate::tenants::operations(),
        crate::access::operations(),
        crate::connectors::operations(),
        crate::accounts::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every public operation: routed without authentication (the handler resolves the tenant
/// and writes its own audit event).
pub fn public_operations() -> Vec<Operation> {
    [
        crate::shared::public_operations(),
        crate::tenants::public_operations(),
        crate::accounts::public_operations(),
        crate::portal::public_operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
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
    // SQLite writes one transaction at a time: a second call in would only wait for the write
    // lock holding its records.
    let turns = match state.db {
        crate::store::Db::Sqlite(_) => 1,
        crate::store::Db::Postgres(_) => {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).clamp(1, 8)
        }
    };
    let bulk_gate = Arc::new(tokio::sync::Semaphore::new(turns));
    let mut names = Vec::new();
    for operation in operations() {
        let path = format!("/v2/{}", operation.name);
        names.push((path.clone(), operation.name));
        let mut handler = operation.handler;
        if LARGE_BATCHES.contains(&operation.name) {
            handler = handler.layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(bulk_gate.clone()));
        }
        handler = handler.layer(axum::middleware::from_fn_with_state(gate(operation.name, false), limits::admit));
        api = api.route(&path, handler);
    }
    let authenticator = auth::Authenticator::new(state.clone(), names);
    let api = api.route_layer(axum::middleware::from_fn_with_state(authenticator, auth::authenticate));
    let mut public = Router::new();
    for operation in public_operations() {
        let handler = operation
            .handler
            .layer(axum::middleware::from_fn_with_state(gate(operation.name, true), limits::admit))
            .layer(axum::middleware::from_fn_with_state(state.clone(), rate::public));
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
    // The console calls the operations in-process, through the same layers as any client.
    let console = crate::console::router(state.clone(), v2.clone().with_state(state.clone()));
    let portal = crate::portal::web::router(state.clone(), v2.clone().with_state(state.clone()));
    let timeout = state.settings.request_timeout;
    let mut router = Router::new()
        .merge(v2)
        .nest_service("/console", console)
        .nest_service("/portal", portal)
        .route("/status", get(status::status))
        .route("/status/", get(status::status))
        .route("/openapi.yaml", get(crate::http::openapi::document));
    if state.settings.metrics_on_api {
        router = router.route("/metrics", get(metrics::handler));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate::identify))
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async { ApiError::Timeout }))
                .timeout(timeout),
        )
        .with_state(state)
}

/// The admin listener's application (`BUNKER_METRICS_LISTEN`): `GET /metrics` and nothing else.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::handler))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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
