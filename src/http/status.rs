//! `GET /status`: liveness and readiness.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::store::{Db, Health};

/// Longest wait for the database's answer: a health probe must hear "no" before it gives up.
const PING_LIMIT: Duration = Duration::from_millis(750);

/// 200 when the database answers, 500 otherwise: at once while it is declared away, and
/// within [`PING_LIMIT`] when it stops answering (a stuck pool cannot hold the probe).
pub async fn status(State(db): State<Db>, State(health): State<Health>) -> impl IntoResponse {
    let up = health.is_up()
        && tokio::select! {
            biased;
            answered = db.ping_within(PING_LIMIT) => answered,
            () = health.went_down() => false,
        };
    if up {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"status": "error", "message": "Database error"})))
    }
}
