//! The data subject's portal at `/portal/` (issue 19): a person logs in with a one-time code
//! sent to their email address or phone, then sees and downloads what the vault holds about
//! them, gives or withdraws consent, and asks for changes and erasure, which an administrator
//! approves in the console.
//!
//! Built as the console is ([`crate::console`]): server-rendered pages, calling the `/v2`
//! operations in-process with the person's login token (`UserLogin`'s, own record only, changes
//! through requests), so every rule and event is the operations' own. The session is that token,
//! marked as the portal's so that the API refuses it from anywhere else, in an HttpOnly,
//! SameSite=Strict cookie on `/portal`; it ends at the token's expiry, after
//! `BUNKER_CONSOLE_IDLE` unused, at logout, or when the user is erased. Every form carries a
//! token and the same origin checks as the console's; no page runs a script.

mod consents;
mod layout;
mod login;
mod pages;
mod requests;
mod session;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

use crate::console::{Console, assets, secure_headers};
use crate::state::AppState;

/// The portal's routes, to be nested at `/portal`; `api` is the vault's `/v2` router.
pub fn router(app: AppState, api: Router) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal/profile") }))
        .route("/assets/{name}", get(assets::serve))
        .merge(login::routes())
        .merge(pages::routes())
        .merge(consents::routes())
        .merge(requests::routes())
        .fallback(layout::not_found)
        .with_state(Console::new(app, api))
        .layer(axum::middleware::from_fn(secure_headers))
}
