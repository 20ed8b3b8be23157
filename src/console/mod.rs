//! The web console at `/console/` (issue 18): server-rendered pages for privacy officers and
//! support staff, served by the vault itself with its assets embedded.
//!
//! The console is a client of the API like any other, in-process: every page calls the `/v2`
//! operations on the vault's own router with the session's access token, so authentication,
//! policies, masking, limits and the audit trail are the operations' own. A session is an access
//! token (an account's login, or one opened with the root or a tenant's token) that only the
//! console may present; its secret lives in an HttpOnly, SameSite=Strict cookie, and it ends
//! after `BUNKER_CONSOLE_IDLE` unused or at its absolute lifetime (`BUNKER_ACCOUNT_SESSION`).

mod access;
mod account;
pub(crate) mod api;
pub(crate) mod assets;
mod chart;
pub(crate) mod csrf;
pub(crate) mod layout;
mod login;
pub(crate) mod render;
mod requests;
pub(crate) mod session;
mod users;
mod vault;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// What every console page needs: the vault, and its API router to call in-process. The
/// portal's pages are built on it too.
#[derive(Clone)]
pub struct Console {
    pub(crate) app: AppState,
    api: Router,
}

impl Console {
    /// The pages' state over the vault `app` and its `/v2` router `api`.
    pub(crate) fn new(app: AppState, api: Router) -> Console {
        Console { app, api }
    }
}

/// The strict policy of every console answer: scripts and styles from the console alone, no
/// inline script, no framing, forms posting to the console only.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";

/// The console's routes, to be nested at `/console`; `api` is the vault's `/v2` router.
pub fn router(app: AppState, api: Router) -> Router {
    let console = Console { app, api };
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/users") }))
        .route("/assets/{name}", get(assets::serve))
        .merge(login::routes())
        .merge(account::routes())
        .merge(users::routes())
        .merge(requests::routes())
        .merge(access::routes())
        .merge(vault::routes())
        .route("/logout", post(login::logout))
        .fallback(layout::not_found)
        .with_state(console)
        .layer(axum::middleware::from_fn(secure_headers))
}

/// Headers on every console answer.
pub(crate) async fn secure_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A redirect after a form (303: the browser follows it with GET).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
