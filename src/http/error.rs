//! The API error type and its JSON envelope.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// An error answered to the client as `{"status":"error","message":...}`.
///
/// Messages follow Databunker's wording and never contain request values: they may be
/// personal data, and error messages end up in client logs.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// 403: authentication or authorisation failed.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// 404: the addressed record does not exist.
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// 409: a uniqueness or state conflict.
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    /// 405: the path exists for another method (API calls are POST).
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// 413: the body is larger than the configured limit.
    #[error("Request body is too large")]
    TooLarge,
    /// 413: a value inside the body is larger than its own limit (e.g. a file).
    #[error("{0}")]
    ContentTooLarge(Cow<'static, str>),
    /// 503: the vault is at its limit of requests in flight or of request memory.
    #[error("The vault is busy, try again shortly")]
    Overloaded,
    /// 429: this client sent too many requests of this kind.
    #[error("Too many requests, try again later")]
    TooManyRequests,
    /// 503: the request took longer than the server allows.
    #[error("Request timed out")]
    Timeout,
    /// 502: a connected database (a connector's) failed; the message names the kind of failure,
    /// never a value, host or credential.
    #[error("{0}")]
    BadGateway(Cow<'static, str>),
    /// 503: the database is away or did not answer in time; answered with `Retry-After`.
    #[error("Database unavailable")]
    Unavailable,
    /// 500: anything unexpected. The cause is logged once, never sent.
    #[error("Internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400 with a fixed message.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::BadRequest(message.into())
    }

    /// 403 "Access denied".
    pub fn access_denied() -> ApiError {
        ApiError::Forbidden(Cow::Borrowed("Access denied"))
    }

    /// 404 with a fixed message.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::NotFound(message.into())
    }

    /// 409 with a fixed message.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::Conflict(message.into())
    }

    /// 500 from any error.
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(err))
    }

    /// 413 with a fixed message, for a value over its own size limit.
    pub fn too_large(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::ContentTooLarge(message.into())
    }

    /// 404 "The user record was not found".
    pub fn user_not_found() -> ApiError {
        ApiError::not_found("The user record was not found")
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge | ApiError::ContentTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout | ApiError::Overloaded | ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// Seconds a refused client should wait before trying again, for refusals that pass.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            // The monitor notices a returning database within a second.
            ApiError::Overloaded | ApiError::Timeout | ApiError::Unavailable => Some(1),
            ApiError::TooManyRequests => Some(10),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::RequestClosed => ApiError::conflict("This user request is closed"),
            StoreError::Invalid(message) => ApiError::bad_request(message),
            StoreError::Busy(message) => ApiError::conflict(message),
            StoreError::WrappingKeyChanged => {
                ApiError::conflict("The wrapping key has changed: retry on a vault started with the new key")
            }
            StoreError::RecoveryKeyChanged => {
                ApiError::conflict("The recovery key was rotated at the same time: retry with the shares in force")
            }
            StoreError::RotationPending => ApiError::conflict(
                "A wrapping-key rotation is pending: restart the vault with the new wrapping key to complete it, then retry",
            ),
            err if err.is_unavailable() => {
                // Per request at debug: the monitor reports the outage itself, once.
                tracing::debug!(error = %err, "database unavailable");
                ApiError::Unavailable
            }
            err => ApiError::internal(err),
        }
    }
}

impl From<crate::crypto::CryptoError> for ApiError {
    fn from(err: crate::crypto::CryptoError) -> ApiError {
        ApiError::internal(err)
    }
}

/// The message of an error response, kept in the response extensions for the audit writer.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // Logged once here. Causes are driver or crypto errors, which carry no request values.
            tracing::error!(error = %cause, "internal error");
        }
        let message = self.to_string();
        let mut response =
            (self.status(), Json(serde_json::json!({"status": "error", "message": message}))).into_response();
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ErrorMessage(message));
        response
    }
}
