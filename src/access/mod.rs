//! Access control: groups, roles, policies and the access tokens that act as a role or a user;
//! how their policies are compiled, and how each call of a caller bound by them is judged.

pub mod catalogue;
pub mod grants;
pub mod groups;
pub mod judge;
pub mod members;
pub mod policies;
pub mod policy;
pub mod refs;
pub mod roles;
pub mod simulate;
pub mod xtokens;

pub use grants::Grants;

use crate::http::{ApiError, Operation, RequestContext, Rule};

/// Proof that the caller is an administrator of the main tenant acting in the main tenant: the
/// only way to the store's cross-tenant profile handle
/// ([`crate::store::Db::every_tenant`]).
#[derive(Debug)]
pub struct VaultWide(());

impl VaultWide {
    /// The proof for `ctx`'s caller, or 403 `Access denied`.
    pub fn of(ctx: &RequestContext) -> Result<VaultWide, ApiError> {
        ctx.require(Rule::MainTenantAdmin)?;
        Ok(VaultWide(()))
    }
}

/// The access control operations.
pub fn operations() -> Vec<Operation> {
    [
        groups::operations(),
        members::operations(),
        roles::operations(),
        policies::operations(),
        xtokens::operations(),
        simulate::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
