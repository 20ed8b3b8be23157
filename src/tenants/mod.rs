//! Tenants: the isolated spaces of the vault, each with its own master key, users and tokens.
//! The main tenant (id 1) administers the others: it creates, lists and deletes them; a
//! tenant's own admin token (from `TenantCreate`) works only inside its tenant.

pub mod changes;
mod id;
pub mod name;
mod routes;

pub use id::TenantId;
pub(crate) use routes::target;
pub use routes::{operations, public_operations};
