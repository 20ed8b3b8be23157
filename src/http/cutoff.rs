//! Requests cut short: at their deadline, or at once when the database is declared away.
//!
//! The router's own timeout (the outermost layer) answers 503 without running anything more,
//! so a request it cut left no audit event. Authenticated calls are therefore cut here first,
//! inside the authentication middleware, a little before that timeout: there is still time to
//! record what the client is told (503), in the request's own event. A change the handler had
//! committed before the cut keeps its event, and the 503 event follows it.

use std::future::Future;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::context::RequestContext;
use super::error::{ApiError, ErrorMessage};
use crate::state::AppState;
use crate::store::Health;

/// Most time kept between the handler's deadline and the router's timeout, for the event.
const EVENT_MARGIN: Duration = Duration::from_secs(2);

/// Why a request was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// It ran out of time.
    Deadline,
    /// The database was declared away.
    DatabaseAway,
}

impl Cut {
    /// What the client is told.
    pub fn error(self) -> ApiError {
        match self {
            Cut::Deadline => ApiError::Timeout,
            Cut::DatabaseAway => ApiError::Unavailable,
        }
    }
}

/// The deadlines of one authenticated request.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// The handler is cut here.
    pub handler: Instant,
    /// Writing the request's event is given up here (the answer is still 503, the event is
    /// then written later).
    pub event: Instant,
}

impl Deadlines {
    /// Deadlines for a request starting now under the router's `timeout`.
    pub fn start(timeout: Duration) -> Deadlines {
        let now = Instant::now();
        let margin = EVENT_MARGIN.min(timeout / 4);
        Deadlines { handler: now + timeout.saturating_sub(margin), event: now + timeout.saturating_sub(margin / 4) }
    }
}

/// Runs `work` until it finishes, `deadline` passes or the database is declared away.
pub async fn within<F: Future>(health: &Health, deadline: Instant, work: F) -> Result<F::Output, Cut> {
    tokio::select! {
        biased;
        done = work => Ok(done),
        () = health.went_down() => Err(Cut::DatabaseAway),
        () = tokio::time::sleep_until(deadline) => Err(Cut::Deadline),
    }
}

/// The answer to a request cut short, after recording it: its event says 503 with the
/// message the client gets. After a deadline, with the database answering, the event is
/// durable before the answer leaves, as for any request; when the database is away (or was
/// too slow to take the event) it is written as soon as it is back, and the answer does not
/// wait for it.
pub async fn answer_cut(app: &AppState, context: &RequestContext, cut: Cut, deadline: Instant) -> Response {
    let response = cut.error().into_response();
    let message = response.extensions().get::<ErrorMessage>().map(|m| m.0.clone());
    let status = response.status().as_u16();
    if cut == Cut::Deadline && app.health.is_up() {
        let event = context.final_event(status, message.as_deref());
        if let Ok(Ok(())) = within(&app.health, deadline, app.audit.submit(event)).await {
            return response;
        }
    }
    // A fresh event (a new id): the attempt above may yet have committed.
    app.audit.submit_later(context.final_event(status, message.as_deref()));
    response
}

/// Middleware for the routes without authentication: 503 at once while the database is away,
/// and cut short when it goes away.
pub async fn guard(State(health): State<Health>, req: Request, next: Next) -> Response {
    if !health.is_up() {
        return ApiError::Unavailable.into_response();
    }
    tokio::select! {
        biased;
        response = next.run(req) => response,
        () = health.went_down() => ApiError::Unavailable.into_response(),
    }
}
