//! Sessions: caller-named records, bound to a user when their data names one, always expiring.

pub mod routes;
pub mod service;

pub use routes::operations;
