//! The success envelope.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A success answer: the fields of `T` next to `"status":"ok"`.
#[derive(Debug)]
pub struct Reply<T>(pub T);

#[derive(Serialize)]
struct Envelope<T> {
    status: &'static str,
    #[serde(flatten)]
    body: T,
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        Json(Envelope { status: "ok", body: self.0 }).into_response()
    }
}

/// `{"status":"ok"}` with no other field.
pub fn ok() -> Reply<serde_json::Map<String, serde_json::Value>> {
    Reply(serde_json::Map::new())
}
