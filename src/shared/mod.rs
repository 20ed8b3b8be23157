//! Shared records: a time-limited, public view of selected fields of a user's profile or app data.
//!
//! The view is a snapshot taken at `SharedRecordCreate` (later profile changes do not show
//! through), sealed under the owning user's data key and erased with the user.

pub mod routes;
pub mod service;

pub use routes::{operations, public_operations};
