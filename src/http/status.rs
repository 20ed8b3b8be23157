//! `GET /status`: liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::app::AppState;

/// 200 when the database answers, 500 otherwise.
pub async fn status(State(app): State<AppState>) -> impl IntoResponse {
    if app.db.ping().await {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"status": "error", "message": "Database error"})))
    }
}
