//! Policies (CRBAC): documents parsed and validated, compiled per role, and decisions over the
//! facts of one call, with the profile fields the caller may see. Pure: no storage, no HTTP.
//!
//! A statement applies when its action names the operation, one of its resources covers the
//! record and its condition holds. Default deny; any applicable Deny wins over every Allow; a
//! Deny whose condition cannot be evaluated applies, an Allow whose condition cannot does not.

mod compiled;
mod condition;
mod decision;
mod document;
mod error;
mod facts;
mod pattern;
mod resource;
mod variable;
mod view;

pub use compiled::Compiled;
pub use decision::{Decision, Effective, Reach};
pub use document::{Document, parse};
pub use error::PolicyError;
pub use facts::{Facts, Membership, Part, Target};
pub use view::View;

#[cfg(test)]
mod tests;
