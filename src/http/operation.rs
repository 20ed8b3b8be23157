//! One `/v2` operation as the domains declare it and the router routes it.

use axum::handler::Handler;
use axum::routing::{MethodRouter, post};

use crate::state::AppState;

/// One `/v2` operation: its name and handler.
pub struct Operation {
    /// PascalCase name, the last path segment.
    pub name: &'static str,
    /// The POST handler.
    pub handler: MethodRouter<AppState>,
}

/// Declares an operation.
pub fn op<H, T>(name: &'static str, handler: H) -> Operation
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Operation { name, handler: post(handler) }
}
