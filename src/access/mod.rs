//! Access control: the policy engine that decides what a role's token may do.

pub mod policy;
