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

use crate::http::Operation;

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
