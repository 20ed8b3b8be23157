//! Legal bases and processing activities: the tenant's catalogue of why and how it processes
//! personal data. These records hold no personal data and are stored in clear.

pub mod activities;
pub mod bases;
pub mod name;

use serde_json::{Map, Value};

use crate::app::Operation;
use crate::http::{ApiError, ApiResult, Reply, RequestContext, ok};
use crate::store::{StoreError, StoreResult};

/// The legal basis and processing activity operations.
pub fn operations() -> Vec<Operation> {
    [bases::operations(), activities::operations()].into_iter().flatten().collect()
}

/// The answer to a catalogue write whose audit event committed with it: marks the event
/// committed and maps the store's `NotFound` / `Conflict` to the record kind's messages.
fn committed(
    ctx: &RequestContext,
    stored: StoreResult<()>,
    not_found: fn() -> ApiError,
    duplicate: fn() -> ApiError,
) -> ApiResult<Reply<Map<String, Value>>> {
    match stored {
        Ok(()) => {
            ctx.mark_committed();
            Ok(ok())
        }
        Err(StoreError::NotFound) => Err(not_found()),
        Err(StoreError::Conflict) => Err(duplicate()),
        Err(err) => Err(err.into()),
    }
}
