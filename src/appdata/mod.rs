//! App data: one JSON object per user and app, sealed under the user's data key, versioned, with
//! an optional lifetime of its own.

pub mod record;
pub mod routes;
pub mod service;

pub use record::AppName;
pub use routes::operations;
