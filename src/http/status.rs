//! `GET /status`: liveness and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Longest wait for the database's answer: a health probe must hear "no" before it gives up.
const PING_LIMIT: Duration = Duration::from_millis(750);

/// 200 when the database answers, 500 otherwise: at once while it is declared away, and
/// within [`PING_LIMIT`] when it stops answering (a stuck pool cannot hold the probe).
pub async fn status(State(app): State<AppState>) -> impl IntoResponse {
    let up = app.health.is_up()
        && tokio::select! {
            biased;
            answered = app.db.ping_within(PING_LIMIT) => answered,
            () = app.health.went_down() => false,
        };
    if up {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"status": "error", "message": "Database error"})))
    }
}
