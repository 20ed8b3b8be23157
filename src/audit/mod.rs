//! Durable audit: every authenticated call leaves an event before its answer leaves.
//!
//! Changes commit their event in their own transaction. Everything else (reads, errors) goes
//! through the group-commit [`writer::AuditWriter`], so that a read costs a share of one commit
//! instead of a commit of its own.

pub mod chain;
pub mod chainer;
pub mod event;
pub mod routes;
mod verify;
pub mod writer;

pub use event::{Draft, Subject};
pub use routes::operations;
pub use writer::AuditWriter;
