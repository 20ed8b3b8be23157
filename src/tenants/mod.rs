//! Tenants: the isolated spaces of the vault, each with its own keys, users and tokens.

mod id;

pub use id::TenantId;
