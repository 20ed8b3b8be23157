//! `GET /openapi.yaml`: the API's OpenAPI document, the same file the repository holds, built
//! into the binary (no file is read at run time).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

/// The document (`openapi.yaml` at the repository's root).
pub const DOCUMENT: &str = include_str!("../../openapi.yaml");

/// Serves [`DOCUMENT`] as YAML; without authentication, like `/status` (it describes the API, it
/// holds no data).
pub async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/yaml; charset=utf-8"), (CACHE_CONTROL, "public, max-age=300")], DOCUMENT)
}
