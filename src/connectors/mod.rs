//! Connectors: the company's own PostgreSQL and MySQL/MariaDB databases, where copies of a data
//! subject's personal data live (orders, tickets, logs). The vault finds, reports and erases a
//! user's rows there: on request (`ConnectorGetUserData`, `ConnectorDeleteUser`, ...), in the
//! user's report, and after the vault's own erasure of the user (queued, see [`erasure`]).
//!
//! A connector's password is sealed under the tenant's key. Connections go only to hosts the
//! allow-list admits ([`hosts`]), within time limits, and results are capped ([`external::Limits`]).
//! Table and column names come from the database's own catalogue and are quoted; the user's
//! values are bound parameters. No password, row value or connection string is logged or answered.

pub mod erasure;
pub mod external;
pub mod hosts;
pub mod metrics;
pub mod report;
mod routes;
pub mod service;
pub mod spec;

pub use routes::operations;

/// What connectors may reach, their limits, and the erasure worker's pace.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSettings {
    /// The hosts connectors may reach (`BUNKER_CONNECTOR_HOSTS`).
    pub hosts: hosts::HostPolicy,
    /// Connection and query timeouts, result caps.
    pub limits: external::Limits,
    /// The erasure worker.
    pub worker: erasure::WorkerSettings,
}
