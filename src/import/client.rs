//! Calls on the vault's own router, in-process: every write of an import is one of the vault's
//! operations, with its authentication, policies, limits and audit.

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::ImportError;
use crate::app::App;

/// The router and the credentials every call is made with.
pub struct Client {
    app: App,
    token: String,
    tenant: Option<String>,
}

impl Client {
    /// Calls on `app` with `token`, in `tenant` when given.
    pub fn new(app: App, token: String, tenant: Option<String>) -> Client {
        Client { app, token, tenant }
    }

    /// Calls `operation` with the JSON `body`: its status and body. An error only when the
    /// router could not be called or its answer not read.
    pub async fn call(&self, operation: &str, body: String) -> Result<(StatusCode, Bytes), ImportError> {
        let mut request = Request::builder()
            .method("POST")
            .uri(format!("/v2/{operation}"))
            .header("content-type", "application/json")
            .header("x-bunker-token", &self.token);
        if let Some(tenant) = &self.tenant {
            request = request.header("x-bunker-tenant", tenant);
        }
        let request = request.body(Body::from(body)).map_err(|err| ImportError::Vault(err.to_string()))?;
        let response = self.app.clone().oneshot(request).await.map_err(|err| ImportError::Vault(err.to_string()))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|err| ImportError::Vault(err.to_string()))?.to_bytes();
        Ok((status, bytes))
    }
}

/// The `message` of an answer that is not a success (the vault's messages never quote values).
pub fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|answer| answer["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}
