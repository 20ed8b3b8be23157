//! Transport: body decoding, the error envelope, authentication, metrics, health and the
//! operation declarations the router routes.

pub mod auth;
pub mod body;
pub mod context;
pub mod cutoff;
pub mod error;
pub mod lenient;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod operation;
pub mod paging;
pub mod public_call;
pub mod rate;
pub mod reply;
pub mod status;

pub use body::Body;
pub use context::{RequestContext, Rule};
pub use error::{ApiError, ApiResult};
pub use operation::{Operation, op};
pub use paging::{Page, page};
pub use reply::{Reply, ok};
