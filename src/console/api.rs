//! The console's calls of the vault's operations, in-process on its own router: the same
//! authentication, policies, masking, limits and audit events as any client's.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde_json::Value;
use tower::ServiceExt;

use super::Console;
use crate::http::auth::{ConsoleCall, TENANT_HEADER, TOKEN_HEADER};
use crate::http::rate::ClientAddr;

/// The most of an answer the console reads.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// A call the vault refused: its status and message, shown to the person as they are.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// The vault's message.
    pub message: String,
}

/// Who calls: the session's token (none for the public operations), the tenant to name, and the
/// browser's address (rate limits count against it).
#[derive(Debug, Clone, Default)]
pub struct Caller<'a> {
    /// The session's secret.
    pub token: Option<&'a str>,
    /// `X-Bunker-Tenant`.
    pub tenant: Option<&'a str>,
    /// The browser's address.
    pub client: Option<ClientAddr>,
}

impl Console {
    /// Calls `operation` with `body`: the answer's JSON when its status is `ok`.
    pub(crate) async fn call(&self, caller: &Caller<'_>, operation: &str, body: Value) -> Result<Value, Refusal> {
        let response = self.send(caller, operation, body).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER).await.map_err(|_| Refusal {
            status: StatusCode::BAD_GATEWAY,
            message: "The answer is too large to show here: use the API".into(),
        })?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() && answer.get("status").and_then(Value::as_str) == Some("ok") {
            return Ok(answer);
        }
        let message = answer.get("message").and_then(Value::as_str).map(str::to_owned);
        Err(Refusal { status, message: message.unwrap_or_else(|| refusal(status).message) })
    }

    /// Calls `operation` for an answer that is not JSON (a file's content): the answer as it
    /// is, streamed, when it succeeded; the refusal otherwise.
    pub(crate) async fn call_raw(
        &self,
        caller: &Caller<'_>,
        operation: &str,
        body: Value,
    ) -> Result<Response, Refusal> {
        let response = self.send(caller, operation, body).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER).await.unwrap_or_default();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = answer.get("message").and_then(Value::as_str).map(str::to_owned);
        Err(Refusal { status, message: message.unwrap_or_else(|| refusal(status).message) })
    }

    async fn send(&self, caller: &Caller<'_>, operation: &str, body: Value) -> Result<Response, Refusal> {
        let mut request = Request::post(format!("/v2/{operation}")).header("content-type", "application/json");
        if let Some(token) = caller.token {
            request = request.header(TOKEN_HEADER, token);
        }
        if let Some(tenant) = caller.tenant.filter(|t| !t.is_empty()) {
            request = request.header(TENANT_HEADER, tenant);
        }
        let mut request = request.body(Body::from(body.to_string())).map_err(|_| refusal(StatusCode::BAD_REQUEST))?;
        request.extensions_mut().insert(ConsoleCall);
        if let Some(client) = caller.client {
            request.extensions_mut().insert(client);
        }
        self.api.clone().oneshot(request).await.map_err(|_| refusal(StatusCode::SERVICE_UNAVAILABLE))
    }
}

fn refusal(status: StatusCode) -> Refusal {
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "Too many requests: try again in a moment",
        StatusCode::SERVICE_UNAVAILABLE => "The vault is unavailable: try again in a moment",
        _ => "The vault could not answer",
    };
    Refusal { status, message: message.into() }
}
