//! Agreements (consents) of users to the tenant's legal bases, kept with their full history as
//! evidence; the state and history are sealed under the user's data key.

pub mod record;
pub mod routes;
pub mod service;

pub use routes::operations;
